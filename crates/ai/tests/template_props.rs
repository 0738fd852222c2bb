//! Property tests of the template engine.

use ai::template::{escape, render, Template, VarKind, VariableSpec};
use proptest::prelude::*;
use serde_json::{Map, Value};

#[derive(Debug, Clone)]
enum Piece {
    /// Arbitrary literal text, escaped into the source.
    Text(String),
    /// A placeholder for variable number `n`, with optional inner spaces.
    Var(usize, bool),
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        // Text biased towards the characters the syntax cares about.
        proptest::collection::vec(
            prop_oneof![
                Just('{'),
                Just('}'),
                Just('\\'),
                Just(' '),
                Just('\n'),
                any::<char>()
            ],
            0..12
        )
        .prop_map(|cs| Piece::Text(cs.into_iter().collect())),
        (0usize..4, any::<bool>()).prop_map(|(n, spaced)| Piece::Var(n, spaced)),
    ]
}

/// Backslashes right before `{{` pair up, so a backslash run that will end up right before the
/// placeholder's braces (directly, or before a single literal `{`) is doubled, as the syntax says.
fn before_placeholder(src: &mut String) {
    let braces = src.len() - src.trim_end_matches('{').len();
    if braces > 1 {
        return; // ends with an escaped `\{{`, which already stands alone
    }
    let body = src.len() - braces;
    let slashes = body - src[..body].trim_end_matches('\\').len();
    src.insert_str(body, &"\\".repeat(slashes));
}

fn name(n: usize) -> String {
    ["participantName", "phase", "count_2", "_x"][n].to_string()
}

proptest! {
    /// A generated template renders to its literal pieces with the values in place of the
    /// placeholders. Adjacent text pieces are joined before escaping: an escaped piece is only
    /// guaranteed to stand alone, and the joined text is what the author would write.
    #[test]
    fn render_parse_round_trips(
        pieces in proptest::collection::vec(piece(), 0..10),
        vals in proptest::collection::vec(".*", 4),
    ) {
        let mut joined: Vec<Piece> = Vec::new();
        for p in pieces {
            match (joined.last_mut(), p) {
                (Some(Piece::Text(a)), Piece::Text(b)) => a.push_str(&b),
                (_, p) => joined.push(p),
            }
        }
        let mut src = String::new();
        let mut expected = String::new();
        let mut used = Vec::new();
        for p in &joined {
            match p {
                Piece::Text(t) => {
                    src.push_str(&escape(t));
                    expected.push_str(t);
                }
                Piece::Var(n, spaced) => {
                    before_placeholder(&mut src);
                    let nm = name(*n);
                    if *spaced { src.push_str(&format!("{{{{ {nm} }}}}")) } else { src.push_str(&format!("{{{{{nm}}}}}")) }
                    expected.push_str(&vals[*n]);
                    if !used.contains(&nm) { used.push(nm); }
                }
            }
        }
        let t = Template::parse(&src).map_err(|e| TestCaseError::fail(format!("{src:?}: {e}")))?;
        prop_assert_eq!(t.placeholders(), used.iter().map(String::as_str).collect::<Vec<_>>());
        let specs: Vec<VariableSpec> = (0..4).map(|n| VariableSpec {
            name: name(n), kind: VarKind::String, required: true, default: None, description: None,
        }).collect();
        let values: Map<String, Value> = (0..4).map(|n| (name(n), Value::String(vals[n].clone()))).collect();
        let out = render(&t, &specs, &values).unwrap();
        prop_assert_eq!(out.text, expected);
        let mut unused: Vec<String> = (0..4).map(name).filter(|n| !used.contains(n)).collect();
        unused.sort();
        prop_assert_eq!(out.unused, unused);
    }

    /// Text with no `{{` in it is a template that renders to itself.
    #[test]
    fn text_without_placeholders_is_unchanged(s in ".*") {
        prop_assume!(!s.contains("{{"));
        let t = Template::parse(&s).unwrap();
        prop_assert!(t.placeholders().is_empty());
        prop_assert_eq!(render(&t, &[], &Map::new()).unwrap().text, s);
    }

    /// Any text, escaped, renders to itself.
    #[test]
    fn escaped_text_renders_to_itself(s in ".*") {
        let t = Template::parse(&escape(&s)).unwrap();
        prop_assert_eq!(render(&t, &[], &Map::new()).unwrap().text, s);
    }

    /// A value that looks like a placeholder is inserted as it is, not expanded.
    #[test]
    fn values_are_never_re_expanded(prefix in ".*", suffix in ".*") {
        let value = format!("{prefix}{{{{b}}}}{suffix}");
        let specs = [
            VariableSpec { name: "a".into(), kind: VarKind::String, required: true, default: None, description: None },
            VariableSpec { name: "b".into(), kind: VarKind::String, required: true, default: None, description: None },
        ];
        let t = Template::parse("[{{a}}|{{b}}]").unwrap();
        let mut values = Map::new();
        values.insert("a".into(), Value::String(value.clone()));
        values.insert("b".into(), Value::String("B".into()));
        prop_assert_eq!(render(&t, &specs, &values).unwrap().text, format!("[{value}|B]"));
    }

    /// The parser never panics, and what it accepts has only valid names.
    #[test]
    fn parse_never_panics(s in ".*") {
        if let Ok(t) = Template::parse(&s) {
            prop_assert!(t.placeholders().iter().all(|n| ai::template::is_valid_name(n)));
        }
    }
}
