//! Feeds arbitrary text to the prompt template parser: it must never panic, an error must point
//! inside the input, an accepted template must render, and escaped text must render to itself.

#![no_main]

use ai::template::{escape, render, Template, VarKind, VariableSpec};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Template::parse(text) {
        Ok(t) => {
            let names = t.placeholders();
            let specs: Vec<VariableSpec> = names
                .iter()
                .map(|n| VariableSpec {
                    name: n.to_string(),
                    kind: VarKind::String,
                    required: true,
                    default: None,
                    description: None,
                })
                .collect();
            // Values that look like placeholders must come out unexpanded.
            let values: Map<String, Value> = names
                .iter()
                .map(|n| (n.to_string(), Value::String(format!("{{{{{n}}}}}"))))
                .collect();
            let out = render(&t, &specs, &values).expect("every placeholder has a value");
            assert!(out.unused.is_empty());
            if names.is_empty() {
                assert!(!text.contains("{{") || text.contains("\\{{"));
            }
        }
        Err(e) => {
            assert!(e.line >= 1 && e.line <= text.lines().count().max(1) + 1);
            assert!(e.column >= 1);
            assert!(!e.to_string().is_empty());
        }
    }
    let escaped = Template::parse(&escape(text)).expect("escaped text parses");
    assert!(escaped.placeholders().is_empty());
    let again = render(&escaped, &[], &Map::new()).expect("no placeholders to fill");
    assert_eq!(again.text, text);
});
