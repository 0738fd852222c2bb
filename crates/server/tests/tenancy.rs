//! Tenant isolation enforced by the framework, cross-tenant grants, commit-then-fail and prepared
//! mutations, over real HTTP.

mod common;

use common::{backends, Place, TestServer};
use serde_json::json;

#[tokio::test]
async fn scoped_access_never_crosses_companies() {
    for db in backends() {
        let place = Place::new(db).await;
        let s = TestServer::start(&place).await;
        let a = s
            .ok("mutation", "tenancy:createCompany", json!({"name": "A"}))
            .await;
        let b = s
            .ok("mutation", "tenancy:createCompany", json!({"name": "B"}))
            .await;
        let note_a = s
            .ok(
                "mutation",
                "tenancy:addNote",
                json!({"company": a, "text": "a1"}),
            )
            .await;
        s.ok(
            "mutation",
            "tenancy:addNote",
            json!({"company": a, "text": "a2"}),
        )
        .await;
        s.ok(
            "mutation",
            "tenancy:addNote",
            json!({"company": b, "text": "b1"}),
        )
        .await;

        assert_eq!(
            s.ok("query", "tenancy:listNotes", json!({"company": a}))
                .await,
            json!(["a1", "a2"]),
            "{db:?}"
        );
        assert_eq!(
            s.ok("query", "tenancy:listNotes", json!({"company": b}))
                .await,
            json!(["b1"])
        );
        // A foreign id answers exactly like a missing one.
        assert_eq!(
            s.ok(
                "query",
                "tenancy:getNote",
                json!({"company": b, "id": note_a})
            )
            .await,
            json!(null)
        );
        assert_eq!(
            s.ok(
                "query",
                "tenancy:getNote",
                json!({"company": a, "id": note_a})
            )
            .await["text"],
            "a1"
        );
        let foreign = s
            .call(
                "mutation",
                "tenancy:deleteNote",
                json!({"company": b, "id": note_a}),
            )
            .await;
        let missing = s
            .call(
                "mutation",
                "tenancy:deleteNote",
                json!({"company": b, "id": "nonsense"}),
            )
            .await;
        assert_eq!(
            foreign["errorData"], missing["errorData"],
            "no existence leak"
        );
        assert_eq!(foreign["errorData"]["code"], "NOT_FOUND");
        let sneaky = s
            .call(
                "mutation",
                "tenancy:addNoteElsewhere",
                json!({"company": b, "other": a}),
            )
            .await;
        assert_eq!(sneaky["errorData"]["code"], "FORBIDDEN", "{sneaky}");
        assert_eq!(
            s.ok("query", "tenancy:listNotes", json!({"company": a}))
                .await,
            json!(["a1", "a2"])
        );

        // Forgetting the scope, or asking for every company undeclared, is a server error, not a leak.
        for path in ["tenancy:listUnscoped", "tenancy:countAllUndeclared"] {
            let body = s.call("query", path, json!({})).await;
            assert!(
                body["errorMessage"]
                    .as_str()
                    .unwrap()
                    .ends_with("Server Error"),
                "{path}: {body}"
            );
        }
        assert_eq!(s.ok("query", "tenancy:countAll", json!({})).await, 3.0);
        s.stop().await;
    }
}

#[tokio::test]
async fn commit_then_fail_keeps_the_write_and_reports_the_error() {
    let place = Place::new(common::Db::Sqlite).await;
    let s = TestServer::start(&place).await;
    let a = s
        .ok("mutation", "tenancy:createCompany", json!({"name": "A"}))
        .await;
    let body = s
        .call("mutation", "tenancy:recordThenFail", json!({"company": a}))
        .await;
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorData"]["code"], "UNAUTHENTICATED");
    assert_eq!(
        s.ok("query", "tenancy:listNotes", json!({"company": a}))
            .await,
        json!(["attempt"])
    );
    assert_eq!(
        s.ok("mutation", "tenancy:prepared", json!({"text": "shout"}))
            .await,
        "SHOUT"
    );
    s.stop().await;
}
