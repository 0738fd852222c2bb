//! `{{name}}` prompt templates: parsing, the save-time check against declared variables, and
//! type-checked substitution.
//!
//! # Syntax
//! - A placeholder is `{{name}}`; spaces or tabs are allowed inside the braces (`{{ name }}`).
//!   A name starts with an ASCII letter or `_` and continues with ASCII letters, digits or `_`.
//! - A `{{` that does not start a well-formed placeholder is an error, never literal text, so a
//!   typo such as `{{ participant name }}` or a forgotten `}}` is caught when the template is saved.
//! - To write a literal `{{`, put a backslash before it: `\{{` renders as `{{`. A backslash anywhere
//!   else is an ordinary character. In the rare case that a placeholder must follow a literal
//!   backslash, double it: `\\{{name}}` renders a backslash then the value (before `{{`, each `\\`
//!   is one backslash and a final odd `\` escapes the braces).
//! - In a run of three or more `{`, the last two open the placeholder, so `{{{name}}}` renders the
//!   value wrapped in single braces (handy in JSON examples). A lone `}` or `}}` is ordinary text.
//! - Substituted values are inserted as they are: a value containing `{{` is never expanded again.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The type of a template variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VarKind {
    String,
    Number,
    Boolean,
}

impl VarKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VarKind::String => "string",
            VarKind::Number => "number",
            VarKind::Boolean => "boolean",
        }
    }

    /// Whether `value` is of this kind (a Number accepts JSON numbers, a Boolean booleans, a String
    /// strings; nothing converts implicitly).
    pub fn accepts(self, value: &Value) -> bool {
        matches!(
            (self, value),
            (VarKind::String, Value::String(_))
                | (VarKind::Number, Value::Number(_))
                | (VarKind::Boolean, Value::Bool(_))
        )
    }
}

impl fmt::Display for VarKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A variable a template declares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariableSpec {
    pub name: String,
    pub kind: VarKind,
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Var(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

/// Why a template does not parse. Positions are 1-based lines and columns (in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub kind: TemplateErrorKind,
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateErrorKind {
    /// `{{` with no matching `}}`.
    Unclosed,
    /// `{{}}` or `{{  }}`.
    EmptyName,
    /// Something between the braces that is not a variable name (the text as found, shortened).
    InvalidName(String),
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = format!("line {}, column {}", self.line, self.column);
        match &self.kind {
            TemplateErrorKind::Unclosed => write!(
                f,
                "`{{{{` at {at} is not closed: write `{{{{name}}}}`, or `\\{{{{` for a literal `{{{{`"
            ),
            TemplateErrorKind::EmptyName => write!(
                f,
                "empty placeholder at {at}: put a variable name between the braces, or write `\\{{{{` for a literal `{{{{`"
            ),
            TemplateErrorKind::InvalidName(found) => write!(
                f,
                "invalid placeholder {found:?} at {at}: a name uses letters, digits and `_` and does not start with a digit; write `\\{{{{` for a literal `{{{{`"
            ),
        }
    }
}

impl std::error::Error for TemplateError {}

/// One problem found by [`check`].
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateIssue {
    Parse(TemplateError),
    /// The template uses `{{name}}` but declares no such variable.
    UndeclaredPlaceholder(String),
    /// A declared variable the template never uses.
    UnusedVariable(String),
    /// A declared variable whose default is not of its kind.
    DefaultTypeMismatch {
        name: String,
        expected: VarKind,
        found: &'static str,
    },
    DuplicateVariable(String),
    /// A declared variable whose name could never appear in a placeholder.
    InvalidVariableName(String),
}

impl fmt::Display for TemplateIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateIssue::Parse(e) => e.fmt(f),
            TemplateIssue::UndeclaredPlaceholder(n) => write!(
                f,
                "the template uses {{{{{n}}}}} but no variable {n:?} is declared"
            ),
            TemplateIssue::UnusedVariable(n) => {
                write!(f, "variable {n:?} is declared but the template never uses it")
            }
            TemplateIssue::DefaultTypeMismatch {
                name,
                expected,
                found,
            } => write!(
                f,
                "the default of variable {name:?} must be a {expected}, not a {found}"
            ),
            TemplateIssue::DuplicateVariable(n) => {
                write!(f, "variable {n:?} is declared more than once")
            }
            TemplateIssue::InvalidVariableName(n) => write!(
                f,
                "variable name {n:?} is invalid: use letters, digits and `_`, not starting with a digit"
            ),
        }
    }
}

impl std::error::Error for TemplateIssue {}

/// The result of a substitution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    /// Names of the given values the template does not use, sorted.
    pub unused: Vec<String>,
}

/// Everything that stopped a substitution; each list names variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubstitutionError {
    /// Required variables with no value and no default.
    pub missing: Vec<String>,
    /// `name: expected <kind>, got <kind>` for values (or defaults) of the wrong type.
    pub type_errors: Vec<String>,
    /// Placeholders in the template with no declared variable.
    pub unknown: Vec<String>,
}

impl SubstitutionError {
    fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.type_errors.is_empty() && self.unknown.is_empty()
    }
}

impl fmt::Display for SubstitutionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!(
                "missing required variables: {}",
                self.missing.join(", ")
            ));
        }
        if !self.type_errors.is_empty() {
            parts.push(format!("wrong types: {}", self.type_errors.join("; ")));
        }
        if !self.unknown.is_empty() {
            parts.push(format!(
                "placeholders with no declared variable: {}",
                self.unknown.join(", ")
            ));
        }
        if parts.is_empty() {
            parts.push("substitution failed".to_string());
        }
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for SubstitutionError {}

/// Whether `name` may appear in a placeholder.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn position(src: &str, byte: usize) -> (usize, usize) {
    let before = &src[..byte];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn error(src: &str, at: usize, kind: TemplateErrorKind) -> TemplateError {
    let (line, column) = position(src, at);
    TemplateError { kind, line, column }
}

impl Template {
    /// Parses `src` (see the module documentation for the syntax).
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let bytes = src.as_bytes();
        let mut segments = Vec::new();
        let mut text = String::new();
        // Everything in src[copied..i] is pending ordinary text.
        let mut copied = 0;
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => {
                    let run = bytes[i..].iter().take_while(|&&b| b == b'\\').count();
                    let after = i + run;
                    if !src[after..].starts_with("{{") {
                        i = after;
                        continue;
                    }
                    text.push_str(&src[copied..i]);
                    text.extend(std::iter::repeat_n('\\', run / 2));
                    if run % 2 == 1 {
                        text.push_str("{{");
                        i = after + 2;
                    } else {
                        i = after;
                    }
                    copied = i;
                    // An even run leaves `{{` at i, which the next iteration opens.
                }
                b'{' if src[i..].starts_with("{{") => {
                    let run = bytes[i..].iter().take_while(|&&b| b == b'{').count();
                    let open = i + run - 2;
                    text.push_str(&src[copied..open]);
                    let inner_start = open + 2;
                    let Some(close) = src[inner_start..].find("}}") else {
                        return Err(error(src, open, TemplateErrorKind::Unclosed));
                    };
                    let inner = &src[inner_start..inner_start + close];
                    let name = inner.trim_matches([' ', '\t']);
                    if name.is_empty() {
                        return Err(error(src, open, TemplateErrorKind::EmptyName));
                    }
                    if !is_valid_name(name) {
                        let shown: String = name.chars().take(40).collect();
                        return Err(error(src, open, TemplateErrorKind::InvalidName(shown)));
                    }
                    if !text.is_empty() {
                        segments.push(Segment::Text(std::mem::take(&mut text)));
                    }
                    segments.push(Segment::Var(name.to_string()));
                    i = inner_start + close + 2;
                    copied = i;
                }
                _ => i += 1,
            }
        }
        text.push_str(&src[copied..]);
        if !text.is_empty() {
            segments.push(Segment::Text(text));
        }
        Ok(Template { segments })
    }

    /// The names used in placeholders, each once, in order of first use.
    pub fn placeholders(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.segments
            .iter()
            .filter_map(|s| match s {
                Segment::Var(n) if seen.insert(n.as_str()) => Some(n.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// Writes `text` so that it parses back as exactly `text` with no placeholders.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                let run = bytes[i..].iter().take_while(|&&b| b == b'\\').count();
                let after = i + run;
                if text[after..].starts_with("{{") {
                    // Before `{{` backslashes pair up, so double them; the braces are escaped below.
                    out.push_str(&text[copied..i]);
                    out.extend(std::iter::repeat_n('\\', run * 2));
                    copied = after;
                }
                i = after;
            }
            b'{' => {
                let run = bytes[i..].iter().take_while(|&&b| b == b'{').count();
                out.push_str(&text[copied..i]);
                for _ in 0..run / 2 {
                    out.push_str("\\{{");
                }
                if run % 2 == 1 {
                    out.push('{');
                }
                i += run;
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[copied..]);
    out
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The save-time check: parse errors, placeholders with no declared variable, declared variables
/// the template never uses, defaults of the wrong type, duplicate or invalid variable names. All
/// problems are reported, not just the first.
pub fn check(src: &str, vars: &[VariableSpec]) -> Result<Template, Vec<TemplateIssue>> {
    let mut issues = Vec::new();
    let mut declared = HashSet::new();
    for var in vars {
        if !is_valid_name(&var.name) {
            issues.push(TemplateIssue::InvalidVariableName(var.name.clone()));
        }
        if !declared.insert(var.name.as_str()) {
            issues.push(TemplateIssue::DuplicateVariable(var.name.clone()));
        }
        if let Some(default) = &var.default {
            if !var.kind.accepts(default) {
                issues.push(TemplateIssue::DefaultTypeMismatch {
                    name: var.name.clone(),
                    expected: var.kind,
                    found: json_kind(default),
                });
            }
        }
    }
    let template = match Template::parse(src) {
        Ok(t) => Some(t),
        Err(e) => {
            issues.push(TemplateIssue::Parse(e));
            None
        }
    };
    if let Some(t) = &template {
        let used: HashSet<&str> = t.placeholders().into_iter().collect();
        for name in t.placeholders() {
            if !declared.contains(name) {
                issues.push(TemplateIssue::UndeclaredPlaceholder(name.to_string()));
            }
        }
        let mut reported = HashSet::new();
        for var in vars {
            if !used.contains(var.name.as_str()) && reported.insert(var.name.as_str()) {
                issues.push(TemplateIssue::UnusedVariable(var.name.clone()));
            }
        }
    }
    match template {
        Some(t) if issues.is_empty() => Ok(t),
        _ => Err(issues),
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Substitutes `values` into `t`. Values are looked up by name; a JSON `null` counts as absent;
/// an absent value takes the variable's default, else is an error when required and empty text
/// when optional. Types are checked for every declared variable given a value. Unknown
/// placeholders are errors; values the template does not use are reported in
/// [`Rendered::unused`].
pub fn render(
    t: &Template,
    vars: &[VariableSpec],
    values: &Map<String, Value>,
) -> Result<Rendered, SubstitutionError> {
    let mut err = SubstitutionError::default();
    let lookup = |name: &str| vars.iter().find(|v| v.name == name);
    let given = |name: &str| values.get(name).filter(|v| !v.is_null());

    for var in vars {
        if let Some(v) = given(&var.name) {
            if !var.kind.accepts(v) {
                err.type_errors.push(format!(
                    "{}: expected {}, got {}",
                    var.name,
                    var.kind,
                    json_kind(v)
                ));
            }
        }
    }

    let mut resolved: Vec<(&str, String)> = Vec::new();
    for name in t.placeholders() {
        let Some(spec) = lookup(name) else {
            err.unknown.push(name.to_string());
            continue;
        };
        let text = match (given(name), &spec.default) {
            (Some(v), _) => value_text(v),
            (None, Some(d)) if !d.is_null() => {
                if !spec.kind.accepts(d) {
                    err.type_errors.push(format!(
                        "{name}: the default must be a {}, not a {}",
                        spec.kind,
                        json_kind(d)
                    ));
                }
                value_text(d)
            }
            (None, _) if spec.required => {
                err.missing.push(name.to_string());
                continue;
            }
            (None, _) => String::new(),
        };
        resolved.push((name, text));
    }
    if !err.is_empty() {
        return Err(err);
    }

    let mut text = String::new();
    for seg in &t.segments {
        match seg {
            Segment::Text(s) => text.push_str(s),
            Segment::Var(n) => {
                let value = resolved
                    .iter()
                    .find(|(name, _)| name == n)
                    .map(|(_, v)| v.as_str())
                    .unwrap_or_default();
                text.push_str(value);
            }
        }
    }
    let used: HashSet<&str> = t.placeholders().into_iter().collect();
    let mut unused: Vec<String> = values
        .keys()
        .filter(|k| !used.contains(k.as_str()))
        .cloned()
        .collect();
    unused.sort();
    Ok(Rendered { text, unused })
}

#[cfg(test)]
mod tests;
