//! Administration: the reference's edits (template, model), limits, reset to the seeded default,
//! groups, token adjustments, and clearing and reseeding.

use serde_json::{json, Value as Json};

use crate::harness::App;
use crate::{active, People, M, Q};

pub async fn administration(app: &App, p: &People) {
    edits_keep_history_and_every_declaration(app, p).await;
    limits_are_checked(app, p).await;
    reset_to_default_restores_the_seeded_wording(app, p).await;
    groups(app, p).await;
    adjustments_need_one_to_act_on(app, p).await;
    reset_and_seed(app, p).await;
}

async fn edits_keep_history_and_every_declaration(app: &App, p: &People) {
    let name = "generate_mock_answers";
    let declared = |prompt: &Json| -> Vec<String> {
        prompt["variables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_string())
            .collect()
    };
    let seeded = declared(&active(app, name).await);
    // Wording that leaves out variables the code supplies (all required here) is refused, naming
    // them, and nothing is saved.
    let body = app
        .call(
            M,
            "promptManager:updatePromptTemplate",
            json!({"sessionToken": p.demo, "prompt_name": name,
                   "new_template": "Answer each of {{questions}} as the worker would, in JSON."}),
        )
        .await;
    assert_eq!(body["errorData"]["code"], "VALIDATION", "{body}");
    assert_eq!(body["errorData"]["field"], "new_template");
    let message = body["errorData"]["message"].as_str().unwrap();
    assert!(
        message.contains("{{participant_name}}") && message.contains("{{phase_narrative}}"),
        "{message}"
    );
    assert_eq!(active(app, name).await["prompt_version"], "v1.0.0");
    let edited = app
        .ok(
            M,
            "promptManager:updatePromptTemplate",
            json!({"sessionToken": p.demo, "prompt_name": name,
                   "new_template": "For {{participant_name}} ({{reporter_name}}, {{location}}, {{phase}}): answer each of {{questions}} about {{phase_narrative}}, in JSON."}),
        )
        .await;
    assert_eq!(edited["previous_version"], "v1.0.0");
    assert_eq!(edited["unused_variables"], json!([]));
    let now = active(app, name).await;
    assert_eq!(now["prompt_version"], "v1.0.1");
    assert_eq!(declared(&now), seeded);
    // Values nothing uses come back as unused, not as an error.
    let out = app
        .ok(
            Q,
            "promptManager:processTemplateWithValidationQuery",
            json!({"prompt_name": name, "variables": {
                "questions": "[]", "phase": "before_event", "participant_name": "Sam",
                "reporter_name": "Alex", "location": "Home", "phase_narrative": "...",
                "colour": "blue"}}),
        )
        .await;
    assert_eq!(out["isValid"], true, "{out}");
    assert_eq!(out["unused"], json!(["colour"]));
    let model = app
        .ok(
            M,
            "promptManager:updatePromptModel",
            json!({"sessionToken": p.demo, "prompt_name": name, "ai_model": "gpt-4.1-mini"}),
        )
        .await;
    assert_eq!(model["ai_model"], "gpt-4.1-mini");
    assert_eq!(active(app, name).await["ai_model"], "gpt-4.1-mini");
    assert_eq!(
        app.code(
            M,
            "promptManager:updatePromptModel",
            json!({"sessionToken": p.demo, "prompt_name": name, "ai_model": "two words"})
        )
        .await,
        "VALIDATION"
    );
}

async fn limits_are_checked(app: &App, p: &People) {
    let prompt = active(app, "enhance_narrative_post_event").await;
    let id = prompt["_id"].clone();
    for (field, bad) in [
        ("temperature", json!(3)),
        ("max_tokens", json!(0)),
        ("max_tokens", json!(12.5)),
    ] {
        let mut args = json!({"sessionToken": p.system, "prompt_id": id});
        args[field] = bad;
        let body = app.call(M, "promptManager:updatePromptLimits", args).await;
        assert_eq!(body["errorData"]["code"], "VALIDATION", "{body}");
        assert_eq!(body["errorData"]["field"], field);
    }
    app.ok(
        M,
        "promptManager:updatePromptLimits",
        json!({"sessionToken": p.system, "prompt_id": id, "temperature": 0.1, "max_tokens": 3500}),
    )
    .await;
    let now = active(app, "enhance_narrative_post_event").await;
    assert_eq!(now["temperature"], 0.1);
    assert_eq!(now["max_tokens"], 3500.0);
    assert_eq!(
        now["prompt_version"], prompt["prompt_version"],
        "limits make no new version"
    );
    // Something that is not a prompt id is a validation error; a deleted prompt is not found.
    assert_eq!(
        app.code(
            M,
            "promptManager:updatePromptLimits",
            json!({"sessionToken": p.system, "prompt_id": "nope", "temperature": 0.2})
        )
        .await,
        "VALIDATION"
    );
    let gone = crate::deleted_prompt(app).await;
    assert_eq!(
        app.code(
            M,
            "promptManager:updatePromptLimits",
            json!({"sessionToken": p.system, "prompt_id": gone, "temperature": 0.2})
        )
        .await,
        "NOT_FOUND"
    );
}

async fn reset_to_default_restores_the_seeded_wording(app: &App, p: &People) {
    let name = "generate_mock_answers";
    let reset = app
        .ok(
            M,
            "promptManager:resetPromptToDefault",
            json!({"sessionToken": p.system, "prompt_name": name}),
        )
        .await;
    assert_eq!(reset["success"], true);
    let now = active(app, name).await;
    let seeded = app::prompts::defaults::find(name).unwrap();
    assert_eq!(now["prompt_template"], seeded.template.as_str());
    assert_eq!(
        now["variables"].as_array().unwrap().len(),
        seeded.variables.len()
    );
    // The model an administrator chose is kept; the history is kept too.
    assert_eq!(now["ai_model"], "gpt-4.1-mini");
    let versions = app
        .ok(
            Q,
            "promptManager:listPromptVersions",
            json!({"sessionToken": p.frontline, "prompt_name": name}),
        )
        .await;
    assert_eq!(versions.as_array().unwrap().len(), 3);
    assert_eq!(
        app.code(
            M,
            "promptManager:resetPromptToDefault",
            json!({"sessionToken": p.system, "prompt_name": "made_up"})
        )
        .await,
        "NOT_FOUND"
    );
}

async fn groups(app: &App, p: &People) {
    let listed = app
        .ok(
            Q,
            "promptManager:listPromptGroups",
            json!({"sessionToken": p.frontline}),
        )
        .await;
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 4, "the seeded groups: {listed:?}");
    let clarification = listed
        .iter()
        .find(|g| g["group_name"] == "Clarification questions")
        .unwrap();
    assert_eq!(clarification["active_prompt_count"], 4.0);

    let made = app
        .ok(
            M,
            "promptManager:createPromptGroup",
            json!({"sessionToken": p.system, "group_name": "Experiments", "description": "Trial wording"}),
        )
        .await;
    let group = made["group_id"].clone();
    assert_eq!(
        app.code(
            M,
            "promptManager:createPromptGroup",
            json!({"sessionToken": p.system, "group_name": "Experiments"})
        )
        .await,
        "CONFLICT"
    );
    assert_eq!(
        app.code(
            M,
            "promptManager:createPromptGroup",
            json!({"sessionToken": p.company_admin, "group_name": "Mine"})
        )
        .await,
        "FORBIDDEN"
    );
    let assigned = app
        .ok(
            M,
            "promptManager:assignPromptGroup",
            json!({"sessionToken": p.system, "prompt_name": "generate_mock_answers", "group_id": group, "display_order": 7}),
        )
        .await;
    assert_eq!(assigned["updatedCount"], 3.0, "every version moves");
    let prompt = active(app, "generate_mock_answers").await;
    assert_eq!(prompt["group_id"], group);
    assert_eq!(prompt["display_order"], 7.0);
    app.ok(
        M,
        "promptManager:updatePromptGroup",
        json!({"sessionToken": p.system, "group_id": group, "group_name": "Trials", "display_order": 0}),
    )
    .await;
    let listed = app
        .ok(
            Q,
            "promptManager:listPromptGroups",
            json!({"sessionToken": p.frontline}),
        )
        .await;
    assert_eq!(
        listed[0]["group_name"], "Trials",
        "ordered by display order"
    );
    assert_eq!(listed[0]["active_prompt_count"], 1.0);
    let deleted = app
        .ok(
            M,
            "promptManager:deletePromptGroup",
            json!({"sessionToken": p.system, "group_id": group}),
        )
        .await;
    assert_eq!(deleted["ungroupedCount"], 3.0);
    assert!(active(app, "generate_mock_answers")
        .await
        .get("group_id")
        .is_none());
    assert_eq!(
        app.code(
            M,
            "promptManager:deletePromptGroup",
            json!({"sessionToken": p.system, "group_id": group})
        )
        .await,
        "NOT_FOUND"
    );
}

async fn adjustments_need_one_to_act_on(app: &App, p: &People) {
    let prompt = active(app, "generate_clarification_questions_before_event").await;
    assert_eq!(prompt["adjustment_pending"], false);
    for path in [
        "promptManager:acknowledgeTokenAdjustment",
        "promptManager:resetTokenAdjustment",
    ] {
        let body = app
            .call(
                M,
                path,
                json!({"sessionToken": p.system, "prompt_id": prompt["_id"]}),
            )
            .await;
        assert_eq!(body["errorData"]["code"], "CONFLICT", "{path}: {body}");
        assert_eq!(
            app.code(
                M,
                path,
                json!({"sessionToken": p.demo, "prompt_id": prompt["_id"]})
            )
            .await,
            "FORBIDDEN"
        );
    }
}

async fn reset_and_seed(app: &App, p: &People) {
    let before: Json = app
        .ok(
            Q,
            "promptManager:listAllPrompts",
            json!({"sessionToken": p.frontline, "activeOnly": false}),
        )
        .await;
    let count = before.as_array().unwrap().len();
    assert!(count > 12);
    let out = app
        .ok(
            M,
            "promptManager:resetAndSeedPrompts",
            json!({"sessionToken": p.demo}),
        )
        .await;
    assert_eq!(out["clearedCount"], count as f64);
    let cleared = out["clearedTemplates"].as_array().unwrap();
    assert_eq!(cleared.len(), 12, "each name once: {cleared:?}");
    assert!(cleared.contains(&json!("generate_mock_answers")));
    assert_eq!(out["seededCount"], 12.0);
    let after = app
        .ok(
            Q,
            "promptManager:listAllPrompts",
            json!({"sessionToken": p.frontline, "activeOnly": false}),
        )
        .await;
    assert_eq!(after.as_array().unwrap().len(), 12);
    let mock = active(app, "generate_mock_answers").await;
    assert_eq!(mock["prompt_version"], "v1.0.0");
    assert_eq!(
        app.code(
            M,
            "promptManager:resetAndSeedPrompts",
            json!({"sessionToken": p.company_admin})
        )
        .await,
        "FORBIDDEN"
    );
}
