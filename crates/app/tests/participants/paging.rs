//! Paging through 120 participants: Convex cursors and offset/limit, in name order and others.

use super::*;

const LAST: [&str; 12] = [
    "Williams",
    "nguyen",
    "O'Brien",
    "de Vries",
    "Smith",
    "smith",
    "Zhang",
    "Abbott",
    "Li",
    "Lim",
    "Brown",
    "MacDonald",
];
const FIRST: [&str; 10] = [
    "Sarah", "tom", "Aisha", "Ben", "chloe", "Dev", "Emma", "Farid", "Grace", "hugo",
];

#[tokio::test]
async fn one_hundred_and_twenty_participants_page_in_name_order() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let abc = company(&app, "ABC Care").await;
        let primary = site(&app, &abc, "Primary").await;
        let east = site(&app, &abc, "East").await;
        let admin = member(&app, "admin@abc.org", "company_admin", Some(&abc)).await;
        let mut expected = Vec::new();
        for i in 0..120usize {
            let (first, last) = (FIRST[i % 10], LAST[(i * 7) % 12]);
            let ndis = format!("{:09}", 400_000_000 + i * 37);
            let in_east = i % 3 == 0;
            let level = ["high", "medium", "low"][i % 3];
            let site_id = if in_east { &east } else { &primary };
            let args = json!({
                "sessionToken": admin, "first_name": first, "last_name": last,
                "date_of_birth": format!("{}-06-15", 1950 + i % 50), "ndis_number": ndis,
                "support_level": level, "site_id": site_id,
            });
            let id = create(&app, args).await;
            let key = (last.to_lowercase(), first.to_lowercase());
            expected.push((key, id, ndis, in_east));
        }
        expected.sort_by(|a, b| a.0.cmp(&b.0));

        // Convex pagination through the list, 25 at a time.
        let mut seen = Vec::new();
        let mut cursor = Json::Null;
        loop {
            let page = app
                .ok(
                    "query",
                    "participants/list:listParticipants",
                    json!({"sessionToken": admin,
                           "paginationOpts": {"numItems": 25, "cursor": cursor}}),
                )
                .await;
            let items = page["page"].as_array().unwrap();
            assert_eq!(page["participants"], page["page"]);
            assert!(items.len() <= 25);
            seen.extend(items.iter().map(|p| p["_id"].as_str().unwrap().to_string()));
            if page["isDone"] == true {
                break;
            }
            cursor = page["continueCursor"].clone();
        }
        let ids: Vec<String> = expected.iter().map(|e| e.1.clone()).collect();
        assert_eq!(seen.len(), 120);
        // Equal names may come in either order; the name sequence must match exactly.
        let names_of = |ids: &[String]| -> Vec<(String, String)> {
            ids.iter()
                .map(|id| expected.iter().find(|e| &e.1 == id).unwrap().0.clone())
                .collect()
        };
        assert_eq!(names_of(&seen), names_of(&ids));
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 120, "no participant twice");

        // Offset and limit through search: 50, 50, 20.
        let mut paged = Vec::new();
        for (offset, returned, more) in [(0, 50.0, true), (50, 50.0, true), (100, 20.0, false)] {
            let r = app
                .ok(
                    "query",
                    "participants/search:searchParticipants",
                    json!({"sessionToken": admin, "limit": 50, "offset": offset}),
                )
                .await;
            assert_eq!(r["totalCount"], 120.0);
            assert_eq!(r["returnedCount"], returned);
            assert_eq!(r["hasMore"], more);
            paged.extend(
                r["participants"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["_id"].as_str().unwrap().to_string()),
            );
        }
        assert_eq!(names_of(&paged), names_of(&ids));

        // Sorted by NDIS number, descending, paged by cursor with a site filter.
        let mut east_ndis: Vec<&str> = expected
            .iter()
            .filter(|e| e.3)
            .map(|e| e.2.as_str())
            .collect();
        east_ndis.sort_unstable_by(|a, b| b.cmp(a));
        let mut got = Vec::new();
        let mut cursor = Json::Null;
        loop {
            let r = app
                .ok(
                    "query",
                    "participants/search:searchParticipants",
                    json!({"sessionToken": admin, "site_id": east, "sort_by": "ndis_number",
                           "sort_order": "desc",
                           "paginationOpts": {"numItems": 15, "cursor": cursor}}),
                )
                .await;
            got.extend(
                r["page"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["ndis_number"].as_str().unwrap().to_string()),
            );
            assert_eq!(r["hasMore"], r["isDone"] == false);
            if r["isDone"] == true {
                break;
            }
            cursor = r["continueCursor"].clone();
        }
        assert_eq!(got, east_ndis);

        // Text search is case-insensitive over names and NDIS numbers; site narrows through its index.
        let smiths = app
            .ok(
                "query",
                "participants/search:searchParticipants",
                json!({"sessionToken": admin, "query": "SMITH"}),
            )
            .await;
        let want = expected.iter().filter(|e| e.0 .0 == "smith").count();
        assert_eq!(smiths["totalCount"], want as f64);
        let by_ndis = app
            .ok(
                "query",
                "participants/list:listParticipants",
                json!({"sessionToken": admin, "search": &expected[7].2}),
            )
            .await;
        assert_eq!(by_ndis["participants"][0]["_id"], expected[7].1.as_str());
        let in_east = app
            .ok(
                "query",
                "participants/list:listParticipants",
                json!({"sessionToken": admin, "site_id": east, "support_level": "high"}),
            )
            .await;
        assert_eq!(
            in_east["totalCount"], 40.0,
            "every third is in East, and high"
        );
        let limited = app
            .ok(
                "query",
                "participants/list:listParticipants",
                json!({"sessionToken": admin, "limit": 5}),
            )
            .await;
        assert_eq!(limited["participants"].as_array().unwrap().len(), 5);
        assert_eq!(limited["totalCount"], 120.0);
        for (range, count) in [
            (json!({"max_age": 20}), 0.0),
            (json!({"min_age": 0, "max_age": 150}), 120.0),
        ] {
            let r = app
                .ok(
                    "query",
                    "participants/search:searchParticipants",
                    json!({"sessionToken": admin, "age_range": range}),
                )
                .await;
            assert_eq!(r["totalCount"], count, "{range}");
        }
        app.stop().await;
    }
}
