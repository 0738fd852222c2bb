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

    /// The name people see (the web app's dashboard and permission tester).
    pub fn label(self) -> &'static str {
        use Permission::*;
        match self {
            CreateIncident => "Create Incidents",
            ViewMyIncidents => "View My Incidents",
            EditOwnIncidentCapture => "Edit Own Incidents",
            ViewAllCompanyIncidents => "View Company Incidents",
            PerformAnalysis => "Perform Analysis",
            ViewUserProfiles => "View User Profiles",
            ManageUsers => "Manage Users",
            InviteUsers => "Invite Users",
            CompanyConfiguration => "Company Configuration",
            ManageCompany => "Manage Company",
            ViewAuditLogs => "View Audit Logs",
            ManageAllCompanies => "Manage All Companies",
            SampleData => "Sample Data",
            SystemConfiguration => "System Configuration",
            ViewSecurityLogs => "View Security Logs",
            ImpersonateUsers => "Impersonate Users",
        }
    }

    /// One line on what the permission allows.
    pub fn description(self) -> &'static str {
        use Permission::*;
        match self {
            CreateIncident => "Start new incident reports",
            ViewMyIncidents => "See the incidents you reported",
            EditOwnIncidentCapture => "Change the capture of incidents you reported",
            ViewAllCompanyIncidents => "See every incident reported in your company",
            PerformAnalysis => "Analyse submitted incidents and record the findings",
            ViewUserProfiles => "See the profiles of the people in your company",
            ManageUsers => "Change the roles and accounts of the people in your company",
            InviteUsers => "Invite new people to join your company",
            CompanyConfiguration => "Change your company's settings",
            ManageCompany => "Edit your company's details, sites and participants",
            ViewAuditLogs => "Read the record of changes to people and companies",
            ManageAllCompanies => "Create and administer every company on the platform",
            SampleData => "Create and clear demonstration data",
            SystemConfiguration => "Change settings that apply to the whole platform",
            ViewSecurityLogs => "Read sign-in and other security events",
            ImpersonateUsers => "Act as another user for support, with every action recorded",
        }
    }

    /// The group the permission is listed under.
    pub fn category(self) -> &'static str {
        use Permission::*;
        match self {
            CreateIncident
            | ViewMyIncidents
            | EditOwnIncidentCapture
            | ViewAllCompanyIncidents
            | PerformAnalysis => "Incident Management",
            ManageUsers | InviteUsers | ViewUserProfiles => "User Management",
            SystemConfiguration | CompanyConfiguration | ManageCompany | ManageAllCompanies => {
                "Configuration"
            }
            ViewAuditLogs | ViewSecurityLogs | ImpersonateUsers => "Security & Audit",
            SampleData => "Testing & Development",
        }
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
    fn every_permission_has_its_own_label() {
        let mut labels: Vec<&str> = Permission::ALL.iter().map(|p| p.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Permission::ALL.len());
        assert!(Permission::ALL.iter().all(|p| !p.description().is_empty()));
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
