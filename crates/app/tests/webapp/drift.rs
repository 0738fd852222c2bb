//! The web app's list of paths (`tests/webapp_paths.txt`) and ours must not drift apart: every path
//! it calls is registered, public, and of the kind it calls it as.

use std::collections::BTreeMap;

/// Paths that come with later work, each with the issue that brings it. Nothing else may be missing.
const LATER: &[(&str, &str)] = &[
    ("debugLogs:", "16 (log ingest)"),
    ("debugActions:", "16 (log ingest)"),
    ("workerSync:", "16 (log ingest)"),
];

fn app_paths() -> Vec<(String, String)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webapp_paths.txt");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (path, kind) = l.split_once(' ').expect("`path kind` per line");
            (path.to_string(), kind.trim().to_string())
        })
        .collect()
}

fn registered() -> BTreeMap<String, (String, String)> {
    let env = |key: &str| (key == "SUPPORTSIGNAL_ENV").then(|| "test".to_string());
    let config = config::Config::from_env(config::Overrides::default(), env).unwrap();
    let spec = app::registry(&config).spec_json();
    spec["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let text = |k: &str| f[k].as_str().unwrap().to_string();
            (text("path"), (text("kind"), text("visibility")))
        })
        .collect()
}

#[test]
fn every_path_the_web_app_calls_is_registered_as_the_kind_it_calls() {
    let ours = registered();
    let paths = app_paths();
    assert!(paths.len() >= 122, "the list lost paths: {}", paths.len());
    let mut problems = Vec::new();
    for (path, kind) in &paths {
        let later = LATER.iter().find(|(prefix, _)| path.starts_with(prefix));
        match (ours.get(path), later) {
            (Some((k, vis)), _) if k == kind && vis == "public" => {}
            (Some((k, vis)), _) => problems.push(format!(
                "{path}: the app calls a public {kind}, ours is a {vis} {k}"
            )),
            (None, Some(_)) => {}
            (None, None) => problems.push(format!("{path} ({kind}) is not registered")),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn paths_left_for_later_issues_are_still_missing_or_complete() {
    // Once an issue registers part of its prefix, the rest of it must follow in the same change.
    let ours = registered();
    for (prefix, issue) in LATER {
        let wanted: Vec<_> = app_paths()
            .into_iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .collect();
        let have = wanted.iter().filter(|(p, _)| ours.contains_key(p)).count();
        assert!(
            have == 0 || have == wanted.len(),
            "{prefix}* (issue {issue}): {have} of {} registered",
            wanted.len()
        );
    }
}
