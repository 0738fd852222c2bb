//! `supportsignal codegen`: the typed client code a Convex app imports from `convex/_generated`,
//! written from the application's registry and tables (no server or database needed).

use std::path::Path;

use anyhow::{bail, Context};
use functions::{FunctionSpec, Visibility};

mod typescript;

/// The files for the application's public functions and tables, in name order.
pub fn files() -> anyhow::Result<Vec<(String, String)>> {
    // A fixed configuration, not the environment's: the set of functions and their validators do
    // not depend on it, and the output must be the same wherever it is generated.
    let config = config::Config::from_env(config::Overrides::default(), |_| None)?;
    let registry = app::registry(&config);
    let public: Vec<&FunctionSpec> = registry
        .specs()
        .filter(|spec| spec.visibility == Visibility::Public)
        .collect();
    typescript::files(&public, &app::schema())
}

/// Writes the files into `out` (created if missing), or with `check` only compares them with
/// what is there and fails naming every file that differs.
pub fn run(out: &Path, check: bool) -> anyhow::Result<()> {
    let files = files()?;
    if check {
        let mut stale = Vec::new();
        for (name, contents) in &files {
            let path = out.join(name);
            match std::fs::read_to_string(&path) {
                Ok(existing) if existing == *contents => {}
                Ok(_) => stale.push(format!("{} differs", path.display())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    stale.push(format!("{} is missing", path.display()))
                }
                Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
            }
        }
        if !stale.is_empty() {
            bail!(
                "the generated code is not current:\n  {}\nrun `supportsignal codegen --out {}` and commit the result",
                stale.join("\n  "),
                out.display()
            );
        }
        println!("{} is current ({} files)", out.display(), files.len());
        return Ok(());
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (name, contents) in &files {
        let path = out.join(name);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("wrote {} files to {}", files.len(), out.display());
    Ok(())
}
