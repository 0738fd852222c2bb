//! The company limits (requests per minute, daily cost cap), who may read the request log, and
//! pruning old rows.

use std::time::Duration;

use serde_json::{json, Value as Json};

use crate::fake::{Fake, Reply};
use crate::harness::{Db, Place};
use crate::{
    company, env_for, insert, logs, narrative_vars, now_ms, person, start, test_prompt, DAY_MS, Q,
};

const NAME: &str = "enhance_narrative_post_event";

fn vars() -> Json {
    narrative_vars(
        "postEvent",
        "Staff checked Sarah's knee and called her sister.",
    )
}

pub async fn rate_limit_and_cost_cap(db: Db) {
    // Two requests a minute per company.
    let place = Place::new(db).await;
    let fake = Fake::start(Reply::text("Checked and called.", 10, 10)).await;
    let mut env = env_for(&fake);
    env.push(("AI_COMPANY_REQUESTS_PER_MINUTE", "2".to_string()));
    let app = start(&place, &env).await;
    let (a, b) = (company(&app, "Alpha").await, company(&app, "Beta").await);
    let (_, first) = person(&app, Some(&a), "system_admin").await;
    let (_, second) = person(&app, Some(&a), "system_admin").await;
    let (_, other) = person(&app, Some(&b), "system_admin").await;
    for token in [&first, &first] {
        assert_eq!(
            test_prompt(&app, token, NAME, vars()).await["status"],
            "success"
        );
    }
    let body = test_prompt(&app, &second, NAME, vars()).await;
    assert_eq!(body["errorData"]["code"], "RATE_LIMITED", "{body}");
    assert!(body["errorData"]["message"]
        .as_str()
        .unwrap()
        .contains("2 AI requests per minute"));
    // Another company has its own allowance.
    assert_eq!(
        test_prompt(&app, &other, NAME, vars()).await["status"],
        "success"
    );
    assert_eq!(
        fake.bodies().len(),
        3,
        "the refused request never reached the provider"
    );
    let refused = logs(&app, &first, json!({"success": false})).await;
    assert_eq!(
        refused.len(),
        1,
        "{:#?}",
        logs(&app, &first, json!({})).await
    );
    assert_eq!(refused[0]["error_code"], "RATE_LIMITED");
    assert_eq!(refused[0]["company_id"], a.as_str());
    app.stop().await;

    // A daily cost cap of $3 with calls costing $2: the third call is refused.
    let place = Place::new(db).await;
    let fake = Fake::start(Reply::text("Checked and called.", 1000, 500)).await;
    let mut env = env_for(&fake);
    env.push(("AI_COMPANY_DAILY_COST_CAP_USD", "3".to_string()));
    let app = start(&place, &env).await;
    let a = company(&app, "Alpha").await;
    let (_, sys) = person(&app, Some(&a), "system_admin").await;
    for _ in 0..2 {
        assert_eq!(
            test_prompt(&app, &sys, NAME, vars()).await["status"],
            "success"
        );
    }
    let body = test_prompt(&app, &sys, NAME, vars()).await;
    assert_eq!(body["errorData"]["code"], "RATE_LIMITED", "{body}");
    let message = body["errorData"]["message"].as_str().unwrap();
    assert!(
        message.contains("daily AI cost limit of $3.00"),
        "{message}"
    );
    assert_eq!(fake.bodies().len(), 2);
    let refused = logs(&app, &sys, json!({"success": false})).await;
    assert_eq!(refused[0]["error_code"], "COST_CAP_REACHED");
    let stats = app
        .ok(
            Q,
            "promptManager:getAiUsageStats",
            json!({"sessionToken": sys, "days": 1}),
        )
        .await;
    assert_eq!(stats["totals"]["requests"], 3.0);
    assert_eq!(stats["totals"]["rejected"], 1.0);
    assert_eq!(stats["todayCostUsd"], 4.0);
    assert_eq!(stats["limits"]["dailyCostCapUsd"], 3.0);
    app.stop().await;
}

async fn count(app: &crate::harness::App, token: &str, extra: Json) -> usize {
    logs(app, token, extra).await.len()
}

pub async fn who_reads_the_log_and_pruning(place: &Place) {
    let app = crate::App::start(place).await;
    let (a, b) = (company(&app, "Alpha").await, company(&app, "Beta").await);
    let (_, sys_a) = person(&app, Some(&a), "system_admin").await;
    let (_, sys_b) = person(&app, Some(&b), "system_admin").await;
    let (_, platform) = person(&app, None, "system_admin").await;
    for token in [&sys_a, &sys_b, &platform] {
        assert_eq!(
            test_prompt(&app, token, NAME, vars()).await["status"],
            "success"
        );
    }
    let (_, admin_a) = person(&app, Some(&a), "company_admin").await;
    let (_, lead_a) = person(&app, Some(&a), "team_lead").await;
    let mine = logs(&app, &admin_a, json!({})).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["company_id"], a.as_str());
    for extra in [json!({"companyId": b}), json!({"allCompanies": true})] {
        let mut args = json!({"sessionToken": admin_a});
        for (k, v) in extra.as_object().unwrap() {
            args[k] = v.clone();
        }
        assert_eq!(
            app.code(Q, "promptManager:listAiRequestLogs", args).await,
            "FORBIDDEN"
        );
    }
    assert_eq!(
        app.code(
            Q,
            "promptManager:listAiRequestLogs",
            json!({"sessionToken": lead_a})
        )
        .await,
        "FORBIDDEN"
    );
    assert_eq!(count(&app, &platform, json!({})).await, 3);
    assert_eq!(count(&app, &platform, json!({"companyId": b})).await, 1);
    let stats = app
        .ok(
            Q,
            "promptManager:getAiUsageStats",
            json!({"sessionToken": admin_a}),
        )
        .await;
    assert_eq!(stats["scope"], "company");
    assert_eq!(stats["totals"]["requests"], 1.0);
    // Paging through everything, one row at a time.
    let first = app
        .ok(
            Q,
            "promptManager:listAiRequestLogs",
            json!({"sessionToken": platform, "paginationOpts": {"numItems": 2, "cursor": null}}),
        )
        .await;
    assert_eq!(first["page"].as_array().unwrap().len(), 2);
    assert_eq!(first["isDone"], false);
    let rest = app
        .ok(
            Q,
            "promptManager:listAiRequestLogs",
            json!({"sessionToken": platform, "paginationOpts": {"numItems": 2, "cursor": first["continueCursor"]}}),
        )
        .await;
    assert_eq!(rest["page"].as_array().unwrap().len(), 1);
    assert!(first["page"][0]["created_at"].as_f64() >= rest["page"][0]["created_at"].as_f64());

    // Rows older than the retention (30 days by default) are pruned; newer ones stay.
    let old = now_ms() - 40.0 * DAY_MS;
    insert(
        &app,
        "ai_request_logs",
        json!({"correlation_id": "old", "operation": NAME, "variables": {}, "tokens_in": 1.0,
               "tokens_out": 1.0, "cost_usd": 0.0, "latency_ms": 1.0, "success": true,
               "attempts": [], "company_id": a, "created_at": old}),
    )
    .await;
    insert(
        &app,
        "ai_usage_daily",
        json!({"company_id": a, "owner_key": a, "day": (old / DAY_MS).floor(), "operation": NAME,
               "requests": 1.0, "successes": 1.0, "failures": 0.0, "rejected": 0.0, "tokens_in": 1.0,
               "tokens_out": 1.0, "cost_usd": 0.0, "latency_ms_total": 1.0}),
    )
    .await;
    assert_eq!(count(&app, &admin_a, json!({})).await, 2);
    let env = |key: &str| (key == "SUPPORTSIGNAL_ENV").then(|| "test".to_string());
    let config = config::Config::from_env(config::Overrides::default(), env).unwrap();
    let runtime = functions::Runtime::new(
        app::registry(&config),
        app.store.clone(),
        Duration::from_secs(30),
    );
    let pruned = runtime
        .call(functions::Call {
            path: app::ai_service::prune_path().to_string(),
            expected: None,
            args: json_value(json!({})),
            auth: functions::Auth::anonymous(),
            request_id: functions::RequestId::generate(),
            caller: functions::Caller::Server,
        })
        .await
        .unwrap()
        .value;
    assert_eq!(
        pruned.get("deleted").and_then(values::Value::as_f64),
        Some(2.0)
    );
    let left = logs(&app, &admin_a, json!({})).await;
    assert_eq!(left.len(), 1);
    assert_ne!(left[0]["correlation_id"], "old");
    app.stop().await;
}

fn json_value(json: Json) -> values::Value {
    values::json::from_clean_json(&json).unwrap()
}
