//! Rewrites what earlier versions stored for the overall status `ready_for_analysis` (a submitted
//! capture whose analysis had not started), which is now `analysis_pending`.
//!
//! The value is stored, not mapped on read, because lists filter and sort by it through indexes
//! and totals come from the status counts: a filter for `analysis_pending` walks one index range,
//! which would miss rows still holding the old value. So the rows and the counts are rewritten
//! together, one company per transaction: the company's incidents holding the old value, and each
//! of its count rows (company shards and reporters), whose `ready_for_analysis` number moves into
//! `analysis_pending` of the same row (the incidents it counted are exactly the ones rewritten)
//! and whose old field goes, since the table no longer declares it.
//!
//! Run when the server starts and by `supportsignal migrate`, before anything is served. Idempotent:
//! once done, it reads the count rows and finds nothing to do. A company's rewrite is one
//! transaction, sized by its incidents awaiting analysis.

use std::collections::BTreeSet;

use store::{Patch, Store, StoreError};
use values::Value;

use super::counts;
use super::status::{OverallStatus, LEGACY_READY_FOR_ANALYSIS};

/// The companies whose count rows still carry the old field.
async fn companies_to_upgrade(store: &Store) -> Result<BTreeSet<String>, StoreError> {
    let (companies, _, _) = store
        .query(|txn| {
            let rows = txn.query(counts::TABLE)?.collect()?;
            Ok::<_, StoreError>(
                rows.iter()
                    .filter(|row| row.fields.contains_key(LEGACY_READY_FOR_ANALYSIS))
                    .filter_map(|row| row.get("company_id").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect(),
            )
        })
        .await?;
    Ok(companies)
}

/// Rewrites one company; returns how many incidents changed.
async fn upgrade_company(store: &Store, company: String) -> Result<usize, StoreError> {
    let pending = OverallStatus::AnalysisPending.as_str();
    let (changed, _, _) = store
        .mutate(move |txn| {
            let incidents = txn
                .query(super::TABLE)?
                .with_index("by_company_status_created", |q| {
                    q.eq("company_id", company.as_str())
                        .eq("overall_status", LEGACY_READY_FOR_ANALYSIS)
                })?
                .collect()?;
            for incident in &incidents {
                let patch =
                    Patch::from([("overall_status".to_string(), Some(Value::from(pending)))]);
                txn.patch(&incident.id, patch)?;
            }
            let rows = txn
                .query(counts::TABLE)?
                .with_index("by_company_scope", |q| q.eq("company_id", company.as_str()))?
                .collect()?;
            for row in rows {
                let number = |field: &str| row.get(field).and_then(Value::as_f64).unwrap_or(0.0);
                let Some(moved) = row.get(LEGACY_READY_FOR_ANALYSIS).and_then(Value::as_f64) else {
                    continue;
                };
                let patch = Patch::from([
                    (LEGACY_READY_FOR_ANALYSIS.to_string(), None),
                    (
                        pending.to_string(),
                        Some(Value::from(number(pending) + moved)),
                    ),
                ]);
                txn.patch(&row.id, patch)?;
            }
            Ok::<_, StoreError>(incidents.len())
        })
        .await?;
    Ok(changed)
}

/// Upgrades every company that needs it; returns how many incidents changed.
pub async fn run(store: &Store) -> Result<usize, StoreError> {
    let mut changed = 0;
    for company in companies_to_upgrade(store).await? {
        let n = upgrade_company(store, company.clone()).await?;
        tracing::info!(
            company_id = company.as_str(),
            incidents = n,
            "overall status ready_for_analysis rewritten to analysis_pending"
        );
        changed += n;
    }
    Ok(changed)
}
