//! Function paths (`incidents:create`, `users/invite:sendInvitation`) and their canonical form:
//! a `.js` suffix on the module is dropped and a missing `:name` means `default` (protocol §A.6).

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FunctionPath {
    module: String,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid function path {path:?}: {reason}")]
pub struct PathError {
    pub path: String,
    pub reason: &'static str,
}

const MAX_COMPONENT: usize = 64;

fn check_component(c: &str) -> Result<(), &'static str> {
    if c.is_empty() {
        return Err("empty path component");
    }
    if c.len() > MAX_COMPONENT {
        return Err("path component longer than 64 characters");
    }
    if !c
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    {
        return Err("only letters, digits, '_' and '.' are allowed in path components");
    }
    if !c.bytes().any(|b| b.is_ascii_alphanumeric()) {
        return Err("path component needs at least one letter or digit");
    }
    Ok(())
}

impl FunctionPath {
    pub fn parse(raw: &str) -> Result<FunctionPath, PathError> {
        let err = |reason| PathError {
            path: raw.to_string(),
            reason,
        };
        let (module, name) = match raw.rsplit_once(':') {
            Some((m, n)) => (m, n),
            None => (raw, "default"),
        };
        let module = module.strip_suffix(".js").unwrap_or(module);
        if module.is_empty() {
            return Err(err("missing module"));
        }
        for component in module.split('/') {
            check_component(component).map_err(err)?;
        }
        check_component(name).map_err(err)?;
        if name.contains('.') {
            return Err(err("function names cannot contain '.'"));
        }
        Ok(FunctionPath {
            module: module.to_string(),
            name: name.to_string(),
        })
    }

    /// `/api/run/messages/list` → `messages:list` (the last segment is the function name).
    pub fn from_run_route(route: &str) -> Result<FunctionPath, PathError> {
        let route = route.trim_matches('/');
        match route.rsplit_once('/') {
            Some((module, name)) => FunctionPath::parse(&format!("{module}:{name}")),
            None => Err(PathError {
                path: route.to_string(),
                reason: "expected /api/run/<module>/<function>",
            }),
        }
    }

    pub fn module(&self) -> &str {
        &self.module
    }
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for FunctionPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.module, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        FunctionPath::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalises_js_suffix_and_default() {
        assert_eq!(canon("incidents:create"), "incidents:create");
        assert_eq!(canon("incidents.js:create"), "incidents:create");
        assert_eq!(
            canon("users/invite:sendInvitation"),
            "users/invite:sendInvitation"
        );
        assert_eq!(
            canon("users/invite.js:sendInvitation"),
            "users/invite:sendInvitation"
        );
        assert_eq!(canon("messages"), "messages:default");
        assert_eq!(canon("messages:default"), "messages:default");
    }

    #[test]
    fn slash_path_is_a_module_not_a_function() {
        assert_eq!(canon("incidents/create"), "incidents/create:default");
    }

    #[test]
    fn run_route_uses_last_segment_as_function() {
        assert_eq!(
            FunctionPath::from_run_route("messages/list")
                .unwrap()
                .to_string(),
            "messages:list"
        );
        assert_eq!(
            FunctionPath::from_run_route("/a/b/c").unwrap().to_string(),
            "a/b:c"
        );
        assert!(FunctionPath::from_run_route("messages").is_err());
    }

    #[test]
    fn rejects_bad_paths() {
        for bad in [
            "",
            ":x",
            "a:",
            "a b:c",
            "a:b:c",
            "__:x",
            "a//b:c",
            &format!("{}:x", "m".repeat(65)),
            "a:b.c",
        ] {
            assert!(
                FunctionPath::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }
}
