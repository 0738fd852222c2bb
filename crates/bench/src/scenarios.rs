//! What the load generator sends. A scenario builds each client's requests and checks a sample
//! answer in full before it is measured. To add one (an authenticated read, say): implement
//! `Scenario`, do any set-up (sign-in, per-client tokens) where it is constructed or in `prepare`
//! (which runs against the server just before the scenario is checked and measured), and list it
//! in `standard`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use hyper::header::{HeaderName, HeaderValue};
use serde_json::{json, Value as Json};

use crate::functions::{
    group_name, item_key, payload, worker_token, AUTH_EMAIL, AUTH_PASSWORD, AUTH_TOKEN, RANGE_LEN,
};
use crate::http::{request_body, Connection};
use crate::runner::progress;

/// What `Scenario::prepare` returns.
pub type Preparation<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'a>>;

pub trait Scenario: Send + Sync {
    /// Short name for the results table and `--scenarios`.
    fn name(&self) -> &'static str;
    /// `/api/query` or `/api/mutation`.
    fn route(&self) -> &'static str;
    /// Body of request `seq` of client `client`, as the npm client would send it.
    fn body(&self, client: usize, seq: u64) -> Vec<u8>;
    /// Headers every request of `client` carries (an authenticated scenario adds `authorization`).
    fn headers(&self, _client: usize) -> Vec<(HeaderName, HeaderValue)> {
        Vec::new()
    }
    /// Checks the value request (`client`, `seq`) returned; run on a sample before measuring, so a
    /// scenario that "succeeds" without doing its work is caught.
    fn check(&self, client: usize, seq: u64, value: &Json) -> Result<(), String>;
    /// Runs once, right before the scenario is checked and measured: seeding only it needs, ids
    /// its requests must carry.
    fn prepare<'a>(&'a self, _connection: &'a mut Connection) -> Preparation<'a> {
        Box::pin(async { Ok(()) })
    }
}

/// How the database is seeded: `items` documents, `items / groups` per group.
#[derive(Clone, Copy, Debug)]
pub struct SeedPlan {
    pub items: usize,
    pub groups: usize,
    pub payload_len: usize,
}

impl SeedPlan {
    pub fn per_group(&self) -> usize {
        self.items / self.groups
    }

    /// Documents actually seeded (whole groups only).
    pub fn seeded(&self) -> usize {
        self.per_group() * self.groups
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.groups == 0 || self.per_group() < RANGE_LEN {
            return Err(format!(
                "--items / --groups must be at least {RANGE_LEN} so a range read returns {RANGE_LEN} documents"
            ));
        }
        Ok(())
    }
}

/// A cheap, well-mixed hash (splitmix64): spreads the keys clients pick without shared RNG state.
fn mix(client: usize, seq: u64, salt: u64) -> u64 {
    let mut z = (client as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(seq)
        .wrapping_add(salt.rotate_left(17));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `bench:getOne`: one document by the `by_key` index.
pub struct GetOne {
    plan: SeedPlan,
}

impl GetOne {
    fn key(&self, client: usize, seq: u64) -> String {
        item_key((mix(client, seq, 1) % self.plan.seeded() as u64) as usize)
    }
}

impl Scenario for GetOne {
    fn name(&self) -> &'static str {
        "getOne"
    }
    fn route(&self) -> &'static str {
        "/api/query"
    }
    fn body(&self, client: usize, seq: u64) -> Vec<u8> {
        request_body("bench:getOne", &json!({"key": self.key(client, seq)}))
    }
    fn check(&self, client: usize, seq: u64, value: &Json) -> Result<(), String> {
        let key = self.key(client, seq);
        if value["key"] != key.as_str() {
            return Err(format!("getOne({key}) returned {value}"));
        }
        Ok(())
    }
}

/// `bench:range50`: the first 50 documents of a group by the `by_group` index.
pub struct Range50 {
    plan: SeedPlan,
}

impl Range50 {
    fn group(&self, client: usize, seq: u64) -> String {
        group_name((mix(client, seq, 2) % self.plan.groups as u64) as usize)
    }
}

impl Scenario for Range50 {
    fn name(&self) -> &'static str {
        "range50"
    }
    fn route(&self) -> &'static str {
        "/api/query"
    }
    fn body(&self, client: usize, seq: u64) -> Vec<u8> {
        request_body("bench:range50", &json!({"group": self.group(client, seq)}))
    }
    fn check(&self, client: usize, seq: u64, value: &Json) -> Result<(), String> {
        let group = self.group(client, seq);
        let docs = value.as_array().map(Vec::as_slice).unwrap_or_default();
        if docs.len() != RANGE_LEN || docs.iter().any(|d| d["group"] != group.as_str()) {
            return Err(format!(
                "range50({group}) returned {} documents, expected {RANGE_LEN} of that group",
                docs.len()
            ));
        }
        Ok(())
    }
}

/// `bench:insert`: one durable insert per request (the store commits before answering).
pub struct Insert {
    plan: SeedPlan,
    payload: String,
    /// Keeps keys from different runs against the same database apart.
    run: String,
}

impl Scenario for Insert {
    fn name(&self) -> &'static str {
        "insert"
    }
    fn route(&self) -> &'static str {
        "/api/mutation"
    }
    fn body(&self, client: usize, seq: u64) -> Vec<u8> {
        let group = group_name((mix(client, seq, 3) % self.plan.groups as u64) as usize);
        let args = json!({
            "group": group,
            "key": format!("ins-{}-{client}-{seq}", self.run),
            "n": (self.plan.per_group() as u64 + seq) as f64,
            "payload": self.payload,
        });
        request_body("bench:insert", &args)
    }
    fn check(&self, _client: usize, _seq: u64, value: &Json) -> Result<(), String> {
        match value.as_str() {
            Some(id) if !id.is_empty() => Ok(()),
            _ => Err(format!("insert returned {value}, expected a document Id")),
        }
    }
}

/// `participants/list:listParticipants`: an authenticated query that resolves the session, the
/// role's permission and the company, then reads 50 participants through a company index.
pub struct AuthList50;

impl Scenario for AuthList50 {
    fn name(&self) -> &'static str {
        "authList50"
    }
    fn route(&self) -> &'static str {
        "/api/query"
    }
    fn body(&self, _client: usize, _seq: u64) -> Vec<u8> {
        request_body(
            "participants/list:listParticipants",
            &json!({"sessionToken": AUTH_TOKEN, "limit": 50.0}),
        )
    }
    fn check(&self, _client: usize, _seq: u64, value: &Json) -> Result<(), String> {
        let n = value["participants"].as_array().map_or(0, Vec::len);
        if n != RANGE_LEN {
            return Err(format!(
                "listParticipants returned {n} participants, expected {RANGE_LEN}"
            ));
        }
        Ok(())
    }
}

/// `auth:loginUser`: argon2id verification (slow on purpose), then a session write.
pub struct Login;

impl Scenario for Login {
    fn name(&self) -> &'static str {
        "login"
    }
    fn route(&self) -> &'static str {
        "/api/mutation"
    }
    fn body(&self, _client: usize, _seq: u64) -> Vec<u8> {
        request_body(
            "auth:loginUser",
            &json!({"email": AUTH_EMAIL, "password": AUTH_PASSWORD}),
        )
    }
    fn check(&self, _client: usize, _seq: u64, value: &Json) -> Result<(), String> {
        match value["sessionToken"].as_str() {
            Some(t) if t.len() == 64 => Ok(()),
            _ => Err(format!("loginUser returned {value}")),
        }
    }
}

/// Milliseconds since the epoch.
fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_millis() as f64)
}

/// `incidents:create` with its four-phase narrative in the same mutation, each client as another
/// frontline worker of the bench company: validation, the site check, the incident with its 19
/// index entries and status counts, and the narrative.
pub struct CreateIncident {
    site: OnceLock<String>,
}

impl Scenario for CreateIncident {
    fn name(&self) -> &'static str {
        "createIncident"
    }
    fn route(&self) -> &'static str {
        "/api/mutation"
    }
    fn body(&self, client: usize, seq: u64) -> Vec<u8> {
        let site = self.site.get().map_or("", String::as_str);
        let event = app::incidents::fields::format_event_time(now_ms() - 3_600_000.0);
        let args = json!({
            "sessionToken": worker_token(client),
            "site_id": site,
            "reporter_name": format!("Bench Worker {client}"),
            "participant_name": format!("Client {client} Visit {seq}"),
            "event_date_time": event,
            "location": "Kitchen",
            "narrative": {
                "before_event": "Breakfast as usual, calm and chatting with staff.",
                "during_event": "Slipped on water near the sink and fell onto one knee.",
                "end_event": "Staff helped them up and sat them in a chair.",
                "post_event": "Ice pack applied; family informed; no further pain reported.",
            },
        });
        request_body("incidents:create", &args)
    }
    fn check(&self, _client: usize, _seq: u64, value: &Json) -> Result<(), String> {
        match value.as_str() {
            Some(id) if id.len() == 32 => Ok(()),
            _ => Err(format!(
                "incidents:create returned {value}, expected an incident Id"
            )),
        }
    }
    fn prepare<'a>(&'a self, connection: &'a mut Connection) -> Preparation<'a> {
        Box::pin(async move {
            let sites = connection
                .call(
                    "query",
                    "sites/list:listCompanySites",
                    json!({"sessionToken": AUTH_TOKEN}),
                )
                .await?;
            let site = sites[0]["_id"]
                .as_str()
                .ok_or_else(|| anyhow::anyhow!("the bench company has no site: {sites}"))?;
            let _ = self.site.set(site.to_string());
            Ok(())
        })
    }
}

/// The first page (50) of the company's incidents with a status filter, newest first, once the
/// company holds `incidents` incidents (`prepare` adds what is missing). Run at two sizes, it
/// shows how the list scales with the company's number of incidents.
pub struct ListIncidents {
    incidents: usize,
    name: &'static str,
}

/// The status the list filters by (a fifth of the seeded incidents).
const LISTED_STATUS: &str = "analysis_pending";
/// Incidents added per seeding mutation.
const INCIDENT_BATCH: usize = 5_000;

impl ListIncidents {
    pub fn new(incidents: usize) -> ListIncidents {
        let size = match incidents {
            n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
            n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
            n => n.to_string(),
        };
        // A handful of names per process: leaking them keeps `name` a plain `&'static str`.
        let name = Box::leak(format!("incidentList{size}").into_boxed_str());
        ListIncidents { incidents, name }
    }
}

impl Scenario for ListIncidents {
    fn name(&self) -> &'static str {
        self.name
    }
    fn route(&self) -> &'static str {
        "/api/query"
    }
    fn body(&self, _client: usize, _seq: u64) -> Vec<u8> {
        let args = json!({
            "sessionToken": AUTH_TOKEN,
            "filters": {"status": LISTED_STATUS},
            "paginationOpts": {"numItems": RANGE_LEN as f64, "cursor": null},
        });
        request_body("incidents_listing:getAllCompanyIncidents", &args)
    }
    fn check(&self, _client: usize, _seq: u64, value: &Json) -> Result<(), String> {
        let page = value["page"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let expected = RANGE_LEN.min(self.incidents / 5);
        if page.len() != expected || page.iter().any(|i| i["overall_status"] != LISTED_STATUS) {
            return Err(format!(
                "{}: {} incidents on the page, expected {expected} {LISTED_STATUS}",
                self.name,
                page.len()
            ));
        }
        Ok(())
    }
    fn prepare<'a>(&'a self, connection: &'a mut Connection) -> Preparation<'a> {
        Box::pin(async move {
            let started = std::time::Instant::now();
            loop {
                let args = json!({"upTo": self.incidents as f64, "batch": INCIDENT_BATCH as f64});
                let added = connection
                    .call("mutation", "bench:seedIncidents", args)
                    .await?;
                if added.as_f64().unwrap_or(0.0) == 0.0 {
                    break;
                }
            }
            progress(format!(
                "{}: the bench company holds {} incidents (seeding took {:.1} s)",
                self.name,
                self.incidents,
                started.elapsed().as_secs_f64()
            ));
            Ok(())
        })
    }
}

/// Seeds the bench company up to `incidents` incidents (what is missing).
async fn seed_company(connection: &mut Connection, incidents: usize) -> anyhow::Result<()> {
    loop {
        let args = json!({"upTo": incidents as f64, "batch": INCIDENT_BATCH as f64});
        let added = connection
            .call("mutation", "bench:seedIncidents", args)
            .await?;
        if added.as_f64().unwrap_or(0.0) == 0.0 {
            return Ok(());
        }
    }
}

/// The company size the analysis scenarios are measured at (the 10,000).
pub const ANALYSIS_COMPANY: usize = 10_000;

/// The first page (50) of the analysis queue (`analysis:listQueue`: incidents awaiting or in
/// analysis, urgent first) of a company with `ANALYSIS_COMPANY` incidents, a fifth of them open.
pub struct AnalysisQueue;

impl Scenario for AnalysisQueue {
    fn name(&self) -> &'static str {
        "analysisQueue"
    }
    fn route(&self) -> &'static str {
        "/api/query"
    }
    fn body(&self, _client: usize, _seq: u64) -> Vec<u8> {
        let args = json!({
            "sessionToken": AUTH_TOKEN,
            "paginationOpts": {"numItems": RANGE_LEN as f64, "cursor": null},
        });
        request_body("analysis:listQueue", &args)
    }
    fn check(&self, _client: usize, _seq: u64, value: &Json) -> Result<(), String> {
        let page = value["page"].as_array().map(Vec::len).unwrap_or_default();
        let expected = RANGE_LEN.min(ANALYSIS_COMPANY / 5);
        if page != expected {
            return Err(format!(
                "analysisQueue: {page} incidents, expected {expected}"
            ));
        }
        Ok(())
    }
    fn prepare<'a>(&'a self, connection: &'a mut Connection) -> Preparation<'a> {
        Box::pin(async move { seed_company(connection, ANALYSIS_COMPANY).await })
    }
}

/// `analysis:getAnalysis` of one incident whose analysis the bench lead started (the page a team
/// lead keeps open), in the same company.
pub struct GetAnalysis {
    incident: OnceLock<String>,
}

impl Scenario for GetAnalysis {
    fn name(&self) -> &'static str {
        "getAnalysis"
    }
    fn route(&self) -> &'static str {
        "/api/query"
    }
    fn body(&self, _client: usize, _seq: u64) -> Vec<u8> {
        let incident = self.incident.get().map(String::as_str).unwrap_or_default();
        let args = json!({"sessionToken": AUTH_TOKEN, "incident_id": incident});
        request_body("analysis:getAnalysis", &args)
    }
    fn check(&self, _client: usize, _seq: u64, value: &Json) -> Result<(), String> {
        if value["analysis"]["status"].as_str().is_none() {
            return Err(format!("getAnalysis: no analysis in {value}"));
        }
        Ok(())
    }
    fn prepare<'a>(&'a self, connection: &'a mut Connection) -> Preparation<'a> {
        Box::pin(async move {
            seed_company(connection, ANALYSIS_COMPANY).await?;
            let queue = connection
                .call(
                    "query",
                    "analysis:listQueue",
                    json!({"sessionToken": AUTH_TOKEN, "status": "awaiting",
                           "paginationOpts": {"numItems": 1.0, "cursor": null}}),
                )
                .await?;
            let incident = queue["page"][0]["incident_id"]
                .as_str()
                .ok_or_else(|| anyhow::anyhow!("no incident awaits analysis: {queue}"))?
                .to_string();
            connection
                .call(
                    "mutation",
                    "analysis:startAnalysis",
                    json!({"sessionToken": AUTH_TOKEN, "incident_id": incident}),
                )
                .await?;
            let _ = self.incident.set(incident);
            Ok(())
        })
    }
}

/// The scenarios of the issue, in the order they run: reads first, so inserts do not change what
/// they read between client counts; the incident lists from the smallest company size up.
pub fn standard(plan: SeedPlan, incident_sizes: &[usize]) -> Vec<Arc<dyn Scenario>> {
    let mut sizes = incident_sizes.to_vec();
    sizes.sort_unstable();
    sizes.dedup();
    let mut all: Vec<Arc<dyn Scenario>> = vec![
        Arc::new(GetOne { plan }),
        Arc::new(Range50 { plan }),
        Arc::new(AuthList50),
    ];
    for size in sizes {
        all.push(Arc::new(ListIncidents::new(size)));
    }
    all.push(Arc::new(AnalysisQueue));
    all.push(Arc::new(GetAnalysis {
        incident: OnceLock::new(),
    }));
    all.push(Arc::new(Insert {
        plan,
        payload: payload(plan.payload_len),
        run: hex::encode(rand::random::<[u8; 4]>()),
    }));
    all.push(Arc::new(CreateIncident {
        site: OnceLock::new(),
    }));
    all.push(Arc::new(Login));
    all
}

/// The seeding requests: one `bench:seed` mutation per group.
pub fn seed_requests(plan: SeedPlan) -> impl Iterator<Item = (String, Json)> {
    let per_group = plan.per_group();
    (0..plan.groups).map(move |g| {
        let args = json!({
            "group": group_name(g),
            "first": (g * per_group) as f64,
            "count": per_group as f64,
            "payloadLen": plan.payload_len as f64,
        });
        ("bench:seed".to_string(), args)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_fall_in_the_seeded_range_and_spread() {
        let plan = SeedPlan {
            items: 10_000,
            groups: 200,
            payload_len: 10,
        };
        let get = GetOne { plan };
        let keys: std::collections::HashSet<String> =
            (0..1000).map(|seq| get.key(3, seq)).collect();
        assert!(keys.len() > 900, "keys repeat too often: {}", keys.len());
        assert!(keys
            .iter()
            .all(|k| k.as_str() < item_key(plan.seeded()).as_str()));
    }

    #[test]
    fn incident_lists_are_named_by_company_size() {
        assert_eq!(ListIncidents::new(10_000).name(), "incidentList10k");
        assert_eq!(ListIncidents::new(1_000_000).name(), "incidentList1M");
        assert_eq!(ListIncidents::new(150).name(), "incidentList150");
    }

    #[test]
    fn plans_too_thin_for_a_range_read_are_refused() {
        let plan = |items, groups| SeedPlan {
            items,
            groups,
            payload_len: 1,
        };
        assert!(plan(10_000, 200).validate().is_ok());
        assert!(plan(10_000, 201).validate().is_err());
        assert!(plan(10_000, 0).validate().is_err());
    }
}
