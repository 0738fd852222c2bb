//! Document writes and reads: CRUD, schema validation, Ids, unique(), failed mutations.

mod common;

use common::{insert, obj, schema, test_dbs, user, R};
use store::{Patch, StoreError};
use values::validator::v;
use values::Value;

#[tokio::test(flavor = "multi_thread")]
async fn insert_get_patch_replace_delete() {
    for db in test_dbs() {
        let store = db.open(schema()).await;
        let id = insert(&store, "users", user("ada", 36.0)).await;

        let (doc, _, _) = store.query(move |txn| txn.get(&id)).await.unwrap();
        let doc = doc.expect("inserted document");
        assert_eq!((doc.table.as_str(), doc.id), ("users", id), "{}", db.name);
        assert_eq!(doc.get("name"), Some(&Value::from("ada")));
        let value = doc.to_value();
        assert_eq!(value.get("_id"), Some(&Value::from(id.encode())));
        assert!(value
            .get("_creationTime")
            .and_then(Value::as_f64)
            .is_some_and(|t| t > 1.6e12));

        store
            .mutate(move |txn| {
                let patch = Patch::from([
                    ("age".to_string(), Some(Value::from(37.0))),
                    ("tags".into(), Some(vec![Value::from("x")].into())),
                ]);
                txn.patch(&id, patch)?;
                txn.patch(&id, Patch::from([("tags".to_string(), None)]))
            })
            .await
            .unwrap();
        let (doc, _, _) = store.query(move |txn| txn.get(&id)).await.unwrap();
        let doc = doc.unwrap();
        assert_eq!(doc.fields, user("ada", 37.0), "{}", db.name);

        store
            .mutate(move |txn| txn.replace(&id, user("grace", 40.0)))
            .await
            .unwrap();
        let (doc, _, _) = store.query(move |txn| txn.get(&id)).await.unwrap();
        assert_eq!(doc.unwrap().fields, user("grace", 40.0));
        // Index entries moved with the document.
        let (found, _, _) = store
            .query(|txn| {
                txn.query("users")?
                    .with_index("by_name", |q| q.eq("name", "ada"))?
                    .collect()
            })
            .await
            .unwrap();
        assert!(found.is_empty());

        store.mutate(move |txn| txn.delete(&id)).await.unwrap();
        let (doc, _, _) = store.query(move |txn| txn.get(&id)).await.unwrap();
        assert_eq!(doc, None);
        let (all, _, _) = store
            .query(|txn| txn.query("users")?.collect())
            .await
            .unwrap();
        assert!(all.is_empty(), "{}", db.name);

        // Writes to a missing document are NotFound.
        for op in 0..3 {
            let result: R<_> = store
                .mutate(move |txn| match op {
                    0 => txn.patch(&id, Patch::new()),
                    1 => txn.replace(&id, user("x", 1.0)),
                    _ => txn.delete(&id),
                })
                .await;
            assert!(
                matches!(result, Err(StoreError::NotFound(_))),
                "{}: {result:?}",
                db.name
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn validation_errors_name_the_field() {
    for db in test_dbs() {
        let store = db.open(schema()).await;
        let cases = [
            (
                "users",
                obj([("name", Value::from(12.0)), ("age", 1.0.into())]),
                ".name",
            ),
            ("users", obj([("name", "x".into())]), "age"),
            (
                "users",
                obj([
                    ("name", "x".into()),
                    ("age", 1.0.into()),
                    ("extra", true.into()),
                ]),
                "extra",
            ),
            (
                "users",
                obj([
                    ("name", "x".into()),
                    ("age", 1.0.into()),
                    ("tags", vec![Value::from(1.0)].into()),
                ]),
                ".tags[0]",
            ),
            (
                "users",
                obj([
                    ("name", "x".into()),
                    ("age", 1.0.into()),
                    ("_secret", 1.0.into()),
                ]),
                "_secret",
            ),
        ];
        for (table, fields, field) in cases {
            let result: R<_> = store
                .mutate(move |txn| txn.insert(table, fields.clone()))
                .await;
            match result {
                Err(StoreError::Validation { path, message }) => {
                    assert!(
                        path.contains(field) || message.contains(field),
                        "{}: {field} not named in {path:?} / {message}",
                        db.name
                    )
                }
                other => panic!(
                    "{}: expected a validation error naming {field}, got {other:?}",
                    db.name
                ),
            }
        }
        // A patch that breaks the schema is refused and leaves the document alone.
        let id = insert(&store, "users", user("ada", 36.0)).await;
        let result: R<_> = store
            .mutate(move |txn| txn.patch(&id, Patch::from([("age".to_string(), None)])))
            .await;
        assert!(
            matches!(&result, Err(StoreError::Validation { .. })),
            "{result:?}"
        );
        let long = "x".repeat(store::MAX_INDEX_KEY_BYTES);
        let result: R<_> = store
            .mutate(move |txn| txn.insert("users", user(&long, 1.0)))
            .await;
        assert!(
            matches!(&result, Err(StoreError::Validation { message, .. }) if message.contains("users.by_name")),
            "{result:?}"
        );
        // Over the size limit: the platform's limit, told apart from a schema violation.
        let huge = "x".repeat(2 * 1024 * 1024);
        let result: R<_> = store
            .mutate(move |txn| txn.insert("users", user(&huge, 1.0)))
            .await;
        assert!(
            matches!(&result, Err(StoreError::Limit(message)) if message.contains("too large")),
            "{}: {result:?}",
            db.name
        );
        let result: R<_> = store
            .mutate(|txn| txn.insert("nope", Default::default()))
            .await;
        assert!(
            matches!(&result, Err(StoreError::Validation { message, .. }) if message.contains("nope")),
            "{result:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ids_are_checked_against_their_table() {
    for db in test_dbs() {
        let store = db.open(schema()).await;
        let team = insert(&store, "teams", obj([("title", "core".into())])).await;
        let ada = insert(&store, "users", user("ada", 36.0)).await;
        let mut with_team = user("bob", 30.0);
        with_team.insert("team".into(), team.into());
        insert(&store, "users", with_team).await;

        let mut wrong = user("eve", 30.0);
        wrong.insert("team".into(), ada.into());
        let result: R<_> = store
            .mutate(move |txn| txn.insert("users", wrong.clone()))
            .await;
        assert!(
            matches!(&result, Err(StoreError::Validation { path, .. }) if path.contains("team")),
            "{}: {result:?}",
            db.name
        );

        let (normalized, _, _) = store
            .query(move |txn| {
                Ok::<_, StoreError>((
                    txn.normalize_id("teams", &team.encode()),
                    txn.normalize_id("users", &team.encode()),
                    txn.normalize_id("teams", "nope"),
                ))
            })
            .await
            .unwrap();
        assert_eq!(normalized, (Some(team), None, None));
        assert_eq!(store.table_number("teams"), Some(team.table_number));
        assert_eq!(store.table_name(team.table_number), Some("teams"));
        let tables = store.table_numbers();
        assert_eq!(tables.name(team.table_number), Some("teams"));
        let team_ref = v::id("teams");
        assert!(team_ref.check(&Value::from(team.encode()), &tables).is_ok());
        assert!(team_ref.check(&Value::from(ada.encode()), &tables).is_err());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unique_errors_on_two_matches() {
    for db in test_dbs() {
        let store = db.open(schema()).await;
        insert(&store, "users", user("ada", 36.0)).await;
        let unique = |name: &'static str| {
            let store = store.clone();
            async move {
                store
                    .query(move |txn| {
                        txn.query("users")?
                            .with_index("by_name", |q| q.eq("name", name))?
                            .unique()
                    })
                    .await
                    .map(|r| r.0)
            }
        };
        assert_eq!(
            unique("ada").await.unwrap().map(|d| d.fields),
            Some(user("ada", 36.0))
        );
        assert_eq!(unique("bob").await.unwrap(), None);
        insert(&store, "users", user("ada", 50.0)).await;
        assert!(
            matches!(unique("ada").await, Err(StoreError::Invalid(_))),
            "{}",
            db.name
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_mutation_writes_nothing() {
    for db in test_dbs() {
        let store = db.open(schema()).await;
        let before = store.last_ts();
        let result = store
            .mutate(|txn| -> R<()> {
                txn.insert("users", user("ghost", 1.0))?;
                txn.insert("teams", obj([("title", "ghosts".into())]))?;
                Err(StoreError::Invalid("changed my mind".into()))
            })
            .await;
        assert_eq!(
            result.map(|_| ()),
            Err(StoreError::Invalid("changed my mind".into()))
        );
        // Failing and succeeding mutations side by side (one group commit on SQLite).
        let mut tasks = Vec::new();
        for i in 0..40 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .mutate(move |txn| {
                        txn.insert("users", user(&format!("u{i}"), i as f64))?;
                        if i % 2 == 1 {
                            return Err(StoreError::Invalid("odd".into()));
                        }
                        Ok(())
                    })
                    .await
            }));
        }
        for (i, task) in tasks.into_iter().enumerate() {
            assert_eq!(task.await.unwrap().is_ok(), i % 2 == 0);
        }
        let (all, _, _) = store
            .query(|txn| txn.query("users")?.collect())
            .await
            .unwrap();
        let mut names = common::names(&all);
        names.sort();
        let mut expected: Vec<String> = (0..40)
            .filter(|i| i % 2 == 0)
            .map(|i| format!("u{i}"))
            .collect();
        expected.sort();
        assert_eq!(names, expected, "{}", db.name);
        let (teams, _, _) = store
            .query(|txn| txn.query("teams")?.collect())
            .await
            .unwrap();
        assert!(teams.is_empty());
        assert!(store.last_ts() > before);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn queries_cannot_write_and_panics_are_errors() {
    for db in test_dbs() {
        let store = db.open(schema()).await;
        let result: R<_> = store.query(|txn| txn.insert("users", user("x", 1.0))).await;
        assert!(
            matches!(result, Err(StoreError::Invalid(_))),
            "{}: {result:?}",
            db.name
        );

        let result = store
            .mutate(|txn| -> R<()> {
                txn.insert("users", user("x", 1.0))?;
                panic!("boom")
            })
            .await;
        assert!(
            matches!(&result, Err(StoreError::Internal(m)) if m.contains("boom")),
            "{result:?}"
        );
        let result = store.query(|_| -> R<()> { panic!("bang") }).await;
        assert!(
            matches!(&result, Err(StoreError::Internal(m)) if m.contains("bang")),
            "{result:?}"
        );
        // The store keeps working after both.
        insert(&store, "users", user("y", 2.0)).await;
        let (all, _, _) = store
            .query(|txn| txn.query("users")?.collect())
            .await
            .unwrap();
        assert_eq!(common::names(&all), vec!["y"]);
        store.health_check().await.unwrap();
    }
}
