//! The exported function spec (paths, kinds, argument and return validators) is kept in
//! `tests/api_spec.json`, so any change to the client-facing API shows up in review.
//! After an intended change: `UPDATE_API_SPEC=1 cargo test -p app --test api_spec`.

use std::path::Path;

#[test]
fn function_spec_matches_the_committed_snapshot() {
    let env = |key: &str| (key == "SUPPORTSIGNAL_ENV").then(|| "test".to_string());
    let config = config::Config::from_env(config::Overrides::default(), env).unwrap();
    let spec = sorted(app::registry(&config).spec_json());
    let current = serde_json::to_string_pretty(&spec).unwrap() + "\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api_spec.json");
    if std::env::var("UPDATE_API_SPEC").is_ok() {
        std::fs::write(&path, &current).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == current,
        "the function spec changed; review the difference and run with UPDATE_API_SPEC=1 to accept it:\n{}",
        first_difference(&committed, &current)
    );
}

/// Object keys in sorted order: whether serde_json keeps insertion order depends on which crates
/// the test build unifies its features with (a dev-dependency turns on `preserve_order`), and the
/// snapshot must not.
fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let entries: std::collections::BTreeMap<String, serde_json::Value> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            serde_json::Value::Object(entries.into_iter().collect())
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sorted).collect())
        }
        other => other,
    }
}

fn first_difference(a: &str, b: &str) -> String {
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}: committed `{x}`, now `{y}`", i + 1);
        }
    }
    format!(
        "committed {} lines, now {} lines",
        a.lines().count(),
        b.lines().count()
    )
}
