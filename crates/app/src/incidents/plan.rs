//! Planning and running an incident list: the indexes of the incidents table, which one answers a
//! request (the one whose trailing columns give the requested order and whose leading columns bind
//! the most equality filters), and the scan that walks it in order and stops once the page is
//! full. Filters the index does not bind are checked on each row the scan yields.

use functions::{FnResult, Scoped};
use store::{Document, Order, PaginationOpts, Query};
use values::Value;

use super::status::OverallStatus;
use super::TABLE;

/// An index of the incidents table: `company_id`, equality columns, then the sort columns.
pub struct IndexDef {
    pub name: &'static str,
    pub fields: &'static [&'static str],
}

macro_rules! indexes {
    ($($name:literal => [$($field:literal),+];)+) => {
        pub const INDEXES: &[IndexDef] = &[$(IndexDef { name: $name, fields: &["company_id", $($field),+] }),+];
    };
}

// Equality columns (status, reporter, participant, site) before sort columns (created_at,
// updated_at, the name keys, status then created_at). Site is only indexed for the date order; a
// site filter with another order is checked per row (a company has few sites).
indexes! {
    "by_company_created" => ["created_at"];
    "by_company_status_created" => ["overall_status", "created_at"];
    "by_company_creator_created" => ["created_by", "created_at"];
    "by_company_creator_status_created" => ["created_by", "overall_status", "created_at"];
    "by_company_participant_created" => ["participant_id", "created_at"];
    "by_company_participant_status_created" => ["participant_id", "overall_status", "created_at"];
    "by_company_site_created" => ["site_id", "created_at"];
    "by_company_updated" => ["updated_at"];
    "by_company_status_updated" => ["overall_status", "updated_at"];
    "by_company_creator_updated" => ["created_by", "updated_at"];
    "by_company_participant_updated" => ["participant_id", "updated_at"];
    "by_company_participant_name" => ["participant_sort", "created_at"];
    "by_company_status_participant_name" => ["overall_status", "participant_sort", "created_at"];
    "by_company_creator_participant_name" => ["created_by", "participant_sort", "created_at"];
    "by_company_participant_participant_name" => ["participant_id", "participant_sort", "created_at"];
    "by_company_reporter_name" => ["reporter_sort", "created_at"];
    "by_company_status_reporter_name" => ["overall_status", "reporter_sort", "created_at"];
    "by_company_creator_reporter_name" => ["created_by", "reporter_sort", "created_at"];
    "by_company_participant_reporter_name" => ["participant_id", "reporter_sort", "created_at"];
}

/// The sort fields of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortField {
    Date,
    Status,
    Participant,
    Reporter,
    Updated,
}

impl SortField {
    pub const NAMES: [&'static str; 5] = ["date", "status", "participant", "reporter", "updated"];

    pub fn parse(name: &str) -> Option<SortField> {
        let all = [
            SortField::Date,
            SortField::Status,
            SortField::Participant,
            SortField::Reporter,
            SortField::Updated,
        ];
        SortField::NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| all[i])
    }

    /// The index columns that give this order (ties: creation time, then insertion).
    fn columns(self) -> &'static [&'static str] {
        match self {
            SortField::Date => &["created_at"],
            SortField::Status => &["overall_status", "created_at"],
            SortField::Participant => &["participant_sort", "created_at"],
            SortField::Reporter => &["reporter_sort", "created_at"],
            SortField::Updated => &["updated_at"],
        }
    }

    /// Dates newest first, names and statuses A to Z, unless the caller says otherwise.
    pub fn default_order(self) -> Order {
        match self {
            SortField::Date | SortField::Updated => Order::Desc,
            _ => Order::Asc,
        }
    }
}

/// What a list asks for.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    /// Equality filters by column: `overall_status`, `created_by`, `participant_id`, `site_id`.
    pub eq: Vec<(&'static str, String)>,
    /// Inclusive bounds on `created_at`.
    pub created: Option<(f64, f64)>,
    /// Lower-cased text to find in the participant and reporter names and the location.
    pub text: Option<String>,
    pub exclude_completed: bool,
}

impl Filters {
    pub fn value(&self, column: &str) -> Option<&str> {
        self.eq
            .iter()
            .find(|(c, _)| *c == column)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `doc` passes the filters the index did not apply.
    fn keeps(&self, doc: &Document, bound: &[&str], created_in_index: bool) -> bool {
        let field = |name: &str| doc.get(name).and_then(Value::as_str).unwrap_or_default();
        for (column, wanted) in &self.eq {
            if !bound.contains(column) && field(column) != wanted {
                return false;
            }
        }
        if let (Some((from, to)), false) = (self.created, created_in_index) {
            let at = doc
                .get("created_at")
                .and_then(Value::as_f64)
                .unwrap_or(f64::NAN);
            if !(at >= from && at <= to) {
                return false;
            }
        }
        if self.exclude_completed && field("overall_status") == OverallStatus::Completed.as_str() {
            return false;
        }
        if let Some(needle) = &self.text {
            let found = ["participant_name", "reporter_name", "location"]
                .iter()
                .any(|f| field(f).to_lowercase().contains(needle.as_str()));
            if !found {
                return false;
            }
        }
        true
    }

    /// Whether every row the index range yields matches (no per-row check needed).
    fn fully_indexed(&self, bound: &[&str], created_in_index: bool) -> bool {
        self.eq.iter().all(|(c, _)| bound.contains(c))
            && (self.created.is_none() || created_in_index)
            && self.text.is_none()
            && !self.exclude_completed
    }
}

/// How a request is answered: which index, what it binds, in which order.
pub struct Plan {
    pub index: &'static IndexDef,
    bound: Vec<(&'static str, String)>,
    created_in_index: bool,
    order: Order,
    pub filters: Filters,
}

/// Priority of binding an equality column when indexes tie: the most selective first.
fn selectivity(column: &str) -> usize {
    match column {
        "participant_id" => 4,
        "created_by" => 3,
        "site_id" => 2,
        _ => 1,
    }
}

/// Picks the index for `filters` in `sort` order.
pub fn plan(filters: Filters, sort: SortField, order: Order) -> Plan {
    let mut wanted: &[&str] = sort.columns();
    // A leading sort column an equality filter fixes orders nothing.
    while wanted.len() > 1 && filters.value(wanted[0]).is_some() {
        wanted = &wanted[1..];
    }
    let mut best: Option<(&'static IndexDef, usize, usize)> = None;
    for index in INDEXES {
        let columns = &index.fields[1..];
        let Some(split) = columns.len().checked_sub(wanted.len()) else {
            continue;
        };
        let (prefix, tail) = columns.split_at(split);
        if tail != wanted || !prefix.iter().all(|c| filters.value(c).is_some()) {
            continue;
        }
        let score: usize = prefix.iter().map(|c| selectivity(c)).sum();
        if best.is_none_or(|(_, n, s)| (prefix.len(), score) > (n, s)) {
            best = Some((index, prefix.len(), score));
        }
    }
    // Every order has an index without equality columns, so there is always a candidate.
    let (index, bound_len, _) = best.expect("an index for every sort order");
    let bound: Vec<(&'static str, String)> = index.fields[1..=bound_len]
        .iter()
        .map(|c| (*c, filters.value(c).unwrap_or_default().to_string()))
        .collect();
    let created_in_index = wanted == ["created_at"];
    Plan {
        index,
        bound,
        created_in_index,
        order,
        filters,
    }
}

impl Plan {
    fn bound_columns(&self) -> Vec<&'static str> {
        self.bound.iter().map(|(c, _)| *c).collect()
    }

    fn open<'a>(&self, db: &'a mut Scoped<'_>) -> FnResult<Query<'a>> {
        let bound = self.bound.clone();
        let range = self.filters.created.filter(|_| self.created_in_index);
        let query = db.query(TABLE, self.index.name, move |mut q| {
            for (column, value) in bound {
                q = q.eq(column, value);
            }
            if let Some((from, to)) = range {
                q = q.gte("created_at", from).lte("created_at", to);
            }
            q
        })?;
        Ok(query.order(self.order))
    }

    /// Walks the plan's index from `cursor`, until `wanted` rows matched, the range ended, or
    /// `budget` rows were examined. The returned cursor is just after the last row consumed, so
    /// continuing from it neither skips nor repeats a match.
    pub fn scan(
        &self,
        db: &mut Scoped<'_>,
        cursor: Option<String>,
        wanted: usize,
        budget: usize,
        keep_docs: bool,
    ) -> FnResult<Scan> {
        let bound = self.bound_columns();
        let exact = self.filters.fully_indexed(&bound, self.created_in_index);
        let mut scan = Scan {
            docs: Vec::new(),
            matched: 0,
            cursor,
            exhausted: false,
            limited: false,
        };
        if wanted == 0 {
            // Nothing asked for: the cursor stays where it was, in the store's own form.
            let page = self.open(db)?.paginate(PaginationOpts {
                num_items: 0,
                cursor: scan.cursor.take(),
            })?;
            scan.cursor = Some(page.continue_cursor);
            return Ok(scan);
        }
        let mut examined = 0usize;
        while scan.matched < wanted {
            let room = budget.saturating_sub(examined);
            if room == 0 {
                scan.limited = true;
                break;
            }
            let remaining = wanted - scan.matched;
            let chunk = if exact {
                remaining.min(1024)
            } else {
                remaining.saturating_mul(2).clamp(64, 1024)
            }
            .min(room);
            let start = scan.cursor.clone();
            let page = self.open(db)?.paginate(PaginationOpts {
                num_items: chunk,
                cursor: start.clone(),
            })?;
            let len = page.page.len();
            let mut stopped_at = None;
            for (i, doc) in page.page.into_iter().enumerate() {
                examined += 1;
                if exact || self.filters.keeps(&doc, &bound, self.created_in_index) {
                    scan.matched += 1;
                    if keep_docs {
                        scan.docs.push(doc);
                    }
                    if scan.matched == wanted {
                        stopped_at = Some(i);
                        break;
                    }
                }
            }
            match stopped_at {
                Some(i) if i + 1 < len => {
                    // The page filled inside this chunk: continue right after its last row.
                    let exact_page = self.open(db)?.paginate(PaginationOpts {
                        num_items: i + 1,
                        cursor: start,
                    })?;
                    scan.cursor = Some(exact_page.continue_cursor);
                    break;
                }
                _ => {
                    scan.cursor = Some(page.continue_cursor);
                    if page.is_done {
                        scan.exhausted = true;
                        break;
                    }
                }
            }
        }
        Ok(scan)
    }
}

/// What a scan found.
pub struct Scan {
    /// The matching rows, in order (when asked to keep them).
    pub docs: Vec<Document>,
    pub matched: usize,
    /// The store cursor after the last row consumed (`None`: nothing was read).
    pub cursor: Option<String>,
    /// The index range ran out.
    pub exhausted: bool,
    /// Stopped because the examined-rows budget ran out.
    pub limited: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(eq: &[(&'static str, &str)]) -> Filters {
        Filters {
            eq: eq.iter().map(|(c, v)| (*c, v.to_string())).collect(),
            ..Filters::default()
        }
    }

    #[test]
    fn picks_the_index_that_orders_and_binds_most() {
        let pick =
            |eq: &[(&'static str, &str)], sort| plan(filters(eq), sort, Order::Desc).index.name;
        assert_eq!(pick(&[], SortField::Date), "by_company_created");
        assert_eq!(pick(&[], SortField::Status), "by_company_status_created");
        assert_eq!(
            pick(&[("overall_status", "completed")], SortField::Date),
            "by_company_status_created"
        );
        // A status filter makes the status order plain date order within that status.
        assert_eq!(
            pick(&[("overall_status", "completed")], SortField::Status),
            "by_company_status_created"
        );
        assert_eq!(
            pick(
                &[("created_by", "u"), ("overall_status", "completed")],
                SortField::Date
            ),
            "by_company_creator_status_created"
        );
        assert_eq!(
            pick(
                &[("created_by", "u"), ("overall_status", "completed")],
                SortField::Updated
            ),
            "by_company_creator_updated"
        );
        assert_eq!(
            pick(
                &[("site_id", "s"), ("participant_id", "p")],
                SortField::Reporter
            ),
            "by_company_participant_reporter_name"
        );
        assert_eq!(
            pick(&[("site_id", "s")], SortField::Updated),
            "by_company_updated"
        );
        let p = plan(filters(&[("site_id", "s")]), SortField::Date, Order::Asc);
        assert!(p.created_in_index);
        assert_eq!(p.bound_columns(), ["site_id"]);
    }

    #[test]
    fn every_index_is_unique_and_starts_with_the_company() {
        let mut names: Vec<&str> = INDEXES.iter().map(|i| i.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), INDEXES.len());
        assert!(INDEXES.iter().all(|i| i.fields[0] == "company_id"));
    }
}
