//! Incident counts by overall status, per company and per reporter, kept up to date in the same
//! transaction as every change to an incident. Totals and status counts are then one row read,
//! whatever the number of incidents. The price: all incident writes of one company touch its
//! counts row, so they serialize on it (SQLite has one writer anyway; PostgreSQL retries).

use functions::{DbRead, DbWriter, FnResult, Scope};
use store::TableDef;
use values::validator::v;
use values::{DocumentId, Object, Value};

use super::status::OverallStatus;

pub const TABLE: &str = "incident_counts";
/// The `scope` of a company's row; a reporter's row holds their user id.
const COMPANY: &str = "company";

pub fn tables() -> Vec<TableDef> {
    let table = TableDef::new(TABLE)
        .field("company_id", v::id("companies"))
        .field("scope", v::string())
        .field("updated_at", v::number());
    vec![OverallStatus::ALL
        .iter()
        .fold(table, |t, status| t.field(status.as_str(), v::number()))
        .index("by_company_scope", &["company_id", "scope"])
        .tenant("company_id")]
}

/// Whose incidents a count covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whose {
    Company,
    Reporter(DocumentId),
}

impl Whose {
    fn key(self) -> String {
        match self {
            Whose::Company => COMPANY.to_string(),
            Whose::Reporter(user) => user.encode(),
        }
    }
}

/// Incidents per overall status.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counts([f64; 4]);

impl Counts {
    fn slot(status: OverallStatus) -> usize {
        OverallStatus::ALL
            .iter()
            .position(|s| *s == status)
            .expect("every status is in ALL")
    }
    pub fn get(&self, status: OverallStatus) -> f64 {
        self.0[Self::slot(status)]
    }
    pub fn total(&self) -> f64 {
        self.0.iter().sum()
    }
    fn add(&mut self, status: OverallStatus, delta: f64) {
        let slot = &mut self.0[Self::slot(status)];
        *slot = (*slot + delta).max(0.0);
    }
    fn from_row(row: &Object) -> Counts {
        let mut counts = Counts::default();
        for &status in OverallStatus::ALL {
            let n = row.get(status.as_str()).and_then(Value::as_f64);
            counts.add(status, n.unwrap_or(0.0));
        }
        counts
    }
}

/// The counts of `whose` in the scope's company (zero when nothing was ever counted).
pub fn read(db: &mut impl DbRead, scope: &Scope, whose: Whose) -> FnResult<Counts> {
    let key = whose.key();
    let row = db
        .read_scoped(scope)
        .query(TABLE, "by_company_scope", |q| q.eq("scope", key))?
        .first()?;
    Ok(row.map(|r| Counts::from_row(&r.fields)).unwrap_or_default())
}

/// Records that an incident of `reporter` left `from` (`None`: it is new) for `to` (`None`: it
/// was deleted), in the company's and the reporter's counts.
pub fn moved(
    db: &mut DbWriter<'_>,
    scope: &Scope,
    reporter: &DocumentId,
    from: Option<OverallStatus>,
    to: Option<OverallStatus>,
    now: f64,
) -> FnResult<()> {
    if from == to {
        return Ok(());
    }
    for whose in [Whose::Company, Whose::Reporter(*reporter)] {
        let key = whose.key();
        let mut db = db.scoped(scope);
        let row = db
            .query(TABLE, "by_company_scope", |q| q.eq("scope", key.as_str()))?
            .first()?;
        let mut counts = row
            .as_ref()
            .map(|r| Counts::from_row(&r.fields))
            .unwrap_or_default();
        if let Some(from) = from {
            counts.add(from, -1.0);
        }
        if let Some(to) = to {
            counts.add(to, 1.0);
        }
        let mut fields: Object = OverallStatus::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), Value::from(counts.get(*s))))
            .collect();
        fields.insert("updated_at".into(), Value::from(now));
        match row {
            Some(row) => {
                let patch = fields.into_iter().map(|(k, v)| (k, Some(v))).collect();
                db.patch(&row.id, patch)?;
            }
            None => {
                fields.insert("scope".into(), Value::from(key));
                db.insert(TABLE, fields)?;
            }
        }
    }
    Ok(())
}
