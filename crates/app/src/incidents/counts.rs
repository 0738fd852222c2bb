//! Incident counts by overall status, per company and per reporter, kept up to date in the same
//! transaction as every change to an incident. Totals and status counts are then a few rows read,
//! whatever the number of incidents. A company's counts are spread over `COMPANY_SHARDS` rows, each
//! change going to a random one: with one row, every incident write of a company read and wrote
//! that row, so on PostgreSQL concurrent ones conflicted and retried (16 workers creating at once:
//! 63-102/s with one row, 188-195/s with 16). A reporter's counts are one row: one person rarely
//! writes twice at once.

use functions::{DbRead, DbWriter, FnResult, Scope};
use store::TableDef;
use values::validator::v;
use values::{DocumentId, Object, Value};

use super::status::OverallStatus;

pub const TABLE: &str = "incident_counts";
/// The `scope` of a company's first row, and the prefix of its others (`company.1`, ...); a
/// reporter's row holds their user id (base32, which has no `o`, so never this prefix).
const COMPANY: &str = "company";
/// Rows a company's counts are spread over. A change picks one at random, so two concurrent
/// changes collide with probability 1/16; a read sums them all.
const COMPANY_SHARDS: u32 = 16;

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
    /// The `scope` of the row a change is counted in.
    fn key_for_change(self) -> String {
        match self {
            Whose::Company => match rand::random::<u32>() % COMPANY_SHARDS {
                0 => COMPANY.to_string(),
                shard => format!("{COMPANY}.{shard}"),
            },
            Whose::Reporter(user) => user.encode(),
        }
    }
}

/// Incidents per overall status.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counts([f64; OverallStatus::ALL.len()]);

impl Counts {
    fn slot(status: OverallStatus) -> usize {
        OverallStatus::ALL
            .iter()
            .position(|s| *s == status)
            .expect("every status is in ALL")
    }
    pub fn get(&self, status: OverallStatus) -> f64 {
        self.0[Self::slot(status)].max(0.0)
    }
    pub fn total(&self) -> f64 {
        OverallStatus::ALL.iter().map(|s| self.get(*s)).sum()
    }
    /// Shard rows may go below zero (an incident counted in one shard leaves through another);
    /// only their sum means anything.
    fn add(&mut self, status: OverallStatus, delta: f64) {
        self.0[Self::slot(status)] += delta;
    }
    fn add_row(&mut self, row: &Object) {
        for &status in OverallStatus::ALL {
            let n = row.get(status.as_str()).and_then(Value::as_f64);
            self.add(status, n.unwrap_or(0.0));
        }
    }
    fn from_row(row: &Object) -> Counts {
        let mut counts = Counts::default();
        counts.add_row(row);
        counts
    }
}

/// The counts of `whose` in the scope's company (zero when nothing was ever counted).
pub fn read(db: &mut impl DbRead, scope: &Scope, whose: Whose) -> FnResult<Counts> {
    let mut db = db.read_scoped(scope);
    let rows = match whose {
        // `company`, `company.1` ... `company.15`: '/' follows '.', so this range holds them all.
        Whose::Company => db
            .query(TABLE, "by_company_scope", |q| {
                q.gte("scope", COMPANY).lt("scope", format!("{COMPANY}/"))
            })?
            .take(COMPANY_SHARDS as usize)?,
        Whose::Reporter(user) => db
            .query(TABLE, "by_company_scope", |q| q.eq("scope", user.encode()))?
            .take(1)?,
    };
    let mut counts = Counts::default();
    for row in &rows {
        counts.add_row(&row.fields);
    }
    Ok(counts)
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
        let key = whose.key_for_change();
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
            .map(|s| {
                (
                    s.as_str().to_string(),
                    Value::from(counts.0[Counts::slot(*s)]),
                )
            })
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
