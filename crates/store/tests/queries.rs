//! Index range queries, ordering, pagination and read sets.

mod common;

use std::collections::HashSet;

use common::{insert, names, schema, test_dbs, user, R};
use store::{Order, PaginationOpts, RangeBuilder, Store, StoreError};
use values::Value;

async fn seed(store: &Store) {
    store
        .mutate(|txn| {
            for (name, age) in [
                ("ann", 30.0),
                ("bob", 20.0),
                ("cat", 30.0),
                ("dan", 40.0),
                ("eve", 30.0),
                ("fay", 50.0),
                ("gus", 20.0),
            ] {
                txn.insert("users", user(name, age))?;
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
}

async fn by_age(
    store: &Store,
    order: Order,
    range: fn(RangeBuilder) -> RangeBuilder,
) -> R<Vec<String>> {
    store
        .query(move |txn| {
            txn.query("users")?
                .with_index("by_age_name", range)?
                .order(order)
                .collect()
        })
        .await
        .map(|r| names(&r.0))
}

#[tokio::test(flavor = "multi_thread")]
async fn index_ranges_select_and_order() {
    for db in test_dbs() {
        let store = db.open(schema()).await;
        seed(&store).await;
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let asc = Order::Asc;
        assert_eq!(
            by_age(&store, asc, |q| q).await.unwrap(),
            s(&["bob", "gus", "ann", "cat", "eve", "dan", "fay"]),
            "{}",
            db.name
        );
        assert_eq!(
            by_age(&store, asc, |q| q.eq("age", 30.0)).await.unwrap(),
            s(&["ann", "cat", "eve"])
        );
        assert_eq!(
            by_age(&store, asc, |q| q.eq("age", 30.0).gt("name", "ann"))
                .await
                .unwrap(),
            s(&["cat", "eve"])
        );
        assert_eq!(
            by_age(&store, asc, |q| q
                .eq("age", 30.0)
                .gte("name", "ann")
                .lt("name", "eve"))
            .await
            .unwrap(),
            s(&["ann", "cat"])
        );
        assert_eq!(
            by_age(&store, asc, |q| q.eq("age", 30.0).eq("name", "cat"))
                .await
                .unwrap(),
            s(&["cat"])
        );
        assert_eq!(
            by_age(&store, asc, |q| q.gt("age", 20.0).lte("age", 40.0))
                .await
                .unwrap(),
            s(&["ann", "cat", "eve", "dan"])
        );
        assert_eq!(
            by_age(&store, asc, |q| q.gte("age", 20.0).lt("age", 30.0))
                .await
                .unwrap(),
            s(&["bob", "gus"])
        );
        assert_eq!(
            by_age(&store, asc, |q| q.gt("age", 50.0)).await.unwrap(),
            s(&[])
        );
        assert_eq!(
            by_age(&store, asc, |q| q.lte("age", 20.0)).await.unwrap(),
            s(&["bob", "gus"])
        );
        assert_eq!(
            by_age(&store, Order::Desc, |q| q.gte("age", 30.0))
                .await
                .unwrap(),
            s(&["fay", "dan", "eve", "cat", "ann"])
        );
        assert_eq!(
            by_age(&store, Order::Desc, |q| q
                .eq("age", 30.0)
                .lte("name", "cat"))
            .await
            .unwrap(),
            s(&["cat", "ann"])
        );

        // take, first, filter, and the default by_creation_time order (insertion order).
        let (docs, _, _) = store
            .query(|txn| txn.query("users")?.take(3))
            .await
            .unwrap();
        assert_eq!(names(&docs), s(&["ann", "bob", "cat"]), "{}", db.name);
        let (docs, _, _) = store
            .query(|txn| txn.query("users")?.order(Order::Desc).take(2))
            .await
            .unwrap();
        assert_eq!(names(&docs), s(&["gus", "fay"]));
        let (first, _, _) = store
            .query(|txn| {
                txn.query("users")?
                    .with_index("by_name", |q| q.gt("name", "b"))?
                    .filter(|d| d.get("age") == Some(&Value::from(30.0)))
                    .first()
            })
            .await
            .unwrap();
        assert_eq!(first.map(|d| names(&[d])), Some(s(&["cat"])));
        let (filtered, _, _) = store
            .query(|txn| {
                txn.query("users")?
                    .filter(|d| d.get("age").and_then(Value::as_f64) > Some(25.0))
                    .take(10)
            })
            .await
            .unwrap();
        assert_eq!(names(&filtered), s(&["ann", "cat", "dan", "eve", "fay"]));

        // Ranges that do not follow the index are refused, naming the index and the field.
        let bad: [fn(RangeBuilder) -> RangeBuilder; 4] = [
            |q| q.eq("name", "ann"),
            |q| q.gt("age", 1.0).eq("name", "ann"),
            |q| q.gt("age", 1.0).gt("age", 2.0),
            |q| {
                q.eq("age", 1.0)
                    .eq("name", "x")
                    .eq("_creationTime", 1.0)
                    .eq("more", 1.0)
            },
        ];
        for range in bad {
            match by_age(&store, asc, range).await {
                Err(StoreError::Validation { message, .. }) => {
                    assert!(message.contains("users.by_age_name"), "{message}")
                }
                other => panic!("{}: expected a range error, got {other:?}", db.name),
            }
        }
        let unknown: R<_> = store
            .query(|txn| {
                txn.query("users")?
                    .with_index("by_nothing", |q| q)
                    .map(|_| ())
            })
            .await;
        assert!(matches!(unknown, Err(StoreError::Validation { .. })));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn paginate_visits_every_document_once_while_inserts_happen() {
    for db in test_dbs() {
        let store = db.open(schema()).await;
        for order in [Order::Asc, Order::Desc] {
            let table_docs = |store: &Store| {
                let store = store.clone();
                async move {
                    store
                        .query(|txn| txn.query("users")?.collect())
                        .await
                        .unwrap()
                        .0
                }
            };
            for doc in table_docs(&store).await {
                store.mutate(move |txn| txn.delete(&doc.id)).await.unwrap();
            }
            for i in 0..25 {
                insert(&store, "users", user(&format!("u{i:02}"), (i % 5) as f64)).await;
            }
            let original: HashSet<String> = names(&table_docs(&store).await).into_iter().collect();
            let mut seen = Vec::new();
            let mut cursor = None;
            let mut pages = 0;
            loop {
                let opts = PaginationOpts {
                    num_items: 4,
                    cursor: cursor.clone(),
                };
                let (page, _, _) = store
                    .query(move |txn| {
                        txn.query("users")?
                            .with_index("by_age_name", |q| q)?
                            .order(order)
                            .paginate(opts)
                    })
                    .await
                    .unwrap();
                assert!(page.page.len() <= 4);
                seen.extend(names(&page.page));
                pages += 1;
                // Documents land before and after the cursor between pages.
                insert(
                    &store,
                    "users",
                    user(&format!("new{pages}"), (pages % 6) as f64 - 0.5),
                )
                .await;
                if page.is_done {
                    break;
                }
                cursor = Some(page.continue_cursor);
                assert!(pages < 100, "pagination does not end");
            }
            let unique: HashSet<&String> = seen.iter().collect();
            assert_eq!(
                unique.len(),
                seen.len(),
                "{} {order:?}: a document was returned twice: {seen:?}",
                db.name
            );
            for name in &original {
                assert!(
                    unique.contains(name),
                    "{} {order:?}: {name} was skipped",
                    db.name
                );
            }
        }
        let bad: R<_> = store
            .query(|txn| {
                txn.query("users")?.paginate(PaginationOpts {
                    num_items: 3,
                    cursor: Some("not a cursor!".into()),
                })
            })
            .await;
        assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn read_sets_cover_what_a_query_depends_on() {
    for db in test_dbs() {
        let store = db.open(schema()).await;
        seed(&store).await;
        let mut commits = store.subscribe();
        let (_, age30, ts) = store
            .query(|txn| {
                txn.query("users")?
                    .with_index("by_age_name", |q| q.eq("age", 30.0))?
                    .collect()
            })
            .await
            .unwrap();
        assert_eq!(ts, store.last_ts(), "{}", db.name);
        let (_, first_two, _) = store
            .query(|txn| txn.query("users")?.with_index("by_name", |q| q)?.take(2))
            .await
            .unwrap();
        let (ann, _, _) = store
            .query(|txn| {
                txn.query("users")?
                    .with_index("by_name", |q| q.eq("name", "ann"))?
                    .unique()
            })
            .await
            .unwrap();
        let ann = ann.unwrap().id;
        let (_, get_ann, _) = store.query(move |txn| txn.get(&ann)).await.unwrap();

        // A new 30-year-old "abe" sorts first by name and is in the age-30 range.
        let (_, ts1, writes) = store
            .mutate(|txn| txn.insert("users", user("abe", 30.0)))
            .await
            .unwrap();
        assert!(
            age30.intersects(&writes)
                && first_two.intersects(&writes)
                && !get_ann.intersects(&writes),
            "{}",
            db.name
        );
        let commit = commits.recv().await.unwrap();
        assert_eq!((commit.ts, &commit.writes), (ts1, &writes));

        // "zed", 60: outside every range read above.
        let (_, _, writes) = store
            .mutate(|txn| txn.insert("users", user("zed", 60.0)))
            .await
            .unwrap();
        assert!(
            !age30.intersects(&writes)
                && !first_two.intersects(&writes)
                && !get_ann.intersects(&writes),
            "{}",
            db.name
        );

        // Patching ann touches the point read, and the age-30 range it leaves.
        let patch = store::Patch::from([("age".to_string(), Some(Value::from(99.0)))]);
        let (_, _, writes) = store
            .mutate(move |txn| txn.patch(&ann, patch.clone()))
            .await
            .unwrap();
        assert!(
            get_ann.intersects(&writes) && age30.intersects(&writes),
            "{}",
            db.name
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn count_counts_the_range_and_reads_all_of_it() {
    for db in test_dbs() {
        let store = db.open(schema()).await;
        seed(&store).await;
        let count = |range: fn(RangeBuilder) -> RangeBuilder,
                     keep: Option<fn(&store::Document) -> bool>| {
            let store = store.clone();
            async move {
                store
                    .query(move |txn| {
                        let q = txn.query("users")?.with_index("by_age_name", range)?;
                        match keep {
                            Some(keep) => q.filter(keep).count(),
                            None => q.count(),
                        }
                    })
                    .await
                    .unwrap()
            }
        };
        assert_eq!(count(|q| q, None).await.0, 7, "{}", db.name);
        assert_eq!(count(|q| q.eq("age", 30.0), None).await.0, 3, "{}", db.name);
        assert_eq!(count(|q| q.gt("age", 30.0), None).await.0, 2, "{}", db.name);
        assert_eq!(count(|q| q.eq("age", 99.0), None).await.0, 0, "{}", db.name);
        let starts_with_e = |d: &store::Document| {
            d.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.starts_with('e'))
        };
        assert_eq!(
            count(|q| q.eq("age", 30.0), Some(starts_with_e)).await.0,
            1,
            "{}",
            db.name
        );

        // A count depends on the whole range: an insert anywhere in it may change the answer.
        let (_, thirties, _) = count(|q| q.eq("age", 30.0), None).await;
        let (_, _, writes) = store
            .mutate(|txn| txn.insert("users", user("zed", 30.0)))
            .await
            .unwrap();
        assert!(thirties.intersects(&writes), "{}", db.name);
        let (_, _, writes) = store
            .mutate(|txn| txn.insert("users", user("old", 90.0)))
            .await
            .unwrap();
        assert!(!thirties.intersects(&writes), "{}", db.name);
        assert_eq!(count(|q| q.eq("age", 30.0), None).await.0, 4, "{}", db.name);
    }
}
