//! The AI prompt pages (contract §10, the prompt rows of §13, issue 11's template bug): the group
//! board at /admin/ai-prompts, the template list's adjustments and bulk model change, the seeder
//! view, and the wizard's prompt testing panel, called as the web app calls them.

use serde_json::{json, Value as Json};
use values::{DocumentId, Value};

use crate::harness::App;
use crate::seed::{self, Member};
use crate::{backends, Outcome, People, Web};

const Q: &str = "query";
const M: &str = "mutation";

fn tok(member: &Member) -> Json {
    json!({"sessionToken": member.token})
}

fn with(member: &Member, mut args: Json) -> Json {
    args["sessionToken"] = json!(member.token);
    args
}

/// The people of `Web::people` plus a demo administrator (who holds `sample_data` but not
/// `system_configuration`).
async fn start(web: &Web) -> (People, Member) {
    let people = web.people().await;
    let demo = seed::member(&web.app, None, "demo@platform.org", "demo_admin").await;
    let seeded = web
        .mutation(
            "promptManager:seedPromptTemplates",
            tok(&people.system_admin),
        )
        .await;
    // The server seeded the defaults when it started, as `serve` does: none is missing.
    assert_eq!(seeded.value()["promptIds"].as_array().unwrap().len(), 0);
    assert_eq!(
        prompts(&web.app)
            .await
            .iter()
            .filter(|d| d.get("is_active") == Some(&Value::from(true)))
            .count(),
        12
    );
    (people, demo)
}

/// The stored prompt versions.
async fn prompts(app: &App) -> Vec<store::Document> {
    seed::rows(app, "ai_prompts").await
}

fn field<'a>(doc: &'a store::Document, name: &str) -> &'a str {
    doc.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// The id of the active version of `name`.
async fn active_id(app: &App, name: &str) -> String {
    prompts(app)
        .await
        .iter()
        .find(|d| field(d, "prompt_name") == name && d.get("is_active") == Some(&Value::from(true)))
        .unwrap_or_else(|| panic!("no active {name}"))
        .id
        .encode()
}

/// `(action, actor)` of the audit rows of `event`.
async fn audited(app: &App, event: &str) -> Vec<(String, String)> {
    seed::rows(app, "audit_log")
        .await
        .iter()
        .filter(|r| field(r, "event") == event)
        .map(|r| {
            let action = r
                .get("details")
                .and_then(|d| d.get("action"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            (action, field(r, "actor_id").to_string())
        })
        .collect()
}

/// Writes `fields` straight onto a stored prompt (what an automatic escalation or an old bug left).
async fn patch_prompt(app: &App, id: &str, fields: Json) {
    let id = DocumentId::decode(id).unwrap();
    let fields = values::json::from_clean_json(&fields)
        .unwrap()
        .into_object()
        .unwrap();
    app.store
        .mutate(move |txn| {
            let patch: store::Patch = fields
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect();
            txn.patch(&id, patch)
        })
        .await
        .unwrap();
}

fn refused(out: &Outcome, code: &str, what: &str) {
    assert_eq!(out.code(), code, "{what}: {:?}", out.0);
}

#[tokio::test]
async fn the_group_board_lists_without_a_session_and_only_prompt_admins_rearrange_it() {
    for db in backends() {
        let web = Web::start(db).await;
        let (p, demo) = start(&web).await;
        let made = web
            .mutation(
                "promptManager:createPromptGroup",
                with(&p.system_admin, json!({"group_name": "Experiments"})),
            )
            .await;
        assert_eq!(made.value()["success"], true);
        // The board's two queries arrive with no token.
        let out = web
            .calls(&[
                (Q, "promptGroups:listGroups", json!({})),
                (Q, "promptGroups:listPrompts", json!({"activeOnly": true})),
            ])
            .await;
        let groups = out[0].value().as_array().unwrap().clone();
        let names: Vec<&str> = groups
            .iter()
            .map(|g| g["group_name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "Clarification questions",
                "Narrative enhancement",
                "Incident analysis",
                "Sample data",
                "Experiments"
            ],
            "{db:?}: in display order"
        );
        for g in &groups {
            assert!(
                g["_id"].is_string() && g["display_order"].is_number(),
                "{g}"
            );
            assert!(
                g.get("created_by").is_none() && g.get("updated_by").is_none(),
                "{g}"
            );
        }
        assert!(groups[0]["description"].is_string());
        let listed = out[1].value().as_array().unwrap().clone();
        assert_eq!(listed.len(), 12);
        for prompt in &listed {
            for read in ["_id", "prompt_name", "description", "group_id", "ai_model"] {
                assert!(prompt[read].is_string(), "{read} of {prompt}");
            }
            assert_eq!(prompt["is_active"], true);
            assert!(prompt["display_order"].is_number() && prompt["usage_count"].is_number());
            assert!(prompt.get("success_rate").is_some(), "{prompt}");
            for hidden in ["prompt_template", "created_by", "updated_by"] {
                assert!(prompt.get(hidden).is_none(), "{hidden} in {prompt}");
            }
        }
        let keys: Vec<(String, f64)> = listed
            .iter()
            .map(|p| {
                (
                    p["group_id"].as_str().unwrap().to_string(),
                    p["display_order"].as_f64().unwrap(),
                )
            })
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        assert_eq!(keys, sorted, "by group, then display order");
        // Without activeOnly, every version.
        let all = web.query("promptGroups:listPrompts", json!({})).await;
        assert_eq!(all.value().as_array().unwrap().len(), 12);

        let before = active_id(&web.app, "generate_clarification_questions_before_event").await;
        let during = active_id(&web.app, "generate_clarification_questions_during_event").await;
        let mock = active_id(&web.app, "generate_mock_answers").await;
        let clarification = groups[0]["_id"].as_str().unwrap().to_string();
        let reorder = json!({"promptIds": [during, before], "newOrders": [0, 1]});
        let mv = json!({"promptId": mock, "newGroupId": clarification, "displayOrder": 5});
        let out = web
            .calls(&[
                (
                    M,
                    "promptGroups:reorderPrompts",
                    with(&p.worker_a, reorder.clone()),
                ),
                (
                    M,
                    "promptGroups:reorderPrompts",
                    with(&p.admin_a, reorder.clone()),
                ),
                (
                    M,
                    "promptGroups:reorderPrompts",
                    with(&demo, reorder.clone()),
                ),
                (
                    M,
                    "promptGroups:movePromptToGroup",
                    with(&p.lead_a, mv.clone()),
                ),
                (M, "promptGroups:movePromptToGroup", with(&demo, mv.clone())),
                // As the reference sends them: no token at all.
                (M, "promptGroups:reorderPrompts", reorder.clone()),
                (
                    M,
                    "promptGroups:reorderPrompts",
                    with(
                        &p.system_admin,
                        json!({"promptIds": [during], "newOrders": [0, 1]}),
                    ),
                ),
                (
                    M,
                    "promptGroups:movePromptToGroup",
                    with(
                        &p.system_admin,
                        json!({"promptId": "nonsense", "newGroupId": null, "displayOrder": 0}),
                    ),
                ),
                (
                    M,
                    "promptGroups:reorderPrompts",
                    with(&p.system_admin, reorder.clone()),
                ),
                (
                    M,
                    "promptGroups:movePromptToGroup",
                    with(&p.system_admin, mv.clone()),
                ),
            ])
            .await;
        for (i, who) in [
            "worker",
            "company admin",
            "demo admin",
            "team lead",
            "demo admin",
        ]
        .iter()
        .enumerate()
        {
            refused(&out[i], "FORBIDDEN", who);
        }
        refused(&out[5], "UNAUTHENTICATED", "no token");
        refused(&out[6], "VALIDATION", "lengths differ");
        assert_eq!(
            out[6].message(),
            "promptIds and newOrders arrays must have the same length"
        );
        refused(&out[7], "VALIDATION", "no prompt id");
        assert_eq!(out[7].error()["data"]["field"], "promptId");
        assert_eq!(out[8].value(), &json!({"success": true, "count": 2}));
        assert_eq!(out[9].value(), &json!({"success": true}));
        let stored = prompts(&web.app).await;
        let of = |id: &str| stored.iter().find(|d| d.id.encode() == id).unwrap();
        let order = |id: &str| of(id).get("display_order").and_then(Value::as_f64);
        assert_eq!((order(&during), order(&before)), (Some(0.0), Some(1.0)));
        assert_eq!(field(of(&mock), "group_id"), clarification);
        assert_eq!(order(&mock), Some(5.0));
        // null takes it out of any group.
        let out = web
            .mutation(
                "promptGroups:movePromptToGroup",
                with(
                    &p.system_admin,
                    json!({"promptId": mock, "newGroupId": null, "displayOrder": 1}),
                ),
            )
            .await;
        assert_eq!(out.value()["success"], true);
        let stored = prompts(&web.app).await;
        let moved = stored.iter().find(|d| d.id.encode() == mock).unwrap();
        assert!(moved.get("group_id").is_none());
        let actions = audited(&web.app, "ai_prompt_group_changed").await;
        for wanted in ["reorder", "assign"] {
            assert!(
                actions
                    .iter()
                    .any(|(a, who)| a == wanted && *who == p.system_admin.id),
                "{db:?}: {actions:?}"
            );
        }
        web.stop().await;
    }
}

#[tokio::test]
async fn token_adjustments_by_name_need_the_prompt_admin_and_bulk_model_changes_skip_what_they_cannot_change(
) {
    for db in backends() {
        let web = Web::start(db).await;
        let (p, demo) = start(&web).await;
        let name = "generate_clarification_questions_before_event";
        let id = active_id(&web.app, name).await;
        patch_prompt(
            &web.app,
            &id,
            json!({"max_tokens": 3000.0, "baseline_max_tokens": 2000.0, "adjusted_at": 5.0,
                   "adjustment_reason": "truncated JSON reply"}),
        )
        .await;
        let ack = json!({"prompt_name": name, "correlation_id": "corr-1"});
        let reset = json!({"prompt_name": name});
        let out = web
            .calls(&[
                (
                    M,
                    "promptManager:acknowledgePromptAdjustment",
                    with(&p.worker_a, ack.clone()),
                ),
                (
                    M,
                    "promptManager:acknowledgePromptAdjustment",
                    with(&demo, ack.clone()),
                ),
                (
                    M,
                    "promptManager:resetPromptToBaseline",
                    with(&p.admin_a, reset.clone()),
                ),
                (
                    M,
                    "promptManager:resetPromptToBaseline",
                    with(&demo, reset.clone()),
                ),
                (
                    M,
                    "promptManager:acknowledgePromptAdjustment",
                    with(&p.system_admin, ack.clone()),
                ),
                (
                    M,
                    "promptManager:acknowledgePromptAdjustment",
                    with(&p.system_admin, ack.clone()),
                ),
                (
                    M,
                    "promptManager:acknowledgePromptAdjustment",
                    with(&p.system_admin, json!({"prompt_name": "nope"})),
                ),
            ])
            .await;
        for (i, who) in ["worker", "demo admin", "company admin", "demo admin"]
            .iter()
            .enumerate()
        {
            refused(&out[i], "FORBIDDEN", who);
        }
        let done = out[4].value();
        assert_eq!(done["success"], true);
        assert_eq!(done["prompt_name"], name);
        assert_eq!(done["baseline_max_tokens"], 2000.0);
        assert_eq!(done["current_max_tokens"], 3000.0);
        assert_eq!(done["difference"], 1000.0);
        assert_eq!(done["adjustment_reason"], "truncated JSON reply");
        assert_eq!(done["acknowledged_by"], "root@platform.org");
        assert!(done["acknowledged_at"].is_number());
        assert_eq!(done["correlationId"], "corr-1");
        assert_eq!(
            out[5].value()["success"],
            true,
            "nothing left to acknowledge"
        );
        assert!(out[5].value()["message"]
            .as_str()
            .unwrap()
            .contains("already"));
        refused(&out[6], "NOT_FOUND", "no such prompt");
        assert_eq!(out[6].message(), "Active prompt not found: nope");
        let stored = prompts(&web.app).await;
        let doc = stored.iter().find(|d| d.id.encode() == id).unwrap();
        assert_eq!(field(doc, "acknowledged_by"), p.system_admin.id);

        let out = web
            .calls(&[
                (
                    M,
                    "promptManager:resetPromptToBaseline",
                    with(&p.system_admin, reset.clone()),
                ),
                (
                    M,
                    "promptManager:resetPromptToBaseline",
                    with(&p.system_admin, reset.clone()),
                ),
            ])
            .await;
        let done = out[0].value();
        assert_eq!(done["success"], true);
        assert_eq!(done["prompt_id"], id);
        assert_eq!(done["old_max_tokens"], 3000.0);
        assert_eq!(done["new_max_tokens"], 2000.0);
        assert_eq!(done["baseline_max_tokens"], 2000.0);
        assert_eq!(done["reset_by"], "root@platform.org");
        assert!(done["correlationId"].is_string());
        refused(&out[1], "CONFLICT", "already at the baseline");
        assert_eq!(
            out[1].message(),
            format!("Prompt has no baseline_max_tokens set: {name}")
        );
        let stored = prompts(&web.app).await;
        let doc = stored.iter().find(|d| d.id.encode() == id).unwrap();
        assert_eq!(doc.get("max_tokens").and_then(Value::as_f64), Some(2000.0));
        for settled in ["baseline_max_tokens", "adjusted_at", "adjustment_reason"] {
            assert!(doc.get(settled).is_none(), "{settled}");
        }

        // Bulk model change: one active prompt, one replaced version, one id of nothing.
        let mock = active_id(&web.app, "generate_mock_answers").await;
        let reset_default = web
            .mutation(
                "promptManager:resetPromptToDefault",
                with(
                    &p.system_admin,
                    json!({"prompt_name": "generate_mock_answers"}),
                ),
            )
            .await;
        let current = reset_default.value()["prompt_id"]
            .as_str()
            .unwrap()
            .to_string();
        let bulk =
            |model: &str| json!({"prompt_ids": [current, mock, "nonsense"], "ai_model": model});
        let out = web
            .calls(&[
                (
                    M,
                    "promptManager:bulkUpdatePromptModels",
                    with(&p.worker_a, bulk("gpt-4.1")),
                ),
                (
                    M,
                    "promptManager:bulkUpdatePromptModels",
                    with(&p.admin_b, bulk("gpt-4.1")),
                ),
                (
                    M,
                    "promptManager:bulkUpdatePromptModels",
                    with(&demo, bulk("two words")),
                ),
                (
                    M,
                    "promptManager:bulkUpdatePromptModels",
                    with(&demo, bulk("gpt-4.1")),
                ),
            ])
            .await;
        refused(&out[0], "FORBIDDEN", "worker");
        refused(&out[1], "FORBIDDEN", "company admin");
        refused(&out[2], "VALIDATION", "a model name with a space");
        let done = out[3].value();
        assert_eq!(done["success"], true);
        assert_eq!(done["updated"], 1.0);
        assert_eq!(done["failed"], 2.0);
        assert_eq!(
            done["errors"],
            json!([
                "Prompt inactive: generate_mock_answers",
                "Prompt not found: nonsense"
            ])
        );
        let stored = prompts(&web.app).await;
        let model = |id: &str| {
            field(
                stored.iter().find(|d| d.id.encode() == id).unwrap(),
                "ai_model",
            )
            .to_string()
        };
        assert_eq!(model(&current), "gpt-4.1");
        assert_ne!(model(&mock), "gpt-4.1");
        let actions = audited(&web.app, "ai_prompt_changed").await;
        for wanted in [
            "acknowledge_token_adjustment",
            "reset_token_adjustment",
            "update_model",
        ] {
            assert!(
                actions.iter().any(|(a, _)| a == wanted),
                "{db:?}: {actions:?}"
            );
        }
        web.stop().await;
    }
}

#[tokio::test]
async fn the_seeder_view_lists_the_defaults_clears_them_and_seeds_them_again() {
    for db in backends() {
        let web = Web::start(db).await;
        let (p, demo) = start(&web).await;
        let out = web
            .calls(&[
                (Q, "promptManager:listDefaultTemplates", tok(&p.worker_a)),
                (M, "promptManager:clearAllPrompts", tok(&p.worker_a)),
                (M, "promptManager:clearAllPrompts", tok(&p.admin_a)),
                (M, "promptManager:clearAllPrompts", tok(&demo)),
                (Q, "promptGroups:listPrompts", json!({"activeOnly": true})),
                (
                    Q,
                    "promptManager:getActivePrompt",
                    json!({"prompt_name": "generate_mock_answers"}),
                ),
            ])
            .await;
        let defaults = out[0].value();
        assert_eq!(defaults["totalTemplates"], 12.0);
        assert_eq!(
            defaults["validation"],
            json!({"isValid": true, "errors": []})
        );
        let templates = defaults["templates"].as_array().unwrap();
        assert_eq!(templates.len(), 12);
        for t in templates {
            assert!(t["name"].is_string() && t["description"].is_string(), "{t}");
            assert_eq!(t["subsystem"], "incidents");
        }
        refused(&out[1], "FORBIDDEN", "worker");
        refused(&out[2], "FORBIDDEN", "company admin");
        let cleared = out[3].value();
        assert_eq!(cleared["deletedCount"], 12.0, "{db:?}: {cleared}");
        let names = cleared["deletedTemplates"].as_array().unwrap();
        assert_eq!(names.len(), 12);
        assert!(names.contains(&json!("enhance_narrative_post_event")));
        assert!(cleared["message"].is_string());
        assert_eq!(out[4].value(), &json!([]), "no active prompt is left");
        assert_eq!(out[5].value(), &Json::Null);
        // Deactivated, not deleted: the history stays.
        let stored = prompts(&web.app).await;
        assert_eq!(stored.len(), 12);
        assert!(stored
            .iter()
            .all(|d| d.get("is_active") == Some(&Value::from(false))
                && d.get("replaced_at").is_some()));
        assert!(audited(&web.app, "ai_prompt_changed")
            .await
            .iter()
            .any(|(a, who)| a == "clear_all" && *who == demo.id));
        // Seeding brings them back as new versions.
        let out = web
            .calls(&[
                (M, "promptManager:seedPromptTemplates", tok(&demo)),
                (Q, "promptGroups:listPrompts", json!({"activeOnly": true})),
                (M, "promptManager:resetAndSeedPrompts", tok(&demo)),
            ])
            .await;
        assert_eq!(out[0].value()["promptIds"].as_array().unwrap().len(), 12);
        assert_eq!(out[1].value().as_array().unwrap().len(), 12);
        let reset = out[2].value();
        assert_eq!(reset["clearedCount"], 24.0);
        assert_eq!(reset["seededCount"], 12.0);
        let cleared: Vec<&str> = reset["clearedTemplates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert_eq!(cleared.len(), 12, "each name once: {cleared:?}");
        assert!(cleared.contains(&"generate_mock_answers"));
        assert!(reset["message"].is_string());
        // The default list needs a session (the app skips the query without one).
        let anonymous = web
            .query("promptManager:listDefaultTemplates", json!({}))
            .await;
        refused(&anonymous, "UNAUTHENTICATED", "no token");
        web.stop().await;
    }
}

#[tokio::test]
async fn the_testing_panel_previews_the_template_it_sends_without_a_session() {
    for db in backends() {
        let web = Web::start(db).await;
        let _ = start(&web).await;
        let template = "For {{ participantName }}:\n{{postEventQA}}\nat {{location}} {{location}}";
        let out = web
            .calls(&[
                (
                    Q,
                    "promptManager:processTemplateWithValidationQuery",
                    json!({"template": template, "variables": {
                        "participantName": "Sam", "postEventQA": "Q: who?\nA: Alex",
                        "phase": "post_event"}}),
                ),
                // Ours, by prompt name, still answers.
                (
                    Q,
                    "promptManager:processTemplateWithValidationQuery",
                    json!({"prompt_name": "enhance_narrative_post_event", "variables": {}}),
                ),
                (
                    Q,
                    "promptManager:processTemplateWithValidationQuery",
                    json!({"template": "x", "prompt_name": "generate_mock_answers", "variables": {}}),
                ),
                (
                    Q,
                    "promptManager:processTemplateWithValidationQuery",
                    json!({"variables": {}}),
                ),
            ])
            .await;
        let shown = out[0].value();
        assert_eq!(
            shown["processedTemplate"],
            "For Sam:\nQ: who?\nA: Alex\nat {{location}} {{location}}"
        );
        assert_eq!(shown["missingPlaceholders"], json!(["location"]));
        assert_eq!(shown["unusedVariables"], json!(["phase"]));
        assert_eq!(
            shown["substitutions"],
            json!({"participantName": "Sam", "postEventQA": "Q: who?\nA: Alex",
                   "location": "{{location}}"})
        );
        let ours = out[1].value();
        assert_eq!(ours["isValid"], false);
        assert_eq!(ours["prompt_name"], "enhance_narrative_post_event");
        assert!(ours["missing"]
            .as_array()
            .unwrap()
            .contains(&json!("postEvent")));
        refused(&out[2], "VALIDATION", "both forms at once");
        refused(&out[3], "VALIDATION", "neither form");
        web.stop().await;
    }
}

/// Issue 11: an edit that left out `{{postEventQA}}` dropped it from the declarations, and the
/// correct wording was then refused as using an undeclared variable.
#[tokio::test]
async fn a_wording_edit_keeps_the_variables_the_code_supplies() {
    for db in backends() {
        let web = Web::start(db).await;
        let (_, demo) = start(&web).await;
        let name = "enhance_narrative_post_event";
        let get = json!({"prompt_name": name});
        let original = web
            .query("promptManager:getActivePrompt", get.clone())
            .await;
        let original = original.value()["prompt_template"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(original.contains("{{postEventQA}}") && original.contains("{{postEvent}}"));
        let without_answers = original.replace("{{postEventQA}}", "(none)");
        let without_account = original.replace("{{postEvent}}", "(none)");
        let edit = |template: &str| {
            with(
                &demo,
                json!({"prompt_name": name, "new_template": template}),
            )
        };
        let out = web
            .calls(&[
                (
                    M,
                    "promptManager:updatePromptTemplate",
                    edit(&without_answers),
                ),
                (Q, "promptManager:getActivePrompt", get.clone()),
                (M, "promptManager:updatePromptTemplate", edit(&original)),
                (
                    M,
                    "promptManager:updatePromptTemplate",
                    edit(&without_account),
                ),
                (Q, "promptManager:getActivePrompt", get.clone()),
            ])
            .await;
        // Leaving out the optional answers is allowed, said, and keeps the declaration.
        assert_eq!(
            out[0].value()["unused_variables"],
            json!(["postEventQA"]),
            "{db:?}"
        );
        let declared = |prompt: &Json| -> Vec<String> {
            prompt["variables"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert!(declared(out[1].value()).contains(&"postEventQA".to_string()));
        // So putting it back is accepted.
        assert_eq!(out[2].value()["success"], true, "{:?}", out[2].0);
        assert_eq!(out[2].value()["unused_variables"], json!([]));
        // Leaving out the required account is refused, naming it.
        refused(&out[3], "VALIDATION", "a required variable left out");
        assert_eq!(out[3].error()["data"]["field"], "new_template");
        assert!(
            out[3].message().contains("{{postEvent}}"),
            "{}",
            out[3].message()
        );
        assert_eq!(out[4].value()["prompt_template"], original.as_str());

        // A family an earlier edit already broke (the declaration gone) is repaired by the next
        // edit: the correct wording is accepted and the variable declared again.
        let id = out[4].value()["_id"].as_str().unwrap().to_string();
        let kept: Vec<Json> = out[4].value()["variables"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["name"] != "postEventQA")
            .cloned()
            .collect();
        patch_prompt(
            &web.app,
            &id,
            json!({"variables": kept, "prompt_template": without_answers}),
        )
        .await;
        let out = web
            .calls(&[
                (M, "promptManager:updatePromptTemplate", edit(&original)),
                (Q, "promptManager:getActivePrompt", get.clone()),
            ])
            .await;
        assert_eq!(out[0].value()["success"], true, "{:?}", out[0].0);
        assert!(declared(out[1].value()).contains(&"postEventQA".to_string()));
        web.stop().await;
    }
}
