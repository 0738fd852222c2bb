//! `supportsignal codegen`: the generated `convex/_generated` files type-check against the official
//! `convex` npm package with `tsc --strict` (samples call a query, a mutation and an action through
//! `ConvexHttpClient`), a wrong argument type does not compile, and `--check` tells current output
//! from edited output. The npm packages are those of `crates/app/tests/npm` (`npm ci` there).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;

/// Calls a query, a mutation and an action of the narratives module (which declares its results)
/// and uses the data model's types the way an app does.
const GOOD_SAMPLE: &str = r#"
import { ConvexHttpClient } from "convex/browser";
import type { DocumentByName, GenericDatabaseReader, GenericDataModel } from "convex/server";
import { api } from "./convex/_generated/api.js";
import type { DataModel, Doc, Id, TableNames } from "./convex/_generated/dataModel.js";

// The data model has the shape convex/server's generic types expect.
type IsDataModel<T extends GenericDataModel> = T;
export type Model = IsDataModel<DataModel>;
export type Incident = DocumentByName<DataModel, "incidents">;

// Its indexes and field paths type a read the way a Convex function's would.
export async function latest(db: GenericDatabaseReader<DataModel>, company: Id<"companies">) {
  const rows: Doc<"incidents">[] = await db
    .query("incidents")
    .withIndex("by_company_created", (q) => q.eq("company_id", company))
    .order("desc")
    .take(5);
  return rows.map((row) => row._id);
}

export async function capture(client: ConvexHttpClient, incident: Id<"incidents">): Promise<number> {
  const narrative = await client.query(api.narratives.getByIncidentId, {
    incident_id: incident,
    sessionToken: "token",
  });
  const before: string | undefined = narrative?.before_event;
  const own: Id<"incident_narratives"> | undefined = narrative?._id;
  const updated = await client.mutation(api.narratives.update, {
    incident_id: incident,
    before_event: before ?? "",
  });
  // Functions that declare no result yet return `any`.
  const enhanced: unknown = await client.action(api.aiEnhancement.enhanceIncidentNarrative, {
    incident_id: incident,
  });
  const row: Doc<"incidents"> | null = null;
  const table: TableNames = "incident_narratives";
  void own;
  void enhanced;
  void row;
  void table;
  const version: number = updated.version;
  return version;
}
"#;

const BAD_SAMPLE: &str = r#"
import { ConvexHttpClient } from "convex/browser";
import { api } from "./convex/_generated/api.js";

export async function wrong(client: ConvexHttpClient) {
  return await client.query(api.narratives.getByIncidentId, { incident_id: 42 });
}
"#;

const TSCONFIG: &str = r#"{
  "compilerOptions": {
    "target": "ES2022",
    "module": "ESNext",
    "moduleResolution": "Bundler",
    "strict": true,
    "noEmit": true,
    "skipLibCheck": false,
    "types": []
  },
  "include": ["*.ts", "convex/_generated/*"]
}
"#;

fn npm_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../app/tests/npm")
}

fn node_available() -> bool {
    let found = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!(
            "SKIPPED: node is not installed, so the generated TypeScript is not type-checked"
        );
    }
    found
}

/// Installs `convex` and `typescript` from the lockfile once (the app's tests share them).
fn ensure_packages_installed() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let dir = npm_dir();
        let modules = dir.join("node_modules");
        if modules.join("convex/package.json").exists()
            && modules.join("typescript/package.json").exists()
        {
            return;
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
            .current_dir(&dir)
            .status()
            .expect("npm runs");
        assert!(status.success(), "npm ci failed in {}", dir.display());
    });
}

fn codegen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_supportsignal"))
        .arg("codegen")
        .args(args)
        .output()
        .expect("supportsignal runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A TypeScript project in a temporary directory: tsconfig, the shared node_modules, the generated
/// code in convex/_generated and `sample.ts`.
fn project(sample: &str) -> tempfile::TempDir {
    ensure_packages_installed();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tsconfig.json"), TSCONFIG).unwrap();
    std::fs::write(dir.path().join("sample.ts"), sample).unwrap();
    link(
        &npm_dir().join("node_modules"),
        &dir.path().join("node_modules"),
    );
    let out = dir.path().join("convex/_generated");
    let generated = codegen(&["--out", out.to_str().unwrap()]);
    assert!(
        generated.status.success(),
        "codegen failed: {}",
        text(&generated)
    );
    dir
}

#[cfg(unix)]
fn link(target: &Path, at: &Path) {
    std::os::unix::fs::symlink(target, at).unwrap();
}

#[cfg(windows)]
fn link(target: &Path, at: &Path) {
    std::os::windows::fs::symlink_dir(target, at).unwrap();
}

/// `tsc --noEmit --strict` over the project.
fn tsc(dir: &Path) -> Output {
    let tsc = npm_dir().join("node_modules/typescript/bin/tsc");
    Command::new("node")
        .arg(tsc)
        .args(["-p", "tsconfig.json", "--noEmit", "--strict"])
        .current_dir(dir)
        .output()
        .expect("node runs")
}

#[test]
fn generated_code_type_checks_against_the_official_client() {
    if !node_available() {
        return;
    }
    let dir = project(GOOD_SAMPLE);
    let checked = tsc(dir.path());
    assert!(
        checked.status.success(),
        "tsc rejected the generated code or the sample:\n{}",
        text(&checked)
    );
}

#[test]
fn a_wrong_argument_type_does_not_compile() {
    if !node_available() {
        return;
    }
    let dir = project(BAD_SAMPLE);
    let checked = tsc(dir.path());
    let output = text(&checked);
    assert!(
        !checked.status.success(),
        "tsc accepted a number as an Id:\n{output}"
    );
    assert!(
        output.contains("sample.ts(6,")
            && output.contains("Type 'number' is not assignable to type 'Id<\"incidents\">'"),
        "tsc failed for another reason:\n{output}"
    );
}

#[test]
fn check_passes_on_fresh_output_and_fails_after_an_edit() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("_generated");
    let out_arg = out.to_str().unwrap();
    let written = codegen(&["--out", out_arg]);
    assert!(written.status.success(), "{}", text(&written));
    for name in ["api.d.ts", "api.js", "dataModel.d.ts"] {
        let contents = std::fs::read_to_string(out.join(name)).unwrap();
        assert!(
            contents.contains("Generated by `supportsignal codegen`"),
            "{name}"
        );
    }

    let fresh = codegen(&["--out", out_arg, "--check"]);
    assert!(fresh.status.success(), "{}", text(&fresh));

    let api = out.join("api.d.ts");
    let mut edited = std::fs::read_to_string(&api).unwrap();
    edited.push_str("// a hand edit\n");
    std::fs::write(&api, edited).unwrap();
    std::fs::remove_file(out.join("dataModel.d.ts")).unwrap();
    let stale = codegen(&["--out", out_arg, "--check"]);
    let output = text(&stale);
    assert!(
        !stale.status.success(),
        "--check passed on edited files:\n{output}"
    );
    assert!(output.contains("api.d.ts differs"), "{output}");
    assert!(output.contains("dataModel.d.ts is missing"), "{output}");
    assert!(
        !output.contains("api.js"),
        "api.js was not edited:\n{output}"
    );

    // Writing again makes it current, and leaves the same bytes as the first time.
    let rewritten = codegen(&["--out", out_arg]);
    assert!(rewritten.status.success(), "{}", text(&rewritten));
    let again = codegen(&["--out", out_arg, "--check"]);
    assert!(again.status.success(), "{}", text(&again));
}
