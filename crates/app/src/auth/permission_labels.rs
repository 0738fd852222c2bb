//! What the permissions are called: `permissions:getTestablePermissions` (every permission, for the
//! dashboard's permission tester) and `permissions:getRolePermissionLabels` (a role's permissions by
//! name). The keys come from `Permission::ALL`, so a new permission shows up here by itself.

use functions::{FnResult, FunctionError, QueryCtx};
use serde::{Deserialize, Serialize};
use values::Typed;

use crate::args::SessionArgs;
use crate::identity::{require_session, Permission, Role};

#[derive(Serialize, Typed)]
pub struct PermissionEntry {
    key: String,
    label: String,
    description: String,
    category: String,
    /// Present (and true) only in the tester's list.
    testable: Option<bool>,
}

fn entry(permission: Permission, testable: bool) -> PermissionEntry {
    PermissionEntry {
        key: permission.as_str().into(),
        label: permission.label().into(),
        description: permission.description().into(),
        category: permission.category().into(),
        testable: testable.then_some(true),
    }
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Testable {
    permissions: Vec<PermissionEntry>,
    correlation_id: String,
}

/// `permissions:getTestablePermissions`: static, so it needs no session (the web app sends none).
/// Sorted by category, then label.
pub fn testable(ctx: &mut QueryCtx<'_>, _args: SessionArgs) -> FnResult<Testable> {
    let mut all = Permission::ALL.to_vec();
    all.sort_by_key(|p| (p.category(), p.label()));
    Ok(Testable {
        permissions: all.into_iter().map(|p| entry(p, true)).collect(),
        correlation_id: ctx.request_id.as_str().to_string(),
    })
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct RoleArgs {
    role: Option<String>,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct RoleLabels {
    role: String,
    permissions: Vec<String>,
    permission_details: Vec<PermissionEntry>,
    correlation_id: String,
}

/// `permissions:getRolePermissionLabels`: the permissions of `role` (the caller's own by default)
/// by label, sorted, with their registry entries. The matrix is no secret, but the reference asks
/// for a session and the dashboard always has one.
pub fn role_labels(ctx: &mut QueryCtx<'_>, args: RoleArgs) -> FnResult<RoleLabels> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    let role = match args.role.as_deref() {
        Some(name) => Role::parse(name)
            .ok_or_else(|| FunctionError::validation("role", format!("Invalid role: {name}")))?,
        None => viewer.role,
    };
    let mut permissions = role.permissions();
    permissions.sort_by_key(|p| p.label());
    Ok(RoleLabels {
        role: role.as_str().into(),
        permissions: permissions.iter().map(|p| p.label().to_string()).collect(),
        permission_details: permissions.iter().map(|p| entry(*p, false)).collect(),
        correlation_id: ctx.request_id.as_str().to_string(),
    })
}
