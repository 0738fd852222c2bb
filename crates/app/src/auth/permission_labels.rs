//! What the permissions are called: `permissions:getTestablePermissions` (every permission, for the
//! dashboard's permission tester) and `permissions:getRolePermissionLabels` (a role's permissions by
//! name). The keys come from `Permission::ALL`, so a new permission shows up here by itself.

use functions::{FnResult, FunctionError, QueryCtx};
use values::{Object, Value};

use crate::args::{object, opt_text};
use crate::identity::{require_session, Permission, Role};

fn entry(permission: Permission, testable: bool) -> Value {
    object([
        ("key", Some(Value::from(permission.as_str()))),
        ("label", Some(Value::from(permission.label()))),
        ("description", Some(Value::from(permission.description()))),
        ("category", Some(Value::from(permission.category()))),
        ("testable", testable.then(|| Value::from(true))),
    ])
}

/// `permissions:getTestablePermissions`: static, so it needs no session (the web app sends none).
/// Sorted by category, then label.
pub fn testable(ctx: &mut QueryCtx<'_>, _args: Object) -> FnResult {
    let mut all = Permission::ALL.to_vec();
    all.sort_by_key(|p| (p.category(), p.label()));
    Ok(object([
        (
            "permissions",
            Some(Value::Array(
                all.into_iter().map(|p| entry(p, true)).collect(),
            )),
        ),
        ("correlationId", Some(Value::from(ctx.request_id.as_str()))),
    ]))
}

/// `permissions:getRolePermissionLabels`: the permissions of `role` (the caller's own by default)
/// by label, sorted, with their registry entries. The matrix is no secret, but the reference asks
/// for a session and the dashboard always has one.
pub fn role_labels(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    let role = match opt_text(&args, "role") {
        Some(name) => Role::parse(name)
            .ok_or_else(|| FunctionError::validation("role", format!("Invalid role: {name}")))?,
        None => viewer.role,
    };
    let mut permissions = role.permissions();
    permissions.sort_by_key(|p| p.label());
    Ok(object([
        ("role", Some(Value::from(role.as_str()))),
        (
            "permissions",
            Some(Value::Array(
                permissions.iter().map(|p| Value::from(p.label())).collect(),
            )),
        ),
        (
            "permissionDetails",
            Some(Value::Array(
                permissions.iter().map(|p| entry(*p, false)).collect(),
            )),
        ),
        ("correlationId", Some(Value::from(ctx.request_id.as_str()))),
    ]))
}
