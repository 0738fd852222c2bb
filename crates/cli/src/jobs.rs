//! `supportsignal jobs list|retry|cancel`: the job queue for an operator at a shell, straight on
//! the database (so it works while servers run, and when none does).

use anyhow::{bail, Context};
use clap::Subcommand;
use functions::jobs::{self, Job, JobState};
use store::Store;
use values::DocumentId;

#[derive(Subcommand)]
pub enum JobsCommand {
    /// Jobs in one state: pending and running ones by when they are due, finished ones newest
    /// first.
    List {
        /// pending, running, succeeded, dead or canceled.
        #[arg(long, default_value = "dead")]
        state: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Send a dead job back to pending, its attempts reset.
    Retry { id: String },
    /// Cancel a pending job (a running one finishes its attempt).
    Cancel { id: String },
}

pub async fn run(store: &Store, command: JobsCommand) -> anyhow::Result<()> {
    match command {
        JobsCommand::List { state, limit, json } => {
            let Some(state) = JobState::parse(&state) else {
                bail!("unknown state {state:?}: pending, running, succeeded, dead or canceled");
            };
            let list = jobs::list(store, state, limit).await.map_err(failed)?;
            for job in &list {
                if json {
                    println!("{}", serde_json::to_string(&as_json(job))?);
                } else {
                    println!("{}", line(job));
                }
            }
            if !json {
                eprintln!("{} {} job(s)", list.len(), state.as_str());
            }
            Ok(())
        }
        JobsCommand::Retry { id } => {
            let id = job_id(store, &id)?;
            if jobs::retry(store, &id).await.map_err(failed)? {
                println!("{}: pending again", id.encode());
                Ok(())
            } else {
                bail!(
                    "{} is {}; only a dead job is retried",
                    id.encode(),
                    state(store, &id).await?
                )
            }
        }
        JobsCommand::Cancel { id } => {
            let id = job_id(store, &id)?;
            if jobs::cancel(store, &id).await.map_err(failed)? {
                println!("{}: canceled", id.encode());
                Ok(())
            } else {
                bail!(
                    "{} is {}; only a pending job is canceled",
                    id.encode(),
                    state(store, &id).await?
                )
            }
        }
    }
}

fn failed(e: functions::FunctionError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

fn job_id(store: &Store, id: &str) -> anyhow::Result<DocumentId> {
    DocumentId::decode(id)
        .ok()
        .filter(|id| Some(id.table_number) == store.table_number(jobs::TABLE))
        .with_context(|| format!("{id:?} is not a job's Id"))
}

async fn state(store: &Store, id: &DocumentId) -> anyhow::Result<&'static str> {
    match jobs::get(store, id).await.map_err(failed)? {
        Some(job) => Ok(job.state.as_str()),
        None => bail!("no job {}", id.encode()),
    }
}

fn time(ms: f64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms as i64).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

/// `id  function  attempts/max  due-or-finished  last error`.
fn line(job: &Job) -> String {
    let when = job.completed_at.unwrap_or(job.run_at);
    format!(
        "{}  {}  {}/{}  {}  {}",
        job.id.encode(),
        job.name,
        job.attempts,
        job.max_attempts,
        time(when),
        job.last_error.as_deref().unwrap_or("-").replace('\n', " ")
    )
}

fn as_json(job: &Job) -> serde_json::Value {
    serde_json::json!({
        "id": job.id.encode(),
        "function": job.name,
        "state": job.state.as_str(),
        "attempts": job.attempts,
        "maxAttempts": job.max_attempts,
        "runAt": job.run_at,
        "createdAt": job.created_at,
        "startedAt": job.started_at,
        "completedAt": job.completed_at,
        "lastError": job.last_error,
        "idempotencyKey": job.idempotency_key,
    })
}
