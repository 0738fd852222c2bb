//! The WebSocket sync protocol, message by message, with a raw client that sees everything the
//! server sends (reference §B). On SQLite, and on PostgreSQL when TEST_DATABASE_URL is set.

mod common;
mod sync_support;

use common::{backends, Place};
use serde_json::json;
use sync_support::functions::list_runs;
use sync_support::{modification, ts, ts_of, Raw, SyncServer};

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", hex::encode(rand::random::<[u8; 4]>()))
}

#[tokio::test]
async fn a_subscription_sees_another_clients_mutation() {
    for db in backends() {
        let place = Place::new(db).await;
        let server = SyncServer::start(&place).await;
        let mut watcher = Raw::connect(&server.ws_url()).await;
        let first = watcher.add(0, 0, "messages:list", json!({})).await;
        assert_eq!(first["type"], "QueryUpdated", "{db:?}");
        assert_eq!(first["value"], json!([]));
        assert_eq!(first["logLines"], json!([]));
        assert_eq!(first["journal"], json!(null));
        assert_eq!(watcher.version["querySet"], 1);

        // Another WebSocket client sends a mutation: its response, then a Transition at or past
        // the mutation's ts (the npm client resolves the mutation only then).
        let mut writer = Raw::connect(&server.ws_url()).await;
        writer
            .mutation(0, "messages:send", json!({"body": "hello"}))
            .await;
        let response = writer.expect("MutationResponse").await;
        assert_eq!(response["requestId"], 0);
        assert_eq!(response["success"], true);
        assert_eq!(response["logLines"], json!(["[LOG] \"sent\""]));
        let id = response["result"].as_str().expect("the new id").to_string();
        let committed = ts_of(&response["ts"]);
        let after = writer.expect("Transition").await;
        assert!(ts(&after["endVersion"]) >= committed, "{after}");

        // The watcher's list updates, at a ts covering the commit.
        let update = watcher.expect("Transition").await;
        let list = modification(&update, 0).expect("the list changed");
        assert_eq!(list["value"][0]["_id"], id.as_str());
        assert_eq!(list["value"][0]["body"], "hello");
        assert!(ts(&update["endVersion"]) >= committed);

        // A mutation over the HTTP API reaches subscribers just the same.
        server
            .ok("mutation", "messages:send", json!({"body": "over http"}))
            .await;
        let update = watcher.expect("Transition").await;
        let list = modification(&update, 0).expect("the list changed");
        assert_eq!(list["value"].as_array().unwrap().len(), 2, "{db:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn failures_actions_and_removal() {
    for db in backends() {
        let place = Place::new(db).await;
        let server = SyncServer::start(&place).await;
        let mut client = Raw::connect(&server.ws_url()).await;
        client
            .modify(
                0,
                json!([
                    {"type": "Add", "queryId": 0, "udfPath": "messages:list", "args": [{}]},
                    {"type": "Add", "queryId": 1, "udfPath": "messages.js:count", "args": [{}]},
                    {"type": "Add", "queryId": 2, "udfPath": "messages:boom", "args": [{}]},
                    {"type": "Add", "queryId": 3, "udfPath": "messages:nothing", "args": [{}]},
                ]),
            )
            .await;
        let transition = client.expect("Transition").await;
        assert_eq!(transition["endVersion"]["querySet"], 1);
        assert_eq!(modification(&transition, 1).unwrap()["value"], 0.0);
        let boom = modification(&transition, 2).unwrap();
        assert_eq!(boom["type"], "QueryFailed");
        let message = boom["errorMessage"].as_str().unwrap();
        assert!(message.ends_with("Server Error"), "{message}");
        assert!(!boom.to_string().contains("secret"), "{boom}");
        assert!(
            boom.get("errorData").is_none(),
            "internal errors are not ConvexErrors"
        );
        let missing = modification(&transition, 3).unwrap();
        assert_eq!(missing["type"], "QueryFailed");
        assert_eq!(
            missing["errorMessage"],
            "Could not find public function for 'messages:nothing'."
        );
        assert!(
            missing.get("errorData").is_none(),
            "an unknown function is a plain error"
        );

        // A ConvexError: message and data, no ts, then a Transition all the same.
        client.mutation(7, "messages:fail", json!({})).await;
        let failed = client.expect("MutationResponse").await;
        assert_eq!(failed["success"], false);
        assert_eq!(failed["result"], "That message clashes with another");
        assert_eq!(failed["ts"], json!(null));
        assert_eq!(
            failed["errorData"],
            json!({"code": "CONFLICT", "message": "That message clashes with another", "field": "body"})
        );
        client.expect("Transition").await;

        // Actions answer on their own, without a ts.
        client
            .send(json!({"type": "Action", "requestId": 8, "udfPath": "messages:act", "args": [{"body": "from an action"}]}))
            .await;
        let acted = client
            .until("the action's response", |m| m["type"] == "ActionResponse")
            .await;
        assert_eq!(acted["success"], true);
        assert_eq!(acted["result"]["count"], 1.0);
        assert!(acted.get("ts").is_none());
        client
            .send(json!({"type": "Action", "requestId": 9, "udfPath": "messages:actFail", "args": [{}]}))
            .await;
        let refused = client
            .until("the failed action", |m| m["type"] == "ActionResponse")
            .await;
        assert_eq!(refused["success"], false);
        assert_eq!(
            refused["errorData"],
            json!({"code": "RATE_LIMITED", "message": "Slow down"})
        );

        // Removing the count: the next change updates the list only.
        client
            .modify(1, json!([{"type": "Remove", "queryId": 1}]))
            .await;
        let removed = client
            .until("the removal", |m| {
                m["type"] == "Transition" && m["endVersion"]["querySet"] == 2
            })
            .await;
        assert_eq!(
            modification(&removed, 1).unwrap(),
            json!({"type": "QueryRemoved", "queryId": 1})
        );
        server
            .ok("mutation", "messages:send", json!({"body": "later"}))
            .await;
        let update = client
            .until("the list update", |m| {
                m["type"] == "Transition"
                    && modification(m, 0).is_some_and(|q| q["value"].as_array().unwrap().len() == 2)
            })
            .await;
        assert!(modification(&update, 1).is_none(), "{update}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_commit_reruns_only_the_queries_that_read_what_it_wrote() {
    for db in backends() {
        let place = Place::new(db).await;
        let server = SyncServer::start(&place).await;
        let (a, b) = (unique("company-a"), unique("company-b"));
        let mut client = Raw::connect(&server.ws_url()).await;
        client
            .modify(
                0,
                json!([
                    {"type": "Add", "queryId": 0, "udfPath": "items:list", "args": [{"company": a}]},
                    {"type": "Add", "queryId": 1, "udfPath": "items:list", "args": [{"company": b}]},
                ]),
            )
            .await;
        client.expect("Transition").await;
        assert_eq!((list_runs(&a), list_runs(&b)), (1, 1));
        let runs_before = server.metric("sync_query_runs_total").await;

        // Unrelated writes first (they touch neither list), then one to company A.
        server
            .ok("mutation", "messages:send", json!({"body": "unrelated"}))
            .await;
        server
            .ok(
                "mutation",
                "items:add",
                json!({"company": unique("company-c"), "text": "c1"}),
            )
            .await;
        server
            .ok("mutation", "items:add", json!({"company": a, "text": "a1"}))
            .await;
        let update = client.expect("Transition").await;
        assert_eq!(modification(&update, 0).unwrap()["value"], json!(["a1"]));
        assert!(modification(&update, 1).is_none());
        // Commits are handled in order and a connection re-runs everything marked before it
        // answers, so had any of the three commits touched company B's list it would have run.
        assert_eq!(list_runs(&a), 2, "{db:?}");
        assert_eq!(list_runs(&b), 1, "{db:?}: company B's list must not re-run");
        assert_eq!(
            server.metric("sync_query_runs_total").await - runs_before,
            1,
            "{db:?}: one re-run for three commits"
        );

        server
            .ok("mutation", "items:add", json!({"company": b, "text": "b1"}))
            .await;
        let update = client.expect("Transition").await;
        assert_eq!(modification(&update, 1).unwrap()["value"], json!(["b1"]));
        assert_eq!((list_runs(&a), list_runs(&b)), (2, 2));
        assert!(server.metric("sync_subscriptions").await >= 2);
        assert!(server.metric("sync_connections").await >= 1);
        assert!(server.metric("sync_query_pushes_total").await >= 4);
        server.stop().await;
    }
}

#[tokio::test]
async fn identical_subscriptions_share_one_run_per_commit() {
    for db in backends() {
        let place = Place::new(db).await;
        let server = SyncServer::start(&place).await;
        let mut clients = Vec::new();
        for _ in 0..3 {
            let mut client = Raw::connect(&server.ws_url()).await;
            let first = client.add(0, 0, "messages:slowCount", json!({})).await;
            assert_eq!(first["value"], 0.0);
            clients.push(client);
        }
        let runs = server.metric("sync_query_runs_total").await;
        let shared = server.metric("sync_query_shared_runs_total").await;
        server
            .ok("mutation", "messages:send", json!({"body": "one"}))
            .await;
        for client in &mut clients {
            let update = client.expect("Transition").await;
            assert_eq!(modification(&update, 0).unwrap()["value"], 1.0, "{db:?}");
        }
        assert_eq!(
            server.metric("sync_query_runs_total").await - runs,
            1,
            "{db:?}: one run served all three subscribers"
        );
        assert_eq!(
            server.metric("sync_query_shared_runs_total").await - shared,
            2
        );

        // Runs are shared only between identical callers: two users re-running at the same
        // moment each get their own result.
        let mut viewers = Vec::new();
        for name in [unique("u1"), unique("u2")] {
            let token = server
                .ok("mutation", "auth:login", json!({"name": name}))
                .await;
            let mut client = Raw::connect(&server.ws_url()).await;
            client
                .send(json!({"type": "Authenticate", "tokenType": "User", "value": token, "baseVersion": 0}))
                .await;
            client.expect("Transition").await;
            let me = client.add(0, 0, "auth:slowMe", json!({})).await;
            assert_eq!(me["value"], json!({"name": name, "messages": 1.0}));
            viewers.push((client, name));
        }
        server
            .ok("mutation", "messages:send", json!({"body": "two"}))
            .await;
        for (client, name) in &mut viewers {
            let update = client.expect("Transition").await;
            assert_eq!(
                modification(&update, 0).unwrap()["value"],
                json!({"name": name, "messages": 2.0}),
                "{db:?}"
            );
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn results_follow_the_session_and_the_users_role() {
    for db in backends() {
        let place = Place::new(db).await;
        let server = SyncServer::start(&place).await;
        let name = unique("ann");
        let token = server
            .ok("mutation", "auth:login", json!({"name": name}))
            .await;
        let token = token.as_str().unwrap().to_string();

        let mut client = Raw::connect(&server.ws_url()).await;
        client
            .send(json!({"type": "Authenticate", "tokenType": "User", "value": token, "baseVersion": 0}))
            .await;
        let accepted = client.expect("Transition").await;
        assert_eq!(
            accepted["endVersion"]["identity"], 1,
            "an accepted token moves the identity version"
        );
        let me = client.add(0, 0, "auth:me", json!({})).await;
        assert_eq!(me["value"], json!({"name": name, "role": "member"}));
        let admin = client.add(1, 1, "auth:adminOnly", json!({})).await;
        assert_eq!(admin["type"], "QueryFailed");
        assert_eq!(admin["errorData"]["code"], "FORBIDDEN");
        // The same query with the token as an argument instead of the connection's identity.
        let by_arg = client
            .add(2, 2, "auth:me", json!({"sessionToken": token}))
            .await;
        assert_eq!(by_arg["value"]["name"], name.as_str());

        // The user becomes an admin: the failed query now succeeds, the other shows the role.
        server
            .ok(
                "mutation",
                "auth:setRole",
                json!({"name": name, "role": "admin"}),
            )
            .await;
        let promoted = client.expect("Transition").await;
        assert_eq!(
            modification(&promoted, 1).unwrap()["value"],
            "the admin secret"
        );
        assert_eq!(
            modification(&promoted, 0).unwrap()["value"]["role"],
            "admin"
        );

        // Signing out ends the session: every query that relied on it fails.
        server
            .ok("mutation", "auth:logout", json!({"token": token}))
            .await;
        let ended = client.expect("Transition").await;
        for query in [0, 1, 2] {
            let failed = modification(&ended, query).unwrap();
            assert_eq!(failed["type"], "QueryFailed", "{db:?}: {ended}");
            assert_eq!(failed["errorData"]["code"], "UNAUTHENTICATED");
        }

        // Once ended, the token is refused when a connection authenticates with it.
        let mut late = Raw::connect(&server.ws_url()).await;
        late.send(
            json!({"type": "Authenticate", "tokenType": "User", "value": token, "baseVersion": 0}),
        )
        .await;
        let refused = late.expect("AuthError").await;
        assert_eq!(refused["baseVersion"], 0);
        assert_eq!(refused["authUpdateAttempted"], true);
        assert_eq!(refused["error"], "Invalid or expired session");
        late.closed().await;

        // Authenticate None drops the identity: the connection is anonymous again.
        let other = server
            .ok("mutation", "auth:login", json!({"name": unique("bob")}))
            .await;
        let mut switching = Raw::connect(&server.ws_url()).await;
        switching
            .send(json!({"type": "Authenticate", "tokenType": "User", "value": other, "baseVersion": 0}))
            .await;
        switching.expect("Transition").await;
        let me = switching.add(0, 0, "auth:me", json!({})).await;
        assert_eq!(me["type"], "QueryUpdated");
        switching
            .send(json!({"type": "Authenticate", "tokenType": "None", "baseVersion": 1}))
            .await;
        let anonymous = switching.expect("Transition").await;
        assert_eq!(anonymous["endVersion"]["identity"], 2);
        assert_eq!(
            modification(&anonymous, 0).unwrap()["errorData"]["code"],
            "UNAUTHENTICATED"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn a_session_that_expires_ends_its_subscriptions_without_any_commit() {
    let place = Place::new(common::Db::Sqlite).await;
    let options = server::SyncOptions {
        identity_recheck: std::time::Duration::from_millis(200),
        ..server::SyncOptions::default()
    };
    let server = SyncServer::start_with(&place, options).await;
    let token = server
        .ok(
            "mutation",
            "auth:login",
            json!({"name": unique("brief"), "ttlMs": 1500.0}),
        )
        .await;
    let mut client = Raw::connect(&server.ws_url()).await;
    client
        .send(
            json!({"type": "Authenticate", "tokenType": "User", "value": token, "baseVersion": 0}),
        )
        .await;
    client.expect("Transition").await;
    let me = client.add(0, 0, "auth:me", json!({})).await;
    assert_eq!(me["type"], "QueryUpdated");
    let expired = client.expect("Transition").await;
    let failed = modification(&expired, 0).unwrap();
    assert_eq!(failed["errorData"]["code"], "UNAUTHENTICATED", "{expired}");
    server.stop().await;
}

#[tokio::test]
async fn retried_mutations_apply_once_across_reconnects_and_restarts() {
    for db in backends() {
        let place = Place::new(db).await;
        let server = SyncServer::start(&place).await;
        let name = unique("count");
        let mut first = Raw::connect(&server.ws_url()).await;
        let session = first.session_id.clone();
        first
            .mutation(0, "counter:bump", json!({"name": name}))
            .await;
        let original = first.expect("MutationResponse").await;
        assert_eq!(original["result"], 1.0);
        drop(first);

        // The same request again on a new connection of the same client session.
        let mut again = Raw::connect_as(&server.ws_url(), &session).await;
        again
            .mutation(0, "counter:bump", json!({"name": name}))
            .await;
        let replayed = again.expect("MutationResponse").await;
        assert_eq!(
            replayed["result"], 1.0,
            "{db:?}: answered from the first run"
        );
        assert_eq!(replayed["ts"], original["ts"]);
        let reached = again.expect("Transition").await;
        assert!(ts(&reached["endVersion"]) >= ts_of(&replayed["ts"]));
        assert_eq!(
            server
                .ok("query", "counter:get", json!({"name": name}))
                .await,
            1.0
        );
        drop(again);

        // After a restart the record in the database still answers.
        server.stop().await;
        let server = SyncServer::start(&place).await;
        let mut after_restart = Raw::connect_as(&server.ws_url(), &session).await;
        after_restart
            .mutation(0, "counter:bump", json!({"name": name}))
            .await;
        let replayed = after_restart.expect("MutationResponse").await;
        assert_eq!(
            replayed["result"], 1.0,
            "{db:?}: the record survives a restart"
        );
        let reached = after_restart.expect("Transition").await;
        assert!(ts(&reached["endVersion"]) >= ts_of(&replayed["ts"]));
        // A new request id is a new mutation; another session's request 0 is too.
        after_restart
            .mutation(1, "counter:bump", json!({"name": name}))
            .await;
        assert_eq!(
            after_restart.expect("MutationResponse").await["result"],
            2.0
        );
        let mut stranger = Raw::connect(&server.ws_url()).await;
        stranger
            .mutation(0, "counter:bump", json!({"name": name}))
            .await;
        assert_eq!(stranger.expect("MutationResponse").await["result"], 3.0);
        assert_eq!(
            server
                .ok("query", "counter:get", json!({"name": name}))
                .await,
            3.0
        );
        assert!(server.metric("sync_mutation_replays_total").await >= 1);
        server.stop().await;
    }
}

#[tokio::test]
async fn mutation_records_are_kept_for_a_bounded_time() {
    for db in backends() {
        let place = Place::new(db).await;
        let options = server::SyncOptions {
            mutation_memory: std::time::Duration::from_millis(300),
            ..server::SyncOptions::default()
        };
        let server = SyncServer::start_with(&place, options).await;
        let name = unique("retention");
        let mut client = Raw::connect(&server.ws_url()).await;
        client
            .mutation(0, "counter:bump", json!({"name": name}))
            .await;
        assert_eq!(client.expect("MutationResponse").await["result"], 1.0);
        // Past the retention the record is gone (from memory and from the database), so the
        // same request id is a new request.
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let mut later = Raw::connect_as(&server.ws_url(), &client.session_id).await;
        later
            .mutation(0, "counter:bump", json!({"name": name}))
            .await;
        assert_eq!(
            later.expect("MutationResponse").await["result"],
            2.0,
            "{db:?}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn mutations_of_one_connection_run_in_order() {
    for db in backends() {
        let place = Place::new(db).await;
        let server = SyncServer::start(&place).await;
        let name = unique("ordered");
        let mut client = Raw::connect(&server.ws_url()).await;
        // A slow first mutation must still finish before the quick ones sent after it.
        client
            .mutation(
                0,
                "counter:slowBump",
                json!({"name": name, "delayMs": 300.0}),
            )
            .await;
        for request in 1..=5 {
            client
                .mutation(request, "counter:bump", json!({"name": name}))
                .await;
        }
        for request in 0..=5u32 {
            let response = client
                .until("the next response", |m| m["type"] == "MutationResponse")
                .await;
            assert_eq!(response["requestId"], request, "{db:?}");
            assert_eq!(response["result"], f64::from(request + 1));
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn protocol_errors_end_the_connection_with_a_reason() {
    let place = Place::new(common::Db::Sqlite).await;
    let options = server::SyncOptions {
        max_subscriptions: 3,
        max_message_bytes: 64 * 1024,
        ..server::SyncOptions::default()
    };
    let server = SyncServer::start_with(&place, options).await;

    let mut client = Raw::connect(&server.ws_url()).await;
    client.add(0, 0, "messages:list", json!({})).await;
    client.modify(0, json!([])).await;
    let fatal = client.expect("FatalError").await;
    assert!(
        fatal["error"]
            .as_str()
            .unwrap()
            .starts_with("BaseVersionMismatch"),
        "{fatal}"
    );
    let (code, reason) = client.closed().await;
    assert_eq!(code, 1008);
    assert!(reason.starts_with("BaseVersionMismatch"), "{reason}");

    let mut greedy = Raw::connect(&server.ws_url()).await;
    let adds: Vec<_> = (0..4)
        .map(|id| json!({"type": "Add", "queryId": id, "udfPath": "messages:list", "args": [{}]}))
        .collect();
    greedy.modify(0, json!(adds)).await;
    let fatal = greedy.expect("FatalError").await;
    assert_eq!(
        fatal["error"],
        "TooManySubscriptions: at most 3 queries per connection"
    );
    greedy.closed().await;

    let mut chatty = Raw::connect(&server.ws_url()).await;
    let big = "x".repeat(100 * 1024);
    chatty
        .mutation(0, "messages:send", json!({"body": big}))
        .await;
    let fatal = chatty.expect("FatalError").await;
    assert!(
        fatal["error"]
            .as_str()
            .unwrap()
            .starts_with("MessageTooLarge"),
        "{fatal}"
    );
    let (code, _) = chatty.closed().await;
    assert_eq!(code, 1009);

    let mut garbled = Raw::connect(&server.ws_url()).await;
    garbled.send_text("{not json".into()).await;
    let fatal = garbled.expect("FatalError").await;
    assert!(fatal["error"]
        .as_str()
        .unwrap()
        .starts_with("Invalid message"));
    garbled.closed().await;

    let mut binary = Raw::connect(&server.ws_url()).await;
    binary.send_binary(vec![1, 2, 3]).await;
    binary.expect("FatalError").await;
    binary.closed().await;

    // The Rust client's URL form works too, and a plain GET is no upgrade.
    let mut rust_style = Raw::connect(&format!("ws://{}/api/sync", server.addr)).await;
    rust_style.add(0, 0, "messages:count", json!({})).await;
    let plain = server
        .http
        .get(format!("{}/api/sync", server.url()))
        .send()
        .await
        .unwrap();
    assert!(plain.status().is_client_error(), "{}", plain.status());
    assert!(server.metric("sync_protocol_errors_total").await >= 5);
    server.stop().await;
}

#[tokio::test]
async fn idle_connections_get_pings_and_silent_ones_are_dropped() {
    let place = Place::new(common::Db::Sqlite).await;
    let options = server::SyncOptions {
        ping_interval: std::time::Duration::from_millis(200),
        idle_timeout: std::time::Duration::from_millis(1000),
        ..server::SyncOptions::default()
    };
    let server = SyncServer::start_with(&place, options).await;

    // A client that only listens (it never sends a message) but keeps reading answers the ping
    // frames and stays connected, whether updates keep coming or nothing happens.
    let mut listener = Raw::connect(&server.ws_url()).await;
    listener.add(0, 0, "messages:count", json!({})).await;
    let writes = {
        let http = server.http.clone();
        let url = server.url();
        tokio::spawn(async move {
            for n in 0..12 {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                http.post(format!("{url}/api/mutation"))
                    .json(&json!({"path": "messages:send", "format": "json", "args": [{"body": format!("m{n}")}]}))
                    .send()
                    .await
                    .unwrap();
            }
        })
    };
    listener
        .until("the last update", |m| {
            m["type"] == "Transition" && modification(m, 0).is_some_and(|q| q["value"] == 12.0)
        })
        .await;
    writes.await.unwrap();
    // Then 1.5 s in which the server has nothing to say: only Pings arrive.
    let pings = listener
        .listen_for(std::time::Duration::from_millis(1500))
        .await;
    assert!(pings >= 4, "{pings} pings in 1.5 s");
    // The listener is still there after well over the idle timeout.
    server
        .ok("mutation", "messages:send", json!({"body": "still there?"}))
        .await;
    let update = listener.expect("Transition").await;
    assert_eq!(modification(&update, 0).unwrap()["value"], 13.0);

    // One that reads nothing answers no ping and is dropped after the idle timeout.
    let mut silent = Raw::connect(&server.ws_url()).await;
    tokio::time::sleep(std::time::Duration::from_millis(1800)).await;
    let (code, reason) = silent.closed().await;
    assert_eq!(code, 1001);
    assert!(reason.starts_with("ClientIdle"), "{reason}");
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected_not_buffered() {
    let place = Place::new(common::Db::Sqlite).await;
    let options = server::SyncOptions {
        send_timeout: std::time::Duration::from_millis(500),
        ..server::SyncOptions::default()
    };
    let server = SyncServer::start_with(&place, options).await;
    let mut reader = Raw::connect(&server.ws_url()).await;
    // Each result is about 1 MiB and changes with every message.
    reader
        .add(0, 0, "messages:big", json!({"size": 1048576.0}))
        .await;
    // From here on the client reads nothing; socket buffers fill, then the server's queue.
    for n in 0..40 {
        server
            .ok(
                "mutation",
                "messages:send",
                json!({"body": format!("m{n}")}),
            )
            .await;
        if server.metric("sync_slow_client_disconnects_total").await > 0 {
            break;
        }
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.metric("sync_slow_client_disconnects_total").await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the stalled client was never disconnected"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // What the client eventually reads ends with the connection closing.
    let mut transitions = 0;
    while let Some(message) = reader.next().await {
        if message["type"] == "Transition" {
            transitions += 1;
        }
    }
    assert!(
        transitions < 40,
        "updates were coalesced, not queued one per commit"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.metric("sync_connections").await != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the connection was not released"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server.stop().await;
}
