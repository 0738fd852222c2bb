//! Who may hand out which role. Nobody grants a role above their own, and company admins grant only
//! the company roles (the reference let a company admin grant demo_admin, which carries
//! manage_all_companies: a way out of the tenant).

use functions::{FnResult, FunctionError};

use crate::identity::Role;

/// The roles that belong to a company; the only ones an invitation can carry.
pub const COMPANY_ROLES: [Role; 3] = [Role::CompanyAdmin, Role::TeamLead, Role::FrontlineWorker];

/// Refuses unless `actor` may give someone `role`. `field` names the argument in the error.
pub fn require_grantable(actor: Role, role: Role, field: &str) -> FnResult<()> {
    if actor < Role::DemoAdmin && !COMPANY_ROLES.contains(&role) {
        return Err(FunctionError::field(
            functions::ErrorCode::Forbidden,
            field,
            "Company admins cannot assign system or demo administrator roles",
        ));
    }
    if role > actor {
        return Err(FunctionError::field(
            functions::ErrorCode::Forbidden,
            field,
            "You cannot assign a role above your own",
        ));
    }
    Ok(())
}

/// Refuses unless `actor` may change or delete a user who holds `target`: never someone above them.
pub fn require_manageable(actor: Role, target: Role) -> FnResult<()> {
    if target > actor {
        return Err(FunctionError::forbidden(
            "You cannot manage a user whose role is above your own",
        ));
    }
    Ok(())
}

/// A role argument; unknown names are a validation error on `field`.
pub fn parse(field: &str, raw: &str) -> FnResult<Role> {
    Role::parse(raw).ok_or_else(|| FunctionError::validation(field, format!("Unknown role: {raw}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn company_admins_grant_only_company_roles() {
        for role in COMPANY_ROLES {
            assert!(require_grantable(Role::CompanyAdmin, role, "role").is_ok());
        }
        for role in [Role::DemoAdmin, Role::SystemAdmin] {
            assert!(require_grantable(Role::CompanyAdmin, role, "role").is_err());
        }
    }

    #[test]
    fn nobody_grants_above_their_own_role() {
        assert!(require_grantable(Role::DemoAdmin, Role::SystemAdmin, "role").is_err());
        assert!(require_grantable(Role::DemoAdmin, Role::DemoAdmin, "role").is_ok());
        assert!(require_grantable(Role::TeamLead, Role::CompanyAdmin, "role").is_err());
        for role in Role::ALL {
            assert!(require_grantable(Role::SystemAdmin, role, "role").is_ok());
        }
        assert!(require_manageable(Role::CompanyAdmin, Role::SystemAdmin).is_err());
        assert!(require_manageable(Role::CompanyAdmin, Role::CompanyAdmin).is_ok());
    }
}
