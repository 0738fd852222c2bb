//! The five roles, the permissions, and the one matrix that connects them. Roles are ordered; each
//! holds every permission of the roles below it.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    FrontlineWorker,
    TeamLead,
    CompanyAdmin,
    DemoAdmin,
    SystemAdmin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::FrontlineWorker,
        Role::TeamLead,
        Role::CompanyAdmin,
        Role::DemoAdmin,
        Role::SystemAdmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::SystemAdmin => "system_admin",
            Role::DemoAdmin => "demo_admin",
            Role::CompanyAdmin => "company_admin",
            Role::TeamLead => "team_lead",
            Role::FrontlineWorker => "frontline_worker",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn has(self, permission: Permission) -> bool {
        self >= permission.lowest_role()
    }

    pub fn permissions(self) -> Vec<Permission> {
        Permission::ALL
            .into_iter()
            .filter(|p| self.has(*p))
            .collect()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    CreateIncident,
    ViewMyIncidents,
    EditOwnIncidentCapture,
    ViewAllCompanyIncidents,
    PerformAnalysis,
    ViewUserProfiles,
    ManageUsers,
    InviteUsers,
    CompanyConfiguration,
    ManageCompany,
    ViewAuditLogs,
    ManageAllCompanies,
    SampleData,
    SystemConfiguration,
    ViewSecurityLogs,
    ImpersonateUsers,
}

impl Permission {
    pub const ALL: [Permission; 16] = [
        Permission::CreateIncident,
        Permission::ViewMyIncidents,
        Permission::EditOwnIncidentCapture,
        Permission::ViewAllCompanyIncidents,
        Permission::PerformAnalysis,
        Permission::ViewUserProfiles,
        Permission::ManageUsers,
        Permission::InviteUsers,
        Permission::CompanyConfiguration,
        Permission::ManageCompany,
        Permission::ViewAuditLogs,
        Permission::ManageAllCompanies,
        Permission::SampleData,
        Permission::SystemConfiguration,
        Permission::ViewSecurityLogs,
        Permission::ImpersonateUsers,
    ];

    /// The permission matrix: the lowest role that holds each permission.
    pub fn lowest_role(self) -> Role {
        use Permission::*;
        match self {
            CreateIncident | ViewMyIncidents | EditOwnIncidentCapture => Role::FrontlineWorker,
            ViewAllCompanyIncidents | PerformAnalysis | ViewUserProfiles => Role::TeamLead,
            ManageUsers | InviteUsers | CompanyConfiguration | ManageCompany | ViewAuditLogs => {
                Role::CompanyAdmin
            }
            ManageAllCompanies | SampleData => Role::DemoAdmin,
            SystemConfiguration | ViewSecurityLogs | ImpersonateUsers => Role::SystemAdmin,
        }
    }

    pub fn as_str(self) -> &'static str {
        use Permission::*;
        match self {
            CreateIncident => "create_incident",
            ViewMyIncidents => "view_my_incidents",
            EditOwnIncidentCapture => "edit_own_incident_capture",
            ViewAllCompanyIncidents => "view_all_company_incidents",
            PerformAnalysis => "perform_analysis",
            ViewUserProfiles => "view_user_profiles",
            ManageUsers => "manage_users",
            InviteUsers => "invite_users",
            CompanyConfiguration => "company_configuration",
            ManageCompany => "manage_company",
            ViewAuditLogs => "view_audit_logs",
            ManageAllCompanies => "manage_all_companies",
            SampleData => "sample_data",
            SystemConfiguration => "system_configuration",
            ViewSecurityLogs => "view_security_logs",
            ImpersonateUsers => "impersonate_users",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_matches_the_reference_table() {
        let expect = |role: Role, names: &[&str]| {
            let mut got: Vec<&str> = role
                .permissions()
                .into_iter()
                .map(Permission::as_str)
                .collect();
            let mut want = names.to_vec();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "{role}");
        };
        let frontline = [
            "create_incident",
            "view_my_incidents",
            "edit_own_incident_capture",
        ];
        let team_lead = [
            &frontline[..],
            &[
                "view_all_company_incidents",
                "perform_analysis",
                "view_user_profiles",
            ],
        ]
        .concat();
        let company_admin = [
            &team_lead[..],
            &[
                "manage_users",
                "invite_users",
                "company_configuration",
                "manage_company",
                "view_audit_logs",
            ],
        ]
        .concat();
        let demo_admin = [&company_admin[..], &["manage_all_companies", "sample_data"]].concat();
        let system_admin = [
            &demo_admin[..],
            &[
                "system_configuration",
                "view_security_logs",
                "impersonate_users",
            ],
        ]
        .concat();
        expect(Role::FrontlineWorker, &frontline);
        expect(Role::TeamLead, &team_lead);
        expect(Role::CompanyAdmin, &company_admin);
        expect(Role::DemoAdmin, &demo_admin);
        expect(Role::SystemAdmin, &system_admin);
    }

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
        }
        assert_eq!(Role::parse("owner"), None);
    }
}
