//! One table-driven authorization matrix over the real HTTP API: every public function of
//! `app::registry` × every caller (anonymous, the three company roles of company A, a company-less
//! demo admin and system admin) × own and foreign company where the function takes a company or a
//! company-owned resource. A foreign resource that is refused must answer exactly like a missing one.
//! The table is in `rows.rs`; a public function without a row fails the test.

#[path = "../harness/mod.rs"]
mod harness;
#[path = "../seed/mod.rs"]
mod seed;

mod fixture;
mod rows;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use functions::{
    Auth, Call, Caller as RuntimeCaller, ErrorShape, FunctionKind, RequestId, Visibility,
};
use harness::{backends, App, Db, Place};
use serde_json::{json, Value as Json};

use fixture::{Caller, Fixture, Tenant};
use rows::{Cx, Expect, Row};

/// OAuth is configured (with unreachable endpoints) so its functions answer past "not configured".
const ENV: [(&str, &str); 9] = [
    ("SUPPORTSIGNAL_ENV", "test"),
    ("GITHUB_CLIENT_ID", "matrix-gh"),
    ("GITHUB_CLIENT_SECRET", "matrix-gh-secret"),
    ("GOOGLE_CLIENT_ID", "matrix-google"),
    ("GOOGLE_CLIENT_SECRET", "matrix-google-secret"),
    ("GITHUB_OAUTH_BASE_URL", "http://127.0.0.1:9/gh"),
    ("GITHUB_API_BASE_URL", "http://127.0.0.1:9/gh-api"),
    ("GOOGLE_OAUTH_BASE_URL", "http://127.0.0.1:9/g"),
    ("GOOGLE_TOKEN_BASE_URL", "http://127.0.0.1:9/g-token"),
];

fn registry() -> functions::Registry {
    let env: BTreeMap<&str, &str> = ENV.into_iter().collect();
    let config = config::Config::from_env(config::Overrides::default(), |k| {
        env.get(k).map(|v| v.to_string())
    })
    .unwrap();
    app::registry(&config)
}

/// Every function's path, kind and visibility, from the registry the server runs.
fn specs() -> BTreeMap<String, (FunctionKind, Visibility)> {
    registry()
        .specs()
        .map(|s| (s.path.to_string(), (s.kind, s.visibility)))
        .collect()
}

/// The functions whose errors reach clients with the message as their only data (the sign-in
/// calls): the matrix reads their codes from the runtime instead.
fn message_only_errors() -> BTreeSet<String> {
    registry()
        .specs()
        .filter(|s| s.error_shape == ErrorShape::Message)
        .map(|s| s.path.to_string())
        .collect()
}

/// What one call answered, reduced to what the matrix judges.
#[derive(Clone, Debug, PartialEq)]
enum Answer {
    Success(Json),
    UserError {
        code: String,
        message: String,
    },
    /// An error without data: the platform's refusals (unknown function, bad arguments).
    PlainError(String),
    ServerError,
}

impl Answer {
    fn from_body(body: &Json) -> Answer {
        match body["status"].as_str() {
            Some("success") => Answer::Success(body["value"].clone()),
            _ => match body["errorData"]["code"].as_str() {
                Some(code) => Answer::UserError {
                    code: code.to_string(),
                    message: body["errorData"]["message"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                },
                None => {
                    let message = body["errorMessage"].as_str().unwrap_or_default();
                    if body.get("errorData").is_none() && !message.ends_with("Server Error") {
                        Answer::PlainError(message.to_string())
                    } else {
                        Answer::ServerError
                    }
                }
            },
        }
    }

    fn from_outcome(outcome: Result<functions::Outcome, functions::FunctionError>) -> Answer {
        match outcome {
            Ok(outcome) => Answer::Success(values::json::to_clean_json(&outcome.value)),
            Err(error) => match error.code() {
                Some(code) => Answer::UserError {
                    code: code.as_str().to_string(),
                    message: error.client_message(""),
                },
                None => Answer::ServerError,
            },
        }
    }

    fn short(&self) -> String {
        match self {
            Answer::Success(Json::Null) => "null".into(),
            Answer::Success(_) => "success".into(),
            Answer::UserError { code, message } => format!("{code} \"{message}\""),
            Answer::PlainError(message) => format!("plain \"{message}\""),
            Answer::ServerError => "server error".into(),
        }
    }

    fn satisfies(&self, expect: Expect, caller: Caller, null_hides: bool) -> bool {
        let code = match self {
            Answer::UserError { code, .. } => Some(code.as_str()),
            _ => None,
        };
        match expect {
            Expect::Allowed => match self {
                Answer::Success(value) => !(null_hides && value.is_null()),
                Answer::UserError { code, .. } => {
                    !matches!(code.as_str(), "FORBIDDEN" | "UNAUTHENTICATED" | "NOT_FOUND")
                }
                // Arguments the validator refuses, as a VALIDATION error was before.
                Answer::PlainError(message) => !message.starts_with("Could not find"),
                Answer::ServerError => false,
            },
            Expect::Forbidden => {
                code == Some("FORBIDDEN")
                    || (caller == Caller::Anonymous && code == Some("UNAUTHENTICATED"))
            }
            Expect::Hidden => {
                code == Some("NOT_FOUND") || matches!(self, Answer::Success(Json::Null))
            }
        }
    }
}

struct Mismatch {
    db: Db,
    path: String,
    caller: Caller,
    tenant: &'static str,
    expected: String,
    got: String,
    rule: &'static str,
}

struct Run<'a> {
    app: &'a App,
    /// See `message_only_errors`.
    message_only: &'a BTreeSet<String>,
    fx: &'a Fixture,
    db: Db,
    calls: usize,
    cells: usize,
    /// `AUTHORIZATION_MATRIX=print`: every cell, not only the mismatches.
    verbose: bool,
    mismatches: Vec<Mismatch>,
}

impl Run<'_> {
    async fn call(
        &mut self,
        kind: FunctionKind,
        row: &Row,
        caller: Caller,
        tenant: Tenant,
    ) -> Answer {
        let fresh = self.fx.prepare(self.app, row.setup, caller, tenant).await;
        let token = self.fx.token(caller);
        let cx = Cx {
            fx: self.fx,
            t: self.fx.tenant(tenant),
            token,
            fresh: fresh.as_deref(),
        };
        let mut args = (row.args)(&cx);
        if let (Some(token), Some(object)) = (token, args.as_object_mut()) {
            // As the web app does: every call carries the session token (unless the row set one).
            object.entry("sessionToken").or_insert_with(|| json!(token));
        }
        self.calls += 1;
        if self.message_only.contains(row.path) {
            // The code is not on the wire for these; ask the runtime the HTTP API runs calls with.
            let call = Call {
                path: row.path.to_string(),
                expected: Some(kind),
                args: values::json::from_clean_json(&args).unwrap(),
                auth: Auth::default(),
                request_id: RequestId::generate(),
                caller: RuntimeCaller::Client,
            };
            return Answer::from_outcome(self.app.runtime().call(call).await);
        }
        let body = self.app.call(kind.as_str(), row.path, args).await;
        Answer::from_body(&body)
    }

    fn mismatch(
        &mut self,
        row: &Row,
        caller: Caller,
        tenant: &'static str,
        expected: String,
        got: String,
    ) {
        self.mismatches.push(Mismatch {
            db: self.db,
            path: row.path.to_string(),
            caller,
            tenant,
            expected,
            got,
            rule: row.rule,
        });
    }

    async fn row(&mut self, kind: FunctionKind, row: &Row) {
        let tenants: &[Tenant] = if row.tenanted {
            &[Tenant::Own, Tenant::Foreign]
        } else {
            &[Tenant::Own]
        };
        for caller in Caller::ALL {
            for &tenant in tenants {
                let label = match (row.tenanted, tenant) {
                    (false, _) => "-",
                    (true, Tenant::Own) => "A",
                    (true, _) => "B",
                };
                let expect = (row.expect)(caller, tenant);
                let answer = self.call(kind, row, caller, tenant).await;
                self.cells += 1;
                if self.verbose {
                    eprintln!(
                        "{:<48} {:<16} {label:<2} {:<10} {}",
                        row.path,
                        caller.name(),
                        format!("{expect:?}"),
                        answer.short()
                    );
                }
                if !answer.satisfies(expect, caller, row.null_hides) {
                    self.mismatch(row, caller, label, format!("{expect:?}"), answer.short());
                }
                // A refused foreign resource must not reveal that it exists.
                if tenant == Tenant::Foreign && expect != Expect::Allowed {
                    let missing = self.call(kind, row, caller, Tenant::Missing).await;
                    if missing != answer {
                        let expected = format!("as missing: {}", missing.short());
                        self.mismatch(row, caller, label, expected, answer.short());
                    }
                }
            }
        }
    }

    /// Internal functions answer every client exactly like a function that does not exist.
    async fn internal(&mut self, path: &str, kind: FunctionKind) {
        for caller in Caller::ALL {
            let mut args = json!({});
            if let Some(token) = self.fx.token(caller) {
                args["sessionToken"] = json!(token);
            }
            self.calls += 1;
            let answer = Answer::from_body(&self.app.call(kind.as_str(), path, args).await);
            let expected = format!("Could not find public function for '{path}'.");
            let hidden = matches!(&answer, Answer::PlainError(message) if *message == expected);
            if !hidden {
                self.mismatches.push(Mismatch {
                    db: self.db,
                    path: path.to_string(),
                    caller,
                    tenant: "-",
                    expected: "Hidden (internal)".into(),
                    got: answer.short(),
                    rule: "internal: never callable by clients",
                });
            }
        }
    }
}

fn report(mismatches: &[Mismatch]) -> String {
    let width = |f: &dyn Fn(&Mismatch) -> usize| mismatches.iter().map(f).max().unwrap_or(0);
    let (wp, we, wg) = (
        width(&|m| m.path.len()).max(8),
        width(&|m| m.expected.len()).max(8),
        width(&|m| m.got.len()).max(3),
    );
    let mut out = format!(
        "{} authorization mismatches:\n{:<8} {:<wp$} {:<16} {:<3} {:<we$} {:<wg$} rule\n",
        mismatches.len(),
        "db",
        "function",
        "caller",
        "co",
        "expected",
        "got"
    );
    for m in mismatches {
        out += &format!(
            "{:<8} {:<wp$} {:<16} {:<3} {:<we$} {:<wg$} {}\n",
            format!("{:?}", m.db),
            m.path,
            m.caller.name(),
            m.tenant,
            m.expected,
            m.got,
            m.rule
        );
    }
    out
}

/// Every public function has a row, and every row names a public function.
fn check_coverage(specs: &BTreeMap<String, (FunctionKind, Visibility)>, table: &[Row]) {
    let public: BTreeSet<&str> = specs
        .iter()
        .filter(|(_, (_, visibility))| *visibility == Visibility::Public)
        .map(|(path, _)| path.as_str())
        .collect();
    let covered: BTreeSet<&str> = table.iter().map(|r| r.path).collect();
    let without_row: Vec<&&str> = public.difference(&covered).collect();
    let unknown: Vec<&&str> = covered.difference(&public).collect();
    assert!(
        without_row.is_empty(),
        "public functions without a row in tests/authorization/rows.rs (add one): {without_row:?}"
    );
    assert!(
        unknown.is_empty(),
        "rows for functions that are not public functions of app::registry: {unknown:?}"
    );
}

#[test]
fn every_public_function_has_a_row() {
    check_coverage(&specs(), &rows::rows());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix() {
    let specs = specs();
    let message_only = message_only_errors();
    let table = rows::rows();
    check_coverage(&specs, &table);
    let mut mismatches = Vec::new();
    for db in backends() {
        let started = Instant::now();
        let place = Place::new(db).await;
        let app = App::start_with(&place, &ENV).await;
        let fx = Fixture::build(&app).await;
        let mut run = Run {
            app: &app,
            message_only: &message_only,
            fx: &fx,
            db,
            calls: 0,
            cells: 0,
            verbose: std::env::var("AUTHORIZATION_MATRIX").is_ok_and(|v| v == "print"),
            mismatches: Vec::new(),
        };
        for row in &table {
            let (kind, _) = specs[row.path];
            run.row(kind, row).await;
        }
        for (path, (kind, visibility)) in &specs {
            if *visibility == Visibility::Internal {
                run.internal(path, *kind).await;
            }
        }
        eprintln!(
            "{db:?}: {} rows, {} cells, {} calls, {} mismatches in {:.1?}",
            table.len(),
            run.cells,
            run.calls,
            run.mismatches.len(),
            started.elapsed()
        );
        mismatches.append(&mut run.mismatches);
        app.stop().await;
    }
    assert!(mismatches.is_empty(), "{}", report(&mismatches));
}
