//! Listing 10,000 incidents of 20 companies (one company holds 6,000, the rest share 4,000):
//! every filter and sort, both directions, walked page by page with Convex cursors and checked with
//! offset pages, against a model computed in the test. Totals and status counts too.

use std::cmp::Ordering;

use app::incidents::record::IncidentRow;
use app::incidents::status::{AnalysisStatus, CaptureStatus, State};
use values::DocumentId;

use super::*;

const COMPANIES: usize = 20;
const BIG: usize = 6_000;
const T0: f64 = 1_750_000_000_000.0;
const PEOPLE: [&str; 9] = [
    "Sarah Williams",
    "tom Nguyen",
    "Ava O'Brien",
    "ben de Vries",
    "Chloe Smith",
    "chloe smith",
    "Dev Patel",
    "Émile Zola",
    "aisha khan",
];
const PLACES: [&str; 7] = [
    "Kitchen",
    "Garden shed",
    "Day room 3",
    "Bathroom",
    "Car park",
    "Lounge",
    "Bus stop",
];
/// A location only every 997th incident has: text searches for it outrun the scan limit.
const RARE: &str = "Rooftop terrace";

/// One seeded incident as the test knows it.
#[derive(Clone, Debug)]
struct Model {
    id: String,
    overall: String,
    created: f64,
    updated: f64,
    creator: String,
    participant: Option<String>,
    site: String,
    participant_sort: String,
    reporter_sort: String,
    text: String,
}

struct Tenant {
    company: Company,
    third_site: String,
    lead: Member,
    workers: Vec<Member>,
    participants: Vec<String>,
    rows: Vec<Model>,
}

fn state(i: usize) -> State {
    use AnalysisStatus as A;
    use CaptureStatus as C;
    let (capture, analysis) = match (i * 31 + 7) % 10 {
        0 | 1 => (C::Draft, A::NotStarted),
        2..=4 => (C::InProgress, A::NotStarted),
        5 | 6 => (C::Completed, A::NotStarted),
        7 => (C::Completed, A::InProgress),
        _ => (C::Completed, A::Completed),
    };
    State { capture, analysis }
}

async fn seed_company(app: &App, server: &Server, n: usize, c: usize) -> Tenant {
    let company = super::company(app, &format!("Care {c}")).await;
    let third_site = insert(
        app,
        "sites",
        json!({"company_id": company.id, "name": "West", "created_at": 1.0}),
    )
    .await;
    let lead = member(
        app,
        Some(&company.id),
        &format!("lead{c}@x.org"),
        "team_lead",
    )
    .await;
    let mut workers = Vec::new();
    for w in 0..4 {
        let email = format!("w{w}.{c}@x.org");
        workers.push(member(app, Some(&company.id), &email, "frontline_worker").await);
    }
    let mut participants = Vec::new();
    for p in 0..10 {
        let ndis = format!("4{c:02}{p:06}");
        participants.push(participant(app, &company, &lead.id, &ndis, "active").await);
    }
    let sites = [
        company.site.clone(),
        company.east.clone(),
        third_site.clone(),
    ];
    let mut rows = Vec::new();
    let mut models = Vec::new();
    for i in 0..n {
        let created = T0 + (i * 1000) as f64;
        let updated = T0 + ((i * 7919) % n * 1000 + 500) as f64;
        let state = state(i);
        let k = (i * 13) % 11;
        let participant = (k < 10).then(|| participants[k].clone());
        let participant_name = PEOPLE[(i * 7 + k) % PEOPLE.len()];
        let reporter_name = PEOPLE[(i * 23) % PEOPLE.len()];
        let creator = &workers[(i * 17) % 4];
        let location = if i % 997 == 0 {
            RARE
        } else {
            PLACES[(i * 29) % PLACES.len()]
        };
        let site = sites[(i * 5) % 3].clone();
        let id = |s: &str| DocumentId::decode(s).unwrap();
        let submitted = (state.capture == CaptureStatus::Completed).then_some(created + 10.0);
        let row = IncidentRow {
            company_id: id(&company.id),
            site_id: id(&site),
            reporter_name: reporter_name.into(),
            participant_id: participant.as_deref().map(id),
            participant_name: participant_name.into(),
            event_date_time: form_time(created - HOUR),
            event_at: created - HOUR,
            location: location.into(),
            capture_status: state.capture,
            analysis_status: state.analysis,
            overall_status: state.overall(),
            handoff_status: state.handoff(),
            created_at: created,
            created_by: id(&creator.id),
            updated_at: updated,
            updated_by: id(&creator.id),
            narrative_hash: None,
            questions_generated: false,
            narrative_enhanced: false,
            analysis_generated: false,
            current_step: None,
            step_description: None,
            content_preview: None,
            workflow_completed_at: submitted,
            submitted_by: submitted.map(|_| id(&creator.id)),
            submitted_at: submitted,
            completion_checklist: None,
            imported_from: None,
            participant_sort: String::new(),
            reporter_sort: String::new(),
        };
        rows.push(to_clean_json(
            &values::serde_bridge::to_value(&row).unwrap(),
        ));
        models.push(Model {
            id: String::new(),
            overall: state.overall().as_str().into(),
            created,
            updated,
            creator: creator.id.clone(),
            participant,
            site,
            participant_sort: participant_name.to_lowercase(),
            reporter_sort: reporter_name.to_lowercase(),
            text: format!("{participant_name}|{reporter_name}|{location}").to_lowercase(),
        });
    }
    let mut ids = Vec::new();
    for chunk in rows.chunks(500) {
        let made = server
            .call("test:seedIncidents", &lead.token, json!({"rows": chunk}))
            .await
            .unwrap();
        ids.extend(
            made.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string()),
        );
    }
    for (model, id) in models.iter_mut().zip(ids) {
        model.id = id;
    }
    Tenant {
        company,
        third_site,
        lead,
        workers,
        participants,
        rows: models,
    }
}

/// A list request: the filters as sent and the same as a predicate on the model.
struct Case {
    name: String,
    filters: Json,
    keep: Box<dyn Fn(&Model) -> bool>,
}

fn order(sort: &str, a: &Model, b: &Model) -> Ordering {
    let by = |x: &str, y: &str| x.cmp(y).then(a.created.total_cmp(&b.created));
    match sort {
        "date" => a.created.total_cmp(&b.created),
        "updated" => a.updated.total_cmp(&b.updated),
        "status" => by(&a.overall, &b.overall),
        "participant" => by(&a.participant_sort, &b.participant_sort),
        _ => by(&a.reporter_sort, &b.reporter_sort),
    }
}

fn expected(rows: &[Model], case: &Case, sort: &str, desc: bool) -> Vec<String> {
    let mut kept: Vec<&Model> = rows.iter().filter(|m| (case.keep)(m)).collect();
    kept.sort_by(|a, b| order(sort, a, b));
    if desc {
        kept.reverse();
    }
    kept.iter().map(|m| m.id.clone()).collect()
}

fn ids(list: &Json) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|i| i["_id"].as_str().unwrap().to_string())
        .collect()
}

/// Walks every page of a list with cursors, then checks two offset pages and the total.
async fn check_list(
    app: &App,
    path: &str,
    base: Json,
    case: &Case,
    rows: &[Model],
    page_size: usize,
) -> usize {
    let mut calls = 0;
    for sort in ["date", "status", "participant", "reporter", "updated"] {
        for desc in [false, true] {
            let want = expected(rows, case, sort, desc);
            let direction = if desc { "desc" } else { "asc" };
            let mut args = base.clone();
            args["filters"] = case.filters.clone();
            args["sorting"] = json!({"field": sort, "direction": direction});
            let label = format!("{path} {} by {sort} {direction}", case.name);
            let mut got = Vec::new();
            let mut cursor = Json::Null;
            loop {
                let mut page = args.clone();
                page["paginationOpts"] = json!({"numItems": page_size, "cursor": cursor});
                let r = app.ok("query", path, page).await;
                calls += 1;
                let items = ids(&r["page"]);
                assert!(items.len() <= page_size, "{label}");
                if r["scanLimited"] == false && r["isDone"] == false {
                    assert_eq!(items.len(), page_size, "{label}: only short when done");
                }
                assert!(r.get("incidents").is_none(), "{label}: the page only once");
                assert_eq!(r["totalCount"], want.len() as f64, "{label}");
                assert_eq!(r["totalCountExact"], true, "{label}");
                got.extend(items);
                if r["isDone"] == true {
                    break;
                }
                cursor = r["continueCursor"].clone();
                assert!(calls < 10_000, "{label}: does not end");
            }
            assert_eq!(got, want, "{label}");
            for (offset, limit) in [(0usize, 50usize), (120, 30)] {
                let mut page = args.clone();
                page["pagination"] = json!({"limit": limit, "offset": offset});
                let r = app.ok("query", path, page).await;
                calls += 1;
                if r["scanLimited"] == true {
                    continue;
                }
                let end = (offset + limit).min(want.len());
                let slice = &want[offset.min(end)..end];
                assert_eq!(ids(&r["incidents"]), slice, "{label} offset {offset}");
                assert_eq!(r["hasMore"], want.len() > offset + limit, "{label}");
            }
        }
    }
    calls
}

fn cases(t: &Tenant, big: bool) -> Vec<Case> {
    let p3 = t.participants[3].clone();
    let w1 = t.workers[1].id.clone();
    let east = t.company.east.clone();
    let west = t.third_site.clone();
    let (from, to) = (T0 + 100_000.0, T0 + 400_000.0);
    let case = |name: &str, filters: Json, keep: Box<dyn Fn(&Model) -> bool>| Case {
        name: name.to_string(),
        filters,
        keep,
    };
    let mut all = vec![
        case("unfiltered", json!({}), Box::new(|_| true)),
        case(
            "analysis pending",
            json!({"status": "analysis_pending"}),
            Box::new(|m| m.overall == "analysis_pending"),
        ),
        case("participant", json!({"participantId": p3.clone()}), {
            let p3 = p3.clone();
            Box::new(move |m| m.participant.as_deref() == Some(p3.as_str()))
        }),
        case("reporter", json!({"userId": w1.clone()}), {
            let w1 = w1.clone();
            Box::new(move |m| m.creator == w1)
        }),
        case("site", json!({"siteId": east.clone()}), {
            let east = east.clone();
            Box::new(move |m| m.site == east)
        }),
        case(
            "dates",
            json!({"dateRange": {"start": from, "end": to}}),
            Box::new(move |m| m.created >= from && m.created <= to),
        ),
        case(
            "text",
            json!({"searchText": "  GARDEN "}),
            Box::new(|m| m.text.contains("garden")),
        ),
        case(
            "pending and reporter",
            json!({"status": "capture_pending", "userId": w1.clone()}),
            Box::new(move |m| m.overall == "capture_pending" && m.creator == w1),
        ),
        case(
            "participant and completed",
            json!({"participantId": p3.clone(), "status": "completed"}),
            Box::new(move |m| {
                m.participant.as_deref() == Some(p3.as_str()) && m.overall == "completed"
            }),
        ),
        case(
            "site, status and dates",
            json!({"siteId": west.clone(), "status": "capture_pending",
                   "dateRange": {"start": from, "end": T0 + 5_000_000.0}}),
            Box::new(move |m| {
                m.site == west
                    && m.overall == "capture_pending"
                    && m.created >= from
                    && m.created <= T0 + 5_000_000.0
            }),
        ),
    ];
    if big {
        all.push(case(
            "rare text",
            json!({"searchText": "rooftop"}),
            Box::new(|m| m.text.contains("rooftop")),
        ));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_incidents_list_in_the_right_order_for_every_filter_and_sort() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let server = Server::new(&app);
        let started = std::time::Instant::now();
        let mut tenants = Vec::new();
        for c in 0..COMPANIES {
            let n = match c {
                0 => BIG,
                1 => 220,
                _ => 210,
            };
            tenants.push(seed_company(&app, &server, n, c).await);
        }
        let total: usize = tenants.iter().map(|t| t.rows.len()).sum();
        assert_eq!(total, 10_000);
        eprintln!(
            "{db:?}: seeded {total} incidents in {:.1?}",
            started.elapsed()
        );

        let mut calls = 0;
        for (c, page_size) in [(0, 400), (5, 23)] {
            let t = &tenants[c];
            let base = json!({"sessionToken": t.lead.token});
            for case in cases(t, c == 0) {
                let path = "incidents_listing:getAllCompanyIncidents";
                calls += check_list(&app, path, base.clone(), &case, &t.rows, page_size).await;
            }
            // Counts by status come from the counters and match the model.
            let counts = app
                .ok(
                    "query",
                    "incidents_listing:getIncidentCounts",
                    json!({"sessionToken": t.lead.token}),
                )
                .await;
            for status in ["capture_pending", "analysis_pending", "completed"] {
                let n = t.rows.iter().filter(|m| m.overall == status).count();
                assert_eq!(counts[status], n as f64, "company {c} {status}");
            }
            assert_eq!(counts["total"], t.rows.len() as f64);
        }

        // A worker's own incidents: completed ones only when asked for.
        let t = &tenants[1];
        let me = &t.workers[2];
        let mine: Vec<Model> = t
            .rows
            .iter()
            .filter(|m| m.creator == me.id)
            .cloned()
            .collect();
        for include in [false, true] {
            let base = json!({"sessionToken": me.token, "includeCompleted": include});
            for case in cases(t, false) {
                let personal =
                    !case.name.contains("participant") && !case.name.contains("reporter");
                if !personal {
                    continue;
                }
                let keep = case.keep;
                let case = Case {
                    keep: Box::new(move |m| keep(m) && (include || m.overall != "completed")),
                    ..case
                };
                let path = "incidents_listing:getMyIncidents";
                calls += check_list(&app, path, base.clone(), &case, &mine, 7).await;
            }
        }
        let personal = app
            .ok(
                "query",
                "incidents_listing:getIncidentCounts",
                json!({"sessionToken": me.token}),
            )
            .await;
        assert_eq!(personal["scope"], "personal");
        assert_eq!(personal["total"], mine.len() as f64);

        // A cursor belongs to its filter and sort.
        let lead = &tenants[5].lead.token;
        let first = app
            .ok(
                "query",
                "incidents_listing:getAllCompanyIncidents",
                json!({"sessionToken": lead, "paginationOpts": {"numItems": 5, "cursor": null}}),
            )
            .await;
        let (code, _, field) = failure(
            &app,
            "query",
            "incidents_listing:getAllCompanyIncidents",
            json!({"sessionToken": lead, "sorting": {"field": "reporter"},
                   "paginationOpts": {"numItems": 5, "cursor": first["continueCursor"]}}),
        )
        .await;
        assert_eq!(
            (code.as_str(), field.as_str()),
            ("VALIDATION", "paginationOpts.cursor")
        );
        let named = &first["page"][0];
        assert!(["Primary", "East", "West"].contains(&named["site_name"].as_str().unwrap()));
        eprintln!(
            "{db:?}: {calls} list calls checked in {:.1?}",
            started.elapsed()
        );
        app.stop().await;
    }
}
