//! The Convex HTTP API over real HTTP, on SQLite and (when configured) PostgreSQL.

mod common;

use common::{backends, Place, TestServer};
use serde_json::json;

/// Runs `body` once per backend with a fresh server.
macro_rules! each_backend {
    (|$server:ident, $place:ident| $body:block) => {
        for db in backends() {
            let $place = Place::new(db).await;
            let $server = TestServer::start(&$place).await;
            eprintln!("backend: {db:?}");
            $body
            $server.stop().await;
        }
    };
}

#[tokio::test]
async fn query_mutation_action_round_trip() {
    each_backend!(|s, place| {
        let id = s
            .ok(
                "mutation",
                "messages:send",
                json!({"body": "hello", "author": "ann"}),
            )
            .await;
        let id = id
            .as_str()
            .expect("mutation returns the new id")
            .to_string();
        assert_eq!(id.len(), 32, "Convex-format id: {id}");

        let list = s.ok("query", "messages:list", json!({})).await;
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert_eq!(list[0]["body"], "hello");
        assert_eq!(list[0]["_id"], id.as_str());
        assert!(
            list[0]["_creationTime"].as_f64().unwrap() > 1.7e12,
            "ms since epoch"
        );

        let acted = s
            .ok("action", "messages:act", json!({"body": "from action"}))
            .await;
        assert_eq!(
            acted["count"], 2.0,
            "the action's query saw its own mutation: {acted}"
        );
        let body = s
            .call("mutation", "messages:send", json!({"body": "x"}))
            .await;
        assert_eq!(body["logLines"], json!(["[LOG] \"sent\""]));
    });
}

#[tokio::test]
async fn args_may_be_array_object_or_missing() {
    each_backend!(|s, place| {
        let (status, body) = s
            .post(
                "/api/mutation",
                json!({"path": "messages:send", "args": {"body": "bare"}}),
            )
            .await;
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("success")),
            "{body}"
        );
        let (_, body) = s
            .post("/api/query", json!({"path": "messages:count"}))
            .await;
        assert_eq!(body["value"], 1.0, "{body}");
        let (status, body) = s
            .post(
                "/api/query",
                json!({"path": "messages:count", "args": [{}, {}]}),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("InvalidArgs")),
            "{body}"
        );
    });
}

#[tokio::test]
async fn encodings_follow_the_requested_format() {
    each_backend!(|s, place| {
        // int64 survives convex_encoded_json both ways.
        let v = s
            .ok(
                "query",
                "messages:echo",
                json!({"value": {"big": {"$integer": "KgAAAAAAAAA="}, "f": 1.5}}),
            )
            .await;
        assert_eq!(v, json!({"big": {"$integer": "KgAAAAAAAAA="}, "f": 1.5}));
        // Clean JSON (the default for current clients) turns int64 into a decimal string.
        let (_, body) = s
            .post("/api/query", json!({"path": "messages:echo", "args": [{"value": {"$integer": "KgAAAAAAAAA="}}], "format": "convex_encoded_json"}))
            .await;
        assert_eq!(body["value"], json!({"$integer": "KgAAAAAAAAA="}));
        let (_, body) = s
            .post(
                "/api/query",
                json!({"path": "messages:echo", "args": [{"value": [1, "two", null]}]}),
            )
            .await;
        assert_eq!(body["value"], json!([1.0, "two", null]));
        let (status, body) = s
            .post(
                "/api/query",
                json!({"path": "messages:echo", "format": "xml", "args": [{}]}),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("InvalidFormat")),
            "{body}"
        );
        let (status, body) = s.post("/api/query", json!({"path": "messages:echo", "format": "convex_encoded_json", "args": [{"value": {"$float": "AAAAAAAA8D8="}}]})).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("InvalidArgs")),
            "a $float holding 1.0 is refused: {body}"
        );
    });
}

#[tokio::test]
async fn run_route_uses_slashes_and_clean_json() {
    each_backend!(|s, place| {
        s.ok(
            "mutation",
            "messages:send",
            json!({"body": "hi", "author": "bo", "n": {"$integer": "BQAAAAAAAAA="}}),
        )
        .await;
        let (status, body) = s.post("/api/run/messages/list", json!({"args": {}})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["value"][0]["n"], "5",
            "clean JSON writes int64 as a string: {body}"
        );
        let (_, body) = s
            .post(
                "/api/run/messages/byAuthor",
                json!({"args": {"author": "bo"}}),
            )
            .await;
        assert_eq!(body["value"], json!(["hi"]));
    });
}

#[tokio::test]
async fn function_errors_are_http_200_with_stable_codes() {
    each_backend!(|s, place| {
        // Refusals of the platform are plain errors, as Convex sends them: no errorData.
        let body = s.call("query", "nope:missing", json!({})).await;
        assert_eq!(body["status"], "error");
        assert_eq!(
            body["errorMessage"],
            "Could not find public function for 'nope:missing'."
        );
        assert!(body.get("errorData").is_none(), "{body}");

        // Internal functions look exactly like missing ones from outside.
        let body = s.call("query", "messages:secretCount", json!({})).await;
        assert_eq!(
            body["errorMessage"],
            "Could not find public function for 'messages:secretCount'."
        );
        assert!(body.get("errorData").is_none(), "{body}");

        let body = s.call("query", "messages:send", json!({"body": "x"})).await;
        assert_eq!(
            body["errorMessage"],
            "Trying to execute messages:send as Query, but it is defined as Mutation."
        );
        assert!(body.get("errorData").is_none(), "{body}");

        let body = s
            .call("mutation", "messages:sendThenFail", json!({"body": "x"}))
            .await;
        assert_eq!(body["errorMessage"], "That message clashes with another");
        assert_eq!(
            body["errorData"],
            json!({"code": "CONFLICT", "message": "That message clashes with another", "field": "body"})
        );

        let body = s.call("action", "messages:actFail", json!({})).await;
        assert_eq!(body["errorData"]["code"], "RATE_LIMITED");
    });
}

#[tokio::test]
async fn argument_validation_names_the_field() {
    each_backend!(|s, place| {
        let id = s
            .ok("mutation", "messages:send", json!({"body": "x"}))
            .await;
        let good = json!({"id": id, "count": {"$integer": "AQAAAAAAAAA="}, "tags": ["a"], "nested": {"email": "e"}});
        assert_eq!(s.ok("query", "messages:typed", good.clone()).await, true);

        let cases = [
            (
                json!({"id": id, "count": 1.0, "tags": [], "nested": {"email": "e"}}),
                "count",
            ),
            (
                json!({"id": "not-an-id", "count": {"$integer": "AQAAAAAAAAA="}, "tags": [], "nested": {"email": "e"}}),
                "id",
            ),
            (
                json!({"id": id, "count": {"$integer": "AQAAAAAAAAA="}, "tags": ["a", 3], "nested": {"email": "e"}}),
                "tags[1]",
            ),
            (
                json!({"id": id, "count": {"$integer": "AQAAAAAAAAA="}, "tags": [], "nested": {"email": 7}}),
                "nested.email",
            ),
            (
                json!({"id": id, "count": {"$integer": "AQAAAAAAAAA="}, "tags": [], "nested": {"email": "e"}, "mode": "c"}),
                "mode",
            ),
        ];
        for (args, field) in cases {
            let body = s.call("query", "messages:typed", args.clone()).await;
            assert_eq!(body["status"], "error", "{args}");
            let message = body["errorMessage"].as_str().unwrap();
            assert!(message.starts_with("ArgumentValidationError"), "{message}");
            // A plain error, as Convex sends it: the message names the field, no errorData.
            assert!(message.contains(field), "{message} names {field}");
            assert!(body.get("errorData").is_none(), "{body}");
        }
        let body = s.call("query", "messages:typed", json!({"count": {"$integer": "AQAAAAAAAAA="}, "tags": [], "nested": {"email": "e"}})).await;
        assert!(
            body["errorMessage"].as_str().unwrap().contains("id"),
            "missing field is named: {body}"
        );
        let body = s
            .call("query", "messages:count", json!({"surprise": 1}))
            .await;
        assert!(
            body["errorMessage"].as_str().unwrap().contains("surprise"),
            "extra field is named: {body}"
        );
    });
}

#[tokio::test]
async fn failed_mutations_leave_nothing_behind() {
    each_backend!(|s, place| {
        s.call(
            "mutation",
            "messages:sendThenFail",
            json!({"body": "ghost"}),
        )
        .await;
        let body = s.call("mutation", "messages:invalidWrite", json!({})).await;
        assert_eq!(
            body["errorData"]["code"], "VALIDATION",
            "schema violation is a validation error: {body}"
        );
        assert_eq!(body["errorData"]["field"], "body", "{body}");
        let body = s.call("mutation", "messages:panic", json!({})).await;
        assert!(
            body["errorMessage"]
                .as_str()
                .unwrap()
                .ends_with("Server Error"),
            "{body}"
        );
        assert_eq!(s.ok("query", "messages:count", json!({})).await, 0.0);
        // The writer survived the panic.
        s.ok("mutation", "messages:send", json!({"body": "after"}))
            .await;
        assert_eq!(s.ok("query", "messages:count", json!({})).await, 1.0);
    });
}

#[tokio::test]
async fn internal_errors_hide_details_behind_the_request_id() {
    each_backend!(|s, place| {
        let response = s
            .http
            .post(format!("{}/api/query", s.url))
            .json(&json!({"path": "messages:boom", "args": [{}]}))
            .send()
            .await
            .unwrap();
        let request_id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            body["errorMessage"],
            format!("[Request ID: {request_id}] Server Error")
        );
        assert!(body.get("errorData").is_none(), "{body}");
        assert!(!body.to_string().contains("secret"), "{body}");
        let body = s.call("query", "messages:wrongReturn", json!({})).await;
        assert!(
            body["errorMessage"]
                .as_str()
                .unwrap()
                .ends_with("] Server Error"),
            "{body}"
        );
    });
}

#[tokio::test]
async fn bad_requests_get_4xx_with_code_and_message() {
    let place = Place::new(common::Db::Sqlite).await;
    let s = TestServer::start_with(&place, &[("SUPPORTSIGNAL_MAX_BODY_BYTES", "4096")]).await;
    let url = format!("{}/api/query", s.url);

    let r = s
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "BadJsonBody");
    assert!(body["message"].as_str().unwrap().contains("not valid JSON"));

    let r = s
        .http
        .post(&url)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["code"],
        "UnsupportedContentType"
    );

    let big = json!({"path": "messages:echo", "args": [{"value": "x".repeat(10_000)}]});
    let r = s.http.post(&url).json(&big).send().await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["code"],
        "PayloadTooLarge"
    );

    let (status, body) = s.post("/api/query", json!({"args": [{}]})).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("BadRequest")));

    let r = s
        .http
        .get(format!("{}/no/such/route", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let r = s
        .http
        .post(&url)
        .header("convex-client", "npm-0.18.0")
        .json(&json!({"path": "messages:count"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["code"],
        "ClientVersionUnsupported"
    );
    s.stop().await;
}

#[tokio::test]
async fn version_health_and_cors() {
    each_backend!(|s, place| {
        let version = s
            .http
            .get(format!("{}/version", s.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(version, server::VERSION);
        let r = s
            .http
            .get(format!("{}/health", s.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["database"],
            "ok"
        );

        let r = s
            .http
            .request(reqwest::Method::OPTIONS, format!("{}/api/query", s.url))
            .header("origin", "https://app.example.org")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,convex-client",
            )
            .send()
            .await
            .unwrap();
        let h = r.headers();
        assert_eq!(h["access-control-allow-origin"], "https://app.example.org");
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert_eq!(h["access-control-max-age"], "86400");
        assert!(h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("convex-client"));
    });
}

#[tokio::test]
async fn bearer_token_reaches_functions() {
    let place = Place::new(common::Db::Sqlite).await;
    let s = TestServer::start(&place).await;
    let r = s
        .http
        .post(format!("{}/api/query", s.url))
        .bearer_auth("abcdef")
        .json(&json!({"path": "messages:whoami", "args": [{}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["value"],
        "token of length 6"
    );
    assert_eq!(
        s.ok("query", "messages:whoami", json!({})).await,
        serde_json::Value::Null
    );
    s.stop().await;
}

#[tokio::test]
async fn data_survives_a_restart() {
    for db in backends() {
        let place = Place::new(db).await;
        let s = TestServer::start(&place).await;
        for i in 0..20 {
            s.ok(
                "mutation",
                "messages:send",
                json!({"body": format!("m{i}"), "author": "z"}),
            )
            .await;
        }
        s.stop().await;
        let s = TestServer::start(&place).await;
        assert_eq!(
            s.ok("query", "messages:count", json!({})).await,
            20.0,
            "{db:?}"
        );
        let bodies = s
            .ok("query", "messages:byAuthor", json!({"author": "z"}))
            .await;
        assert_eq!(bodies[0], "m19", "newest first: {bodies}");
        s.stop().await;
    }
}

#[tokio::test]
async fn database_outage_is_reported_not_hidden() {
    if std::env::var("TEST_DATABASE_URL").is_err() {
        eprintln!("TEST_DATABASE_URL not set: skipped");
        return;
    }
    let place = Place::new(common::Db::Postgres).await;
    let s = TestServer::start(&place).await;
    s.ok("mutation", "messages:send", json!({"body": "before"}))
        .await;
    place.pg.as_ref().unwrap().drop_now().await;
    let r = s
        .http
        .get(format!("{}/health", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["database"],
        "unavailable"
    );
    let body = s
        .call("mutation", "messages:send", json!({"body": "during"}))
        .await;
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorData"]["code"], "UNAVAILABLE", "{body}");
    s.stop().await;
}

#[tokio::test]
async fn pagination_walks_every_document_once() {
    each_backend!(|s, place| {
        for i in 0..23 {
            s.ok(
                "mutation",
                "messages:send",
                json!({"body": format!("p{i:02}"), "author": "pager"}),
            )
            .await;
            s.ok(
                "mutation",
                "messages:send",
                json!({"body": "other", "author": "someone else"}),
            )
            .await;
        }
        let mut seen = Vec::new();
        let mut cursor = serde_json::Value::Null;
        let mut pages = 0;
        loop {
            let page = s
                .ok("query", "messages:page", json!({"author": "pager", "paginationOpts": {"numItems": 10, "cursor": cursor}}))
                .await;
            pages += 1;
            seen.extend(
                page["page"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|b| b.as_str().unwrap().to_string()),
            );
            if page["isDone"] == true {
                break;
            }
            cursor = page["continueCursor"].clone();
            assert!(pages < 10, "pagination never finishes");
        }
        let expected: Vec<String> = (0..23).map(|i| format!("p{i:02}")).collect();
        assert_eq!(seen, expected);
        let body = s.call("query", "messages:page", json!({"author": "pager", "paginationOpts": {"numItems": 10, "cursor": "garbage!"}})).await;
        assert_eq!(
            body["errorData"]["code"], "VALIDATION",
            "a forged cursor is refused: {body}"
        );
        let body = s
            .call(
                "query",
                "messages:page",
                json!({"author": "pager", "paginationOpts": {"numItems": 5000, "cursor": null}}),
            )
            .await;
        assert_eq!(
            body["errorData"]["field"], "paginationOpts.numItems",
            "{body}"
        );
    });
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let place = Place::new(common::Db::Sqlite).await;
    let s = TestServer::start(&place).await;
    let (http, url) = (s.http.clone(), s.url.clone());
    let in_flight = tokio::spawn(async move {
        http.post(format!("{url}/api/action"))
            .json(&json!({"path": "messages:slow", "args": [{}]}))
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let url = s.url.clone();
    s.stop().await;
    assert_eq!(in_flight.await.unwrap()["value"], "finished");
    assert!(
        reqwest::get(format!("{url}/version")).await.is_err(),
        "no new connections after shutdown"
    );
}
