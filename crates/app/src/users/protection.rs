//! What a viewer may do to a listed user, so the web app can grey out the actions the server would
//! refuse. The rules mirror `manage` (and `admin` for demotions); there is no "owner" account (the
//! reference tied protection to a hard-coded email).

use store::Document;
use values::Value;

use super::text_of;
use crate::args::object;
use crate::identity::{Permission, Role, Viewer};

/// `{isProtected, isOwner, protectionReason?, displayBadge, disableActions, isSelf}` for `user`.
/// `sole_company_admin`: the user is the only company admin of their company, whom neither a role
/// change nor a deletion may remove.
pub fn protection(viewer: &Viewer, user: &Document, sole_company_admin: bool) -> Value {
    let is_self = user.id == viewer.user_id;
    let role = Role::parse(text_of(user, "role"));
    let both: &[&str] = &["role_change", "delete"];
    let (disabled, reason): (&[&str], Option<&str>) = if is_self {
        (
            both,
            Some("You cannot change your own role or delete your own account"),
        )
    } else if !viewer.has(Permission::ManageUsers) {
        (both, Some("Your role cannot change or delete users"))
    } else if role.is_none_or(|r| r > viewer.role) {
        (both, Some("This user's role is above your own"))
    } else if sole_company_admin {
        (both, Some("A company must keep at least one company admin"))
    } else if role == Some(Role::SystemAdmin) && text_of(user, "company_id").is_empty() {
        // Demotion leads to a company role, which needs a company this user does not have.
        (
            &["role_change"],
            Some("This system administrator belongs to no company, so cannot take a company role"),
        )
    } else {
        (&[], None)
    };
    object([
        ("isProtected", Some(Value::from(!disabled.is_empty()))),
        ("isOwner", Some(Value::from(false))),
        ("protectionReason", reason.map(Value::from)),
        ("displayBadge", Some(Value::from(false))),
        (
            "disableActions",
            Some(Value::Array(
                disabled.iter().map(|a| Value::from(*a)).collect(),
            )),
        ),
        ("isSelf", Some(Value::from(is_self))),
    ])
}
