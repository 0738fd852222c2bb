//! Prompt templates through the real HTTP API: the defaults seeded at start, the save-time check,
//! versions, rollback, resolution (and its cache, across two nodes on PostgreSQL), groups, token
//! adjustments, and who may do what. Administration in `admin.rs`.

mod admin;
#[path = "../harness/mod.rs"]
mod harness;
#[path = "../seed/mod.rs"]
mod seed;

use std::time::Duration;

use harness::{backends, App, Db, Place};
use seed::insert;
use serde_json::{json, Value as Json};
use values::{Object, Value};

pub const M: &str = "mutation";
pub const Q: &str = "query";

/// Who calls, by role, plus their company.
pub struct People {
    pub company: String,
    pub system: String,
    pub demo: String,
    pub company_admin: String,
    pub team_lead: String,
    pub frontline: String,
}

/// The id of a prompt version that existed once (inserted, then deleted).
pub async fn deleted_prompt(app: &App) -> String {
    let (id, _, _) = app
        .store
        .mutate(|txn| {
            let row = txn
                .query("ai_prompts")?
                .first()?
                .expect("a seeded prompt")
                .fields;
            let id = txn.insert("ai_prompts", row)?;
            txn.delete(&id)?;
            Ok::<_, store::StoreError>(id)
        })
        .await
        .unwrap();
    id.encode()
}

/// A user with a live session (written straight into the store: no password hashing).
pub async fn person(app: &App, company: Option<&str>, role: &str) -> String {
    seed::anyone(app, company, role).await.token
}

pub async fn people(app: &App) -> People {
    let company = insert(
        app,
        "companies",
        json!({"name": "ABC Care", "slug": "abc-care", "contact_email": "office@abc.org",
               "status": "active", "created_at": 1.0}),
    )
    .await;
    People {
        system: person(app, None, "system_admin").await,
        demo: person(app, None, "demo_admin").await,
        company_admin: person(app, Some(&company), "company_admin").await,
        team_lead: person(app, Some(&company), "team_lead").await,
        frontline: person(app, Some(&company), "frontline_worker").await,
        company,
    }
}

/// What `supportsignal serve` does at start: seed the defaults.
pub async fn start_up(app: &App) {
    let env = |key: &str| (key == "SUPPORTSIGNAL_ENV").then(|| "test".to_string());
    let config = config::Config::from_env(config::Overrides::default(), env).unwrap();
    let runtime = functions::Runtime::new(
        app::registry(&config),
        app.store.clone(),
        Duration::from_secs(30),
    );
    app::ai_service::seed_default_prompts(&runtime).await;
}

pub async fn active(app: &App, name: &str) -> Json {
    app.ok(
        Q,
        "promptManager:getActivePrompt",
        json!({"prompt_name": name}),
    )
    .await
}

/// Sample values for every declared variable of a prompt.
fn sample_values(prompt: &Json) -> Json {
    let mut values = serde_json::Map::new();
    for var in prompt["variables"].as_array().unwrap() {
        let name = var["name"].as_str().unwrap();
        let value = match var["type"].as_str().unwrap() {
            "number" => json!(3),
            "boolean" => json!(true),
            _ => json!(format!("<sample {name}>")),
        };
        values.insert(name.to_string(), value);
    }
    Json::Object(values)
}

async fn audit_actions(app: &App) -> Vec<(String, Option<String>)> {
    let (rows, _, _) = app
        .store
        .query(|txn| txn.query("audit_log")?.collect())
        .await
        .unwrap();
    rows.iter()
        .filter(|r| r.get("event").and_then(Value::as_str) == Some("ai_prompt_changed"))
        .map(|r| {
            let details = r
                .get("details")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_else(Object::new);
            (
                details
                    .get("action")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                r.get("actor_id")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            )
        })
        .collect()
}

async fn seeding_gives_the_defaults_once(app: &App, p: &People) {
    start_up(app).await;
    // A second start (another node, a restart) seeds nothing more.
    start_up(app).await;
    let listed = app
        .ok(
            Q,
            "promptManager:listAllPrompts",
            json!({"sessionToken": p.frontline}),
        )
        .await;
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 12, "{listed:#?}");
    let all = app
        .ok(
            Q,
            "promptManager:listAllPrompts",
            json!({"sessionToken": p.frontline, "activeOnly": false}),
        )
        .await;
    assert_eq!(
        all.as_array().unwrap().len(),
        12,
        "seeding twice made duplicates"
    );
    for phase in ["before_event", "during_event", "end_event", "post_event"] {
        let questions = active(app, &format!("generate_clarification_questions_{phase}")).await;
        assert_eq!(questions["output_format"], "json");
        assert_eq!(questions["max_tokens"], 2000.0);
        assert_eq!(questions["prompt_version"], "v1.0.0");
        assert_eq!(questions["subsystem"], "incidents");
        assert_eq!(questions["temperature"], 0.3);
        let enhance = active(app, &format!("enhance_narrative_{phase}")).await;
        assert_eq!(enhance["output_format"], "text");
        assert_eq!(enhance["max_tokens"], 4000.0);
    }
    assert_eq!(
        active(app, "generate_mock_answers").await["max_tokens"],
        5000.0
    );
    // Every seeded prompt renders with sample values, with nothing left unfilled.
    for prompt in listed {
        let name = prompt["prompt_name"].as_str().unwrap();
        let values = sample_values(prompt);
        let out = app
            .ok(
                Q,
                "promptManager:processTemplateWithValidationQuery",
                json!({"prompt_name": name, "variables": values}),
            )
            .await;
        assert_eq!(out["isValid"], true, "{name}: {out}");
        let text = out["processedTemplate"].as_str().unwrap();
        assert!(!text.contains("{{"), "{name}: {text}");
        for var in prompt["variables"].as_array().unwrap() {
            let sample = format!("<sample {}>", var["name"].as_str().unwrap());
            assert!(text.contains(&sample), "{name} lacks {sample}");
        }
    }
    // Seeded by the system, audited as such.
    let actions = audit_actions(app).await;
    assert_eq!(
        actions.iter().filter(|(a, _)| a == "seed_defaults").count(),
        1,
        "{actions:?}"
    );
    // Seeding through the API adds nothing when everything is present.
    let seeded = app
        .ok(
            M,
            "promptManager:seedPromptTemplates",
            json!({"sessionToken": p.demo}),
        )
        .await;
    assert_eq!(seeded["promptIds"], json!([]));
}

async fn validation_reports_missing_unused_and_types(app: &App) {
    let out = app
        .ok(
            Q,
            "promptManager:processTemplateWithValidationQuery",
            json!({"prompt_name": "enhance_narrative_during_event",
                   "variables": {"participantName": "Sarah Williams", "reporterName": 7,
                                 "location": "Kitchen", "eventDateTime": "2025-10-01 14:00",
                                 "colour": "blue"}}),
        )
        .await;
    assert_eq!(out["isValid"], false);
    assert_eq!(out["missing"], json!(["duringEvent"]));
    assert_eq!(out["unused"], json!(["colour"]));
    assert_eq!(out["typeErrors"].as_array().unwrap().len(), 1, "{out}");
    assert!(out["typeErrors"][0]
        .as_str()
        .unwrap()
        .starts_with("reporterName"));
    let preview = out["processedTemplate"].as_str().unwrap();
    // What was given is filled in; what is missing or wrong shows as its placeholder.
    assert!(preview.contains("Sarah Williams") && preview.contains("Kitchen"));
    assert!(preview.contains("{{duringEvent}}") && preview.contains("{{reporterName}}"));
    // The optional answers variable may be left out.
    assert!(!preview.contains("{{duringEventQA}}"));
    // No such prompt: null, as getActivePrompt.
    let none = app
        .ok(
            Q,
            "promptManager:processTemplateWithValidationQuery",
            json!({"prompt_name": "no_such_prompt", "variables": {}}),
        )
        .await;
    assert!(none.is_null());
    assert!(active(app, "no_such_prompt").await.is_null());
}

async fn saving_checks_the_template(app: &App, p: &People) {
    let create = |template: &str, variables: Json| {
        json!({"sessionToken": p.system, "prompt_name": "generate_mock_answers",
               "prompt_template": template, "variables": variables})
    };
    let body = app
        .call(
            M,
            "promptManager:createPromptVersion",
            create(
                "Answer {{questions}} for {{participant}}",
                json!([
                    {"name": "questions", "type": "string", "required": true}
                ]),
            ),
        )
        .await;
    assert_eq!(body["errorData"]["code"], "VALIDATION", "{body}");
    assert_eq!(body["errorData"]["field"], "prompt_template");
    assert!(
        body["errorData"]["message"]
            .as_str()
            .unwrap()
            .contains("participant"),
        "{body}"
    );
    // A default of the wrong type, an unclosed placeholder: each named, all at once.
    let body = app
        .call(
            M,
            "promptManager:createPromptVersion",
            create(
                "{{questions}} times {{count}} and {{oops",
                json!([
                    {"name": "questions", "type": "string", "required": true},
                    {"name": "count", "type": "number", "required": false, "default": "three"}
                ]),
            ),
        )
        .await;
    let message = body["errorData"]["message"].as_str().unwrap();
    assert_eq!(body["errorData"]["code"], "VALIDATION");
    assert!(
        message.contains("count") && message.contains("not closed"),
        "{message}"
    );
    // The reference's updatePromptTemplate is checked too.
    let body = app
        .call(
            M,
            "promptManager:updatePromptTemplate",
            json!({"sessionToken": p.demo, "prompt_name": "generate_mock_answers",
                   "new_template": "Answer {{questions}} about {{unknown_thing}}"}),
        )
        .await;
    assert_eq!(body["errorData"]["code"], "VALIDATION", "{body}");
    assert_eq!(body["errorData"]["field"], "new_template");
    // Nothing was saved by the refused attempts.
    let versions = app
        .ok(
            Q,
            "promptManager:listPromptVersions",
            json!({"sessionToken": p.frontline, "prompt_name": "generate_mock_answers"}),
        )
        .await;
    assert_eq!(versions.as_array().unwrap().len(), 1);
    assert_eq!(
        app.code(
            M,
            "promptManager:updatePromptTemplate",
            json!({"sessionToken": p.demo, "prompt_name": "nope", "new_template": "x"})
        )
        .await,
        "NOT_FOUND"
    );
}

async fn versions_resolve_and_roll_back(app: &App, p: &People) {
    let name = "generate_clarification_questions_end_event";
    let original = active(app, name).await;
    let mut variables = original["variables"].clone();
    variables
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "site", "type": "string", "required": false, "default": "the site"}));
    let template = "Ask about {{endEvent}} with {{participantName}}, {{reporterName}}, {{location}}, {{eventDateTime}} at {{site}}. Reply with JSON.";
    let made = app
        .ok(
            M,
            "promptManager:createPromptVersion",
            json!({"sessionToken": p.system, "prompt_name": name, "prompt_template": template,
                   "variables": variables, "max_tokens": 1500}),
        )
        .await;
    assert_eq!(made["prompt_version"], "v1.0.1");
    let now = active(app, name).await;
    assert_eq!(now["prompt_template"], template);
    // Anyone may read the active prompt, so it does not say which administrator wrote it.
    for field in ["created_by", "updated_by", "replaced_by", "acknowledged_by"] {
        assert!(now.get(field).is_none(), "{field} shown: {now}");
    }
    assert_eq!(now["max_tokens"], 1500.0);
    assert_eq!(
        now["output_format"], "json",
        "unchanged fields are carried over"
    );
    let versions = app
        .ok(
            Q,
            "promptManager:listPromptVersions",
            json!({"sessionToken": p.team_lead, "prompt_name": name}),
        )
        .await;
    let versions = versions.as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["prompt_version"], "v1.0.1", "newest first");
    assert_eq!(
        versions.iter().filter(|v| v["is_active"] == true).count(),
        1
    );
    // Roll back: activate the original.
    let back = app
        .ok(
            M,
            "promptManager:activatePromptVersion",
            json!({"sessionToken": p.system, "prompt_id": original["_id"]}),
        )
        .await;
    assert_eq!(back["previous_version"], "v1.0.1");
    let now = active(app, name).await;
    assert_eq!(now["_id"], original["_id"]);
    assert_eq!(now["prompt_template"], original["prompt_template"]);
    let got = app
        .ok(
            Q,
            "promptManager:getPrompt",
            json!({"sessionToken": p.frontline, "prompt_id": made["prompt_id"]}),
        )
        .await;
    assert_eq!(got["is_active"], false);
    assert!(got["replaced_at"].is_number());
    assert!(
        got["created_by"].is_string(),
        "the prompt manager shows the author: {got}"
    );
    // A draft (not activated) does not resolve.
    app.ok(
        M,
        "promptManager:createPromptVersion",
        json!({"sessionToken": p.system, "prompt_name": name, "prompt_template": template,
               "variables": variables, "activate": false, "prompt_version": "v2.0.0-draft"}),
    )
    .await;
    assert_eq!(active(app, name).await["_id"], original["_id"]);
    // Who did what is in the audit log.
    let actions = audit_actions(app).await;
    for wanted in ["create_version", "activate_version"] {
        assert!(
            actions.iter().any(|(a, who)| a == wanted && who.is_some()),
            "{actions:?}"
        );
    }
}

async fn permissions(app: &App, p: &People) {
    let edit = json!({"prompt_name": "generate_mock_answers", "new_template": "{{questions}}"});
    let with = |token: &str, args: &Json| {
        let mut args = args.clone();
        args["sessionToken"] = json!(token);
        args
    };
    for token in [&p.frontline, &p.team_lead, &p.company_admin] {
        assert_eq!(
            app.code(M, "promptManager:updatePromptTemplate", with(token, &edit))
                .await,
            "FORBIDDEN"
        );
        assert_eq!(
            app.code(
                M,
                "promptManager:createPromptVersion",
                with(token, &json!({"prompt_name": "x", "prompt_template": "hi"}))
            )
            .await,
            "FORBIDDEN"
        );
    }
    // Demo admins hold sample_data (the contract's edits) but not system_configuration.
    assert_eq!(
        app.code(
            M,
            "promptManager:resetPromptToDefault",
            with(&p.demo, &json!({"prompt_name": "generate_mock_answers"}))
        )
        .await,
        "FORBIDDEN"
    );
    assert_eq!(
        app.code(Q, "promptManager:listAllPrompts", json!({})).await,
        "UNAUTHENTICATED"
    );
    // Anyone, signed in or not, reads the active prompt.
    assert_eq!(
        active(app, "generate_mock_answers").await["prompt_name"],
        "generate_mock_answers"
    );
}

/// On PostgreSQL, two server nodes share the database: a change made through one is what the
/// other resolves next, cache or not.
async fn the_cache_sees_changes_made_on_another_node(place: &Place, first: &App, p: &People) {
    let second = App::start(place).await;
    let name = "enhance_narrative_end_event";
    let before = active(first, name).await;
    assert_eq!(active(&second, name).await["_id"], before["_id"]);
    let new_text = format!(
        "{} Keep it short.",
        before["prompt_template"].as_str().unwrap()
    );
    second
        .ok(
            M,
            "promptManager:updatePromptTemplate",
            json!({"sessionToken": p.demo, "prompt_name": name, "new_template": new_text}),
        )
        .await;
    let after = active(first, name).await;
    assert_eq!(after["prompt_template"], new_text.as_str());
    assert_ne!(after["_id"], before["_id"]);
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_templates() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let p = people(&app).await;
        seeding_gives_the_defaults_once(&app, &p).await;
        validation_reports_missing_unused_and_types(&app).await;
        saving_checks_the_template(&app, &p).await;
        versions_resolve_and_roll_back(&app, &p).await;
        permissions(&app, &p).await;
        // Again after resolutions filled the cache: a change on this node is seen at once.
        let name = "enhance_narrative_before_event";
        let before = active(&app, name).await;
        app.ok(
            M,
            "promptManager:updatePromptTemplate",
            json!({"sessionToken": p.demo, "prompt_name": name,
                   "new_template": format!("{} Use short sentences.", before["prompt_template"].as_str().unwrap())}),
        )
        .await;
        assert!(active(&app, name).await["prompt_template"]
            .as_str()
            .unwrap()
            .ends_with("Use short sentences."));
        if db == Db::Postgres {
            the_cache_sees_changes_made_on_another_node(&place, &app, &p).await;
        }
        admin::administration(&app, &p).await;
        app.stop().await;
    }
}
