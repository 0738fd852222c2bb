use serde_json::{json, Map, Value};

use super::*;

fn var(name: &str, kind: VarKind, required: bool, default: Option<Value>) -> VariableSpec {
    VariableSpec {
        name: name.to_string(),
        kind,
        required,
        default,
        description: None,
    }
}

fn values(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn text(src: &str) -> String {
    render(&Template::parse(src).unwrap(), &[], &Map::new())
        .unwrap()
        .text
}

#[test]
fn placeholders_are_distinct_in_first_use_order_and_allow_spaces() {
    let t = Template::parse("{{b}} and {{ a }} then {{\tb\t}} and {{c_1}}").unwrap();
    assert_eq!(t.placeholders(), vec!["b", "a", "c_1"]);
}

#[test]
fn parse_errors_say_what_and_where() {
    let e = Template::parse("Hello\n  {{name").unwrap_err();
    assert_eq!(e.kind, TemplateErrorKind::Unclosed);
    assert_eq!((e.line, e.column), (2, 3));
    assert!(e.to_string().contains("line 2, column 3"), "{e}");

    let e = Template::parse("x {{ }} y").unwrap_err();
    assert_eq!(e.kind, TemplateErrorKind::EmptyName);

    let e = Template::parse("{{participant name}}").unwrap_err();
    assert_eq!(
        e.kind,
        TemplateErrorKind::InvalidName("participant name".into())
    );
    let e = Template::parse("{{1st}}").unwrap_err();
    assert!(matches!(e.kind, TemplateErrorKind::InvalidName(_)));
    // Columns count characters, not bytes.
    let e = Template::parse("é {{").unwrap_err();
    assert_eq!((e.line, e.column), (1, 3));
}

#[test]
fn escapes_and_brace_runs() {
    assert_eq!(text(r"a \{{b}} c"), "a {{b}} c");
    assert_eq!(text(r"a \{{ c"), "a {{ c");
    assert_eq!(text(r"C:\temp\{x}"), r"C:\temp\{x}");
    assert_eq!(text("{ \"a\": {\"b\": 1}}"), "{ \"a\": {\"b\": 1}}");
    assert_eq!(text("}} alone"), "}} alone");

    let vars = [var("n", VarKind::String, true, None)];
    let t = Template::parse(r"{{{n}}} \\{{n}} \\\{{n}}").unwrap();
    let out = render(&t, &vars, &values(json!({"n": "V"}))).unwrap();
    assert_eq!(out.text, r"{V} \V \{{n}}");
}

#[test]
fn escape_round_trips() {
    for s in [
        "", "plain", "{{", "{{{", "{{{{{", r"\{{", r"\\{{x}}", "a{{b}}c", r"\", "{", r"\{",
    ] {
        assert_eq!(text(&escape(s)), s, "escaped as {:?}", escape(s));
    }
}

#[test]
fn render_substitutes_types_and_defaults() {
    let vars = [
        var("name", VarKind::String, true, None),
        var("age", VarKind::Number, false, Some(json!(30))),
        var("urgent", VarKind::Boolean, false, None),
        var("note", VarKind::String, false, None),
    ];
    let t = Template::parse("{{name}} ({{age}}) urgent={{urgent}} note=[{{note}}]").unwrap();
    let out = render(
        &t,
        &vars,
        &values(json!({"name": "Sam", "urgent": true, "extra": 1, "note": null})),
    )
    .unwrap();
    assert_eq!(out.text, "Sam (30) urgent=true note=[]");
    assert_eq!(out.unused, vec!["extra"]);

    let out = render(&t, &vars, &values(json!({"name": "Sam", "age": 2.5}))).unwrap();
    assert_eq!(out.text, "Sam (2.5) urgent= note=[]");
}

#[test]
fn render_reports_every_problem() {
    let vars = [
        var("name", VarKind::String, true, None),
        var("age", VarKind::Number, true, None),
        var("flag", VarKind::Boolean, false, None),
    ];
    let t = Template::parse("{{name}} {{age}} {{flag}} {{ghost}}").unwrap();
    let err = render(&t, &vars, &values(json!({"age": "12", "flag": "yes"}))).unwrap_err();
    assert_eq!(err.missing, vec!["name"]);
    assert_eq!(
        err.type_errors,
        vec![
            "age: expected number, got string",
            "flag: expected boolean, got string"
        ]
    );
    assert_eq!(err.unknown, vec!["ghost"]);
    let msg = err.to_string();
    assert!(msg.contains("missing required variables: name"), "{msg}");
    assert!(msg.contains("ghost"), "{msg}");
}

#[test]
fn check_lists_all_issues() {
    let vars = [
        var("name", VarKind::String, true, None),
        var("name", VarKind::String, true, None),
        var("count", VarKind::Number, false, Some(json!("three"))),
        var("unused", VarKind::String, false, None),
        var("bad name", VarKind::String, false, None),
    ];
    let issues = check("{{name}} {{count}} {{other}}", &vars).unwrap_err();
    assert!(issues.contains(&TemplateIssue::DuplicateVariable("name".into())));
    assert!(issues.contains(&TemplateIssue::DefaultTypeMismatch {
        name: "count".into(),
        expected: VarKind::Number,
        found: "string"
    }));
    assert!(issues.contains(&TemplateIssue::UndeclaredPlaceholder("other".into())));
    assert!(issues.contains(&TemplateIssue::UnusedVariable("unused".into())));
    assert!(issues.contains(&TemplateIssue::InvalidVariableName("bad name".into())));
    assert_eq!(issues.len(), 6, "{issues:?}"); // "bad name" is also unused

    // Parse errors come with the variable problems.
    let issues = check(
        "{{name",
        &[var("x", VarKind::Number, true, Some(json!(true)))],
    )
    .unwrap_err();
    assert!(matches!(
        issues[0],
        TemplateIssue::DefaultTypeMismatch { .. }
    ));
    assert!(matches!(issues[1], TemplateIssue::Parse(_)));

    let ok = check("Hi {{name}}", &vars[..1]).unwrap();
    assert_eq!(ok.placeholders(), vec!["name"]);
}

#[test]
fn kinds_serialize_lowercase() {
    let spec = var("n", VarKind::Boolean, true, None);
    let v = serde_json::to_value(&spec).unwrap();
    assert_eq!(v, json!({"name": "n", "kind": "boolean", "required": true}));
    let back: VariableSpec = serde_json::from_value(v).unwrap();
    assert_eq!(back, spec);
}
