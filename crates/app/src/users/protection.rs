//! What a viewer may do to a listed user, so the web app can grey out the actions the server would
//! refuse. The rules mirror `manage` (and `admin` for demotions); there is no "owner" account (the
//! reference tied protection to a hard-coded email).

use serde::Serialize;
use store::Document;
use values::Typed;

use super::text_of;
use crate::identity::{Permission, Role, Viewer};

/// What the viewer may not do to a listed user, and why.
#[derive(Clone, Debug, Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Protection {
    is_protected: bool,
    is_owner: bool,
    protection_reason: Option<String>,
    display_badge: bool,
    disable_actions: Vec<String>,
    is_self: bool,
}

/// `{isProtected, isOwner, protectionReason?, displayBadge, disableActions, isSelf}` for `user`.
/// `sole_company_admin`: the user is the only company admin of their company, whom neither a role
/// change nor a deletion may remove.
pub fn protection(viewer: &Viewer, user: &Document, sole_company_admin: bool) -> Protection {
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
    Protection {
        is_protected: !disabled.is_empty(),
        is_owner: false,
        protection_reason: reason.map(str::to_string),
        display_badge: false,
        disable_actions: disabled.iter().map(|a| a.to_string()).collect(),
        is_self,
    }
}
