//! The table: one row per public function (a function may have more than one), each with the rule
//! that decides who may call it, derived from the permission matrix (`Role::has`) and the
//! function's documented rule, and arguments chosen so an allowed call leaves the fixture intact
//! (it fails after the permission check, or changes nothing, or uses up a fresh resource).

use app::identity::Permission::{self, *};
use serde_json::{json, Value as Json};

use crate::fixture::{Caller, Fixture, Setup, Tenant, TenantIds};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Success, or a user error other than FORBIDDEN, UNAUTHENTICATED and NOT_FOUND.
    Allowed,
    /// FORBIDDEN (or UNAUTHENTICATED for an anonymous caller).
    Forbidden,
    /// NOT_FOUND or null, exactly as for a missing id.
    Hidden,
}
use Expect::*;

/// What a row's argument builder sees.
pub struct Cx<'a> {
    pub fx: &'a Fixture,
    /// The resources of the company the call targets.
    pub t: &'a TenantIds,
    /// The caller's session token (the runner also sends it as `sessionToken`).
    pub token: Option<&'a str>,
    /// What the row's `Setup` made.
    pub fresh: Option<&'a str>,
}

pub struct Row {
    pub path: &'static str,
    /// The rule, in words, for the mismatch report.
    pub rule: &'static str,
    /// Whether the function takes a company or a company-owned resource (run for A and B).
    pub tenanted: bool,
    /// Whether an allowed answer must be non-null (a function that answers null for what it hides).
    pub null_hides: bool,
    pub setup: Setup,
    pub args: fn(&Cx) -> Json,
    pub expect: fn(Caller, Tenant) -> Expect,
}

fn row(
    path: &'static str,
    rule: &'static str,
    expect: fn(Caller, Tenant) -> Expect,
    args: fn(&Cx) -> Json,
) -> Row {
    Row {
        path,
        rule,
        tenanted: false,
        null_hides: false,
        setup: Setup::None,
        args,
        expect,
    }
}

impl Row {
    fn tenanted(mut self) -> Row {
        self.tenanted = true;
        self
    }
    fn null_hides(mut self) -> Row {
        self.null_hides = true;
        self
    }
    fn setup(mut self, setup: Setup) -> Row {
        self.setup = setup;
        self
    }
}

// ---- rules ----

fn public(_: Caller, _: Tenant) -> Expect {
    Allowed
}

fn signed_in(c: Caller, _: Tenant) -> Expect {
    if c.role().is_some() {
        Allowed
    } else {
        Forbidden
    }
}

fn perm(c: Caller, p: Permission) -> Expect {
    match c.role() {
        Some(role) if role.has(p) => Allowed,
        _ => Forbidden,
    }
}

fn system_admin_only(c: Caller, _: Tenant) -> Expect {
    if c == Caller::SystemAdmin {
        Allowed
    } else {
        Forbidden
    }
}

/// Functions of the caller's own company only: `p`, a company, and another company's documents
/// answer like missing ones.
fn own_company(c: Caller, t: Tenant, p: Permission) -> Expect {
    if perm(c, p) == Forbidden || !c.has_company() {
        return Forbidden;
    }
    if t == Tenant::Own {
        Allowed
    } else {
        Hidden
    }
}

/// `p` for the caller's own company, any company with `manage_all_companies`; another company
/// answers `foreign` (Hidden for its documents; Forbidden where the caller names a company to act
/// in and a missing company is refused the same way).
fn own_or_all(c: Caller, t: Tenant, p: Permission, foreign: Expect) -> Expect {
    if perm(c, p) == Forbidden {
        return Forbidden;
    }
    if perm(c, ManageAllCompanies) == Allowed || (c.has_company() && t == Tenant::Own) {
        Allowed
    } else {
        foreign
    }
}

/// Lists of the caller's own company: `p`; callers without a company get the empty list (the web
/// app's incident pages render for system administrators), so they are allowed too.
fn own_company_list(c: Caller, _: Tenant, p: Permission) -> Expect {
    perm(c, p)
}

/// The capture of the fixture's incidents is their frontline worker's: only the creator edits it;
/// colleagues are refused, other companies' incidents are hidden.
fn capture_owner(c: Caller, t: Tenant) -> Expect {
    match own_company(c, t, EditOwnIncidentCapture) {
        Allowed if c != Caller::FrontlineWorker => Forbidden,
        other => other,
    }
}

/// Read by the creator (the frontline worker) and by everyone with view_all_company_incidents in
/// the company.
fn incident_reader(c: Caller, t: Tenant) -> Expect {
    own_company(c, t, ViewMyIncidents)
}

/// An analysis is read by `perform_analysis` holders in the company and, once completed, by the
/// incident's creator; the frontline worker is refused for their own company's incident before
/// completion, and another company's incident is hidden from them as from everyone.
fn analysis_reader(c: Caller, t: Tenant) -> Expect {
    match (c, t) {
        (Caller::FrontlineWorker, Tenant::Own) => Forbidden,
        (Caller::FrontlineWorker, _) => Hidden,
        _ => own_company(c, t, PerformAnalysis),
    }
}

// ---- the table ----

pub fn rows() -> Vec<Row> {
    vec![
        // audit
        row(
            "audit:listEvents",
            "view_audit_logs; another company's log needs view_security_logs",
            |c, t| match perm(c, ViewAuditLogs) {
                Forbidden => Forbidden,
                _ if perm(c, ViewSecurityLogs) == Allowed => Allowed,
                _ if c.has_company() && t == Tenant::Own => Allowed,
                _ => Forbidden,
            },
            |cx| json!({"companyId": cx.t.company, "limit": 1.0}),
        )
        .tenanted(),
        // auth: sign-in and the current user
        row(
            "auth:changePassword",
            "signed in",
            signed_in,
            |_| json!({"currentPassword": crate::seed::PW, "newPassword": "weak"}),
        ),
        row("auth:getCurrentUser", "public", public, |_| json!({})),
        row(
            "auth:verifyOwnerAccess",
            "public, never throws (hasAccess for system admins only)",
            public,
            |_| json!({}),
        ),
        row(
            "email:sendPasswordResetEmail",
            "system admin only (not a relay: a fresh link from the normal flow)",
            system_admin_only,
            |_| json!({"email": "nobody@example.org", "token": "chosen"}),
        ),
        row(
            "permissions:getTestablePermissions",
            "public (static)",
            public,
            |_| json!({}),
        ),
        row(
            "permissions:getRolePermissionLabels",
            "signed in",
            signed_in,
            |_| json!({"role": "team_lead"}),
        ),
        row("auth:verifySession", "public", public, |_| json!({})),
        row("users:getCurrent", "public", public, |_| json!({})),
        row("users:getCurrentUser", "public", public, |_| json!({})),
        row(
            "permissions:getUserPermissions",
            "public, never throws; answers for the caller whatever companyId says",
            public,
            |cx| json!({"companyId": cx.t.company}),
        )
        .tenanted(),
        row("auth:getGitHubOAuthUrl", "public", public, |_| json!({})),
        row("auth:getGoogleOAuthUrl", "public", public, |_| json!({})),
        row(
            "auth:githubOAuthLogin",
            "public",
            public,
            |_| json!({"code": "code"}),
        ),
        row(
            "auth:googleOAuthLogin",
            "public",
            public,
            |_| json!({"code": "code"}),
        ),
        row(
            "auth:loginUser",
            "public",
            public,
            |cx| json!({"email": cx.fx.sign_in_email, "password": crate::seed::PW}),
        ),
        row(
            "auth:logoutUser",
            "public (signs out the session presented)",
            public,
            |cx| match cx.fresh {
                Some(spare) => json!({"sessionToken": spare}),
                None => json!({}),
            },
        )
        .setup(Setup::SpareSession),
        row(
            "auth:registerUser",
            "public",
            public,
            |_| json!({"name": "New", "email": "not-an-email", "password": crate::seed::PW}),
        ),
        row(
            "auth:registerUser",
            "nobody joins a company by registering (contract §12.1)",
            |_, _| Forbidden,
            |cx| {
                json!({"name": "New", "email": "joiner@example.org", "password": crate::seed::PW,
                       "company_id": cx.t.company})
            },
        )
        .tenanted(),
        row(
            "auth:requestPasswordReset",
            "public",
            public,
            |_| json!({"email": "not-an-email"}),
        ),
        row(
            "auth:resetPassword",
            "public",
            public,
            |_| json!({"token": "unknown", "newPassword": "weak"}),
        ),
        row(
            "sessionManagement:updateWorkflowState",
            "signed in (own session)",
            signed_in,
            |_| json!({"workflowState": {"step": 1.0}}),
        ),
        row(
            "sessionManagement:recoverState",
            "signed in (own session)",
            signed_in,
            |_| json!({}),
        ),
        // companies
        row(
            "companies:createCompany",
            "system_admin",
            system_admin_only,
            |_| {
                json!({"name": "", "contactEmail": "c@new.org", "adminEmail": "a@new.org",
                       "adminName": "Admin"})
            },
        ),
        row(
            "companies/getCompany:getCurrentUserCompany",
            "signed in; a user without a company has none to see (null)",
            |c, _| match c.role() {
                None => Forbidden,
                Some(_) if c.has_company() => Allowed,
                Some(_) => Hidden,
            },
            |_| json!({}),
        ),
        row(
            "companies/getCompanyDetails:default",
            "manage_company for the own company, manage_all_companies for any; else null",
            |c, t| own_or_all(c, t, ManageCompany, Hidden),
            |cx| json!({"companyId": cx.t.company}),
        )
        .tenanted()
        .null_hides(),
        row(
            "companies/admin:listAllCompanies",
            "manage_all_companies",
            |c, _| perm(c, ManageAllCompanies),
            |_| json!({}),
        ),
        row(
            "companies/admin:getCompanyForEdit",
            "manage_all_companies",
            |c, _| perm(c, ManageAllCompanies),
            |cx| json!({"companyId": cx.t.company}),
        )
        .tenanted(),
        row(
            "companies/admin:updateCompany",
            "manage_all_companies",
            |c, _| perm(c, ManageAllCompanies),
            // No field changes: only `updated_at` moves.
            |cx| json!({"companyId": cx.t.company, "updates": {}}),
        )
        .tenanted(),
        row(
            "companies/admin:getSystemMetrics",
            "manage_all_companies",
            |c, _| perm(c, ManageAllCompanies),
            |_| json!({}),
        ),
        // The fixture's companies are not test companies: allowed callers get CONFLICT.
        row(
            "companies/admin:previewTestCompanyCleanup",
            "system_admin (demo admins may not delete companies)",
            system_admin_only,
            |cx| json!({"companyId": cx.t.company}),
        )
        .tenanted(),
        row(
            "companies/admin:executeTestCompanyCleanup",
            "system_admin (demo admins may not delete companies)",
            system_admin_only,
            |cx| json!({"companyId": cx.t.company}),
        )
        .tenanted(),
        row(
            "companies/updateCompany:updateCompany",
            "manage_company, own company (none to update without one)",
            |c, _| {
                if perm(c, ManageCompany) == Allowed && c.has_company() {
                    Allowed
                } else {
                    Forbidden
                }
            },
            // An invalid email: refused after the permission check, so nothing changes.
            |_| json!({"name": "Unchanged", "contact_email": "not-an-email"}),
        ),
        row(
            "exports:generateDatabaseExport",
            "system_admin",
            system_admin_only,
            |_| json!({}),
        ),
        // sites
        row(
            "sites/list:listCompanySites",
            "create_incident, own company ([] without a company)",
            |c, t| own_company_list(c, t, CreateIncident),
            |_| json!({}),
        ),
        row(
            "sites/admin:listSites",
            "company_configuration own company, manage_all_companies any",
            |c, t| own_or_all(c, t, CompanyConfiguration, Hidden),
            |cx| json!({"companyId": cx.t.company}),
        )
        .tenanted(),
        row(
            "sites/admin:createSite",
            "company_configuration own company, manage_all_companies any",
            |c, t| own_or_all(c, t, CompanyConfiguration, Hidden),
            |cx| json!({"companyId": cx.t.company, "name": "x"}),
        )
        .tenanted(),
        row(
            "sites/admin:updateSite",
            "company_configuration own company, manage_all_companies any",
            |c, t| own_or_all(c, t, CompanyConfiguration, Hidden),
            |cx| json!({"siteId": cx.t.site, "name": "x"}),
        )
        .tenanted(),
        row(
            "sites/admin:deleteSite",
            "company_configuration own company, manage_all_companies any (last site: CONFLICT)",
            |c, t| own_or_all(c, t, CompanyConfiguration, Hidden),
            |cx| json!({"siteId": cx.t.site}),
        )
        .tenanted(),
        // users
        row(
            "users:listCompanyUsers",
            "view_user_profiles, own company (empty without one, contract §12.1)",
            |c, _| perm(c, ViewUserProfiles),
            |_| json!({}),
        ),
        row(
            "adminUsers:listAllUsers",
            "system_admin",
            system_admin_only,
            |_| json!({}),
        ),
        row(
            "adminUsers:getUserStats",
            "system_admin",
            system_admin_only,
            |_| json!({}),
        ),
        row(
            "adminUsers:getCompanyList",
            "system_admin",
            system_admin_only,
            |_| json!({}),
        ),
        row(
            "adminUsers:demoteSystemAdmin",
            "system_admin",
            system_admin_only,
            // The frontline worker is no system administrator (CONFLICT), so nothing changes.
            |cx| json!({"userId": cx.t.frontline, "newRole": "team_lead"}),
        ),
        row(
            "users/listUsersForCompany:default",
            "system_admin",
            system_admin_only,
            |cx| json!({"companyId": cx.t.company}),
        )
        .tenanted(),
        row(
            "users:updateUserProfile",
            "signed in (own profile)",
            signed_in,
            |_| json!({"name": ""}),
        ),
        row(
            "users:createUser",
            "manage_users in the own company, manage_all_companies in any",
            |c, t| own_or_all(c, t, ManageUsers, Forbidden),
            |cx| {
                json!({"name": "", "email": "new@example.org", "role": "frontline_worker",
                       "companyId": cx.t.company})
            },
        )
        .tenanted(),
        row(
            "users:updateUser",
            "manage_users own company, manage_all_companies any",
            |c, t| own_or_all(c, t, ManageUsers, Hidden),
            |cx| json!({"userId": cx.t.frontline, "name": ""}),
        )
        .tenanted(),
        row(
            "users:updateRole",
            "manage_users own company, manage_all_companies any",
            |c, t| own_or_all(c, t, ManageUsers, Hidden),
            |cx| json!({"userId": cx.t.frontline, "newRole": "no_such_role"}),
        )
        .tenanted(),
        row(
            "users:deleteUser",
            "manage_users own company, manage_all_companies any",
            |c, t| own_or_all(c, t, ManageUsers, Hidden),
            |cx| json!({"userId": cx.fresh}),
        )
        .tenanted()
        .setup(Setup::VictimUser),
        // invitations
        row(
            "users/invite/sendUserInvitation:default",
            "invite_users for the own company, manage_all_companies any (contract: FORBIDDEN)",
            |c, t| own_or_all(c, t, InviteUsers, Forbidden),
            |cx| {
                json!({"email": "not-an-email", "role": "frontline_worker",
                       "companyId": cx.t.company})
            },
        )
        .tenanted(),
        row(
            "users/invite/listPendingInvitations:default",
            "invite_users for the own company, manage_all_companies any (contract: FORBIDDEN)",
            |c, t| own_or_all(c, t, InviteUsers, Forbidden),
            |cx| json!({"companyId": cx.t.company}),
        )
        .tenanted(),
        row(
            "users/invite/revokeInvitation:default",
            "invite_users own company, manage_all_companies any (revoked already: CONFLICT)",
            |c, t| own_or_all(c, t, InviteUsers, Hidden),
            |cx| json!({"invitationId": cx.t.invitation}),
        )
        .tenanted(),
        row(
            "users/invite/acceptInvitation:default",
            "public (the token is the credential)",
            public,
            |_| json!({"token": "unknown", "name": "", "password": crate::seed::PW}),
        ),
        // participants
        row(
            "participants/list:listParticipants",
            "create_incident, own company (empty without one, contract §12.1)",
            |c, _| perm(c, CreateIncident),
            |_| json!({}),
        ),
        row(
            "participants/search:searchParticipants",
            "create_incident, own company",
            |c, t| own_company(c, t, CreateIncident),
            |_| json!({}),
        ),
        row(
            "participants/getById:getParticipantById",
            "create_incident, own company",
            |c, t| own_company(c, t, CreateIncident),
            |cx| json!({"participantId": cx.t.participant}),
        )
        .tenanted(),
        row(
            "participants/create:createParticipant",
            "create_incident, own company; the site must be the company's",
            |c, t| own_company(c, t, CreateIncident),
            // Own company: the NDIS number is taken (CONFLICT). Another company: its site is hidden.
            |cx| {
                json!({"first_name": "Sam", "last_name": "Kay", "date_of_birth": "1980-01-01",
                       "ndis_number": cx.t.ndis, "support_level": "low", "site_id": cx.t.site})
            },
        )
        .tenanted(),
        row(
            "participants/update:updateParticipant",
            "create_incident, own company",
            |c, t| own_company(c, t, CreateIncident),
            |cx| json!({"participantId": cx.t.participant, "first_name": "Pat"}),
        )
        .tenanted(),
        row(
            "participants/updateStatus:updateParticipantStatus",
            "create_incident, own company",
            |c, t| own_company(c, t, CreateIncident),
            |cx| json!({"participantId": cx.t.participant, "status": "active"}),
        )
        .tenanted(),
        row(
            "participants/admin:deleteParticipant",
            "company_configuration own company, manage_all_companies any",
            |c, t| own_or_all(c, t, CompanyConfiguration, Hidden),
            |cx| json!({"participantId": cx.fresh}),
        )
        .tenanted()
        .setup(Setup::VictimParticipant),
        row(
            "participants/admin:listParticipants",
            "manage_all_companies",
            |c, _| perm(c, ManageAllCompanies),
            |cx| json!({"companyId": cx.t.company}),
        )
        .tenanted(),
        row(
            "participants/admin:getParticipantById",
            "manage_all_companies",
            |c, _| perm(c, ManageAllCompanies),
            |cx| json!({"participantId": cx.t.participant}),
        )
        .tenanted(),
        row(
            "participants/admin:createParticipant",
            "manage_all_companies",
            |c, _| perm(c, ManageAllCompanies),
            // The NDIS number is taken (CONFLICT), so nothing is created.
            |cx| {
                json!({"companyId": cx.t.company, "siteId": cx.t.site, "firstName": "Sam",
                       "lastName": "Kay", "dateOfBirth": "1980-01-01", "ndisNumber": cx.t.ndis,
                       "supportLevel": "low"})
            },
        )
        .tenanted(),
        row(
            "participants/admin:updateParticipant",
            "manage_all_companies",
            |c, _| perm(c, ManageAllCompanies),
            // An impossible date (VALIDATION), so nothing changes.
            |cx| json!({"participantId": cx.t.participant, "dateOfBirth": "1980-02-30"}),
        )
        .tenanted(),
        row(
            "participants/createSampleData:createSampleParticipants",
            "sample_data, own company",
            |c, _| own_company(c, Tenant::Own, SampleData),
            |_| json!({}),
        ),
        // incidents
        row(
            "incidents:create",
            "create_incident, own company; the site must be the company's",
            |c, t| own_company(c, t, CreateIncident),
            // Own company: the location is empty (VALIDATION). Another company: its site is hidden.
            |cx| {
                json!({"site_id": cx.t.site, "reporter_name": "Kim", "participant_name": "Pat",
                       "event_date_time": "2025-06-01T14:30", "location": ""})
            },
        )
        .tenanted(),
        row(
            "incidents:updateMetadata",
            "edit_own_incident_capture, the creator only",
            capture_owner,
            |cx| {
                json!({"incidentId": cx.t.incident, "reporter_name": "", "participant_name": "Pat",
                       "event_date_time": "2025-06-01T14:30", "location": "Kitchen"})
            },
        )
        .tenanted(),
        row(
            "incidents:getById",
            "the creator, or view_all_company_incidents in the company",
            incident_reader,
            |cx| json!({"id": cx.t.incident}),
        )
        .tenanted(),
        row(
            "incidents:getIncidentById",
            "the creator, or view_all_company_incidents; null for other companies",
            incident_reader,
            |cx| json!({"incident_id": cx.t.incident}),
        )
        .tenanted()
        .null_hides(),
        row(
            "incidents:getDraftIncident",
            "the creator, or view_all_company_incidents in the company",
            incident_reader,
            |cx| json!({"incidentId": cx.t.incident}),
        )
        .tenanted(),
        row(
            "incidents:getStatusOptions",
            "public (the labels of the status machine)",
            public,
            |_| json!({}),
        ),
        row(
            "incidents:updateStatus",
            "capture: the creator only (asking for the current status changes nothing)",
            capture_owner,
            |cx| json!({"id": cx.t.incident, "capture_status": "in_progress"}),
        )
        .tenanted(),
        row(
            "incidents:updateStatus",
            "analysis: perform_analysis in the company (refused before submission: CONFLICT)",
            |c, t| own_company(c, t, PerformAnalysis),
            |cx| json!({"id": cx.t.incident, "analysis_status": "in_progress"}),
        )
        .tenanted(),
        row(
            "incidents:updateWorkflowProgress",
            "edit_own_incident_capture, the creator only",
            capture_owner,
            |cx| json!({"incidentId": cx.t.incident, "current_step": 0.5}),
        )
        .tenanted(),
        row(
            "incidents:autoCompleteWorkflow",
            "the creator only (not submitted: CONFLICT)",
            capture_owner,
            |cx| json!({"incident_id": cx.t.incident}),
        )
        .tenanted(),
        row(
            "incidents:deleteIncident",
            "company_configuration own company, manage_all_companies any",
            |c, t| own_or_all(c, t, CompanyConfiguration, Hidden),
            |cx| json!({"id": cx.fresh, "reason": "authorization matrix"}),
        )
        .tenanted()
        .setup(Setup::VictimIncident),
        row(
            "incidents:getIncidentNarrative",
            "the creator, or view_all_company_incidents in the company; null without a token",
            |c, t| match c {
                Caller::Anonymous => Hidden,
                _ => incident_reader(c, t),
            },
            |cx| json!({"incident_id": cx.t.incident}),
        )
        .tenanted(),
        row(
            "incidents:getIncidentNarrativeByIncidentId",
            "the creator, or view_all_company_incidents in the company",
            incident_reader,
            |cx| json!({"incident_id": cx.t.incident}),
        )
        .tenanted(),
        row(
            "incidents_listing:getAllCompanyIncidents",
            "view_all_company_incidents, own company (empty without a company)",
            |c, t| own_company_list(c, t, ViewAllCompanyIncidents),
            |_| json!({}),
        ),
        row(
            "incidents_listing:getMyIncidents",
            "create_incident, own company (own incidents; empty without a company)",
            |c, t| own_company_list(c, t, CreateIncident),
            |_| json!({}),
        ),
        row(
            "incidents_listing:getIncidentCounts",
            "view_my_incidents, own company (company-wide with view_all_company_incidents; zeros \
             without a company)",
            |c, t| own_company_list(c, t, ViewMyIncidents),
            |_| json!({}),
        ),
        row(
            "incidents_listing:getMyIncompleteIncidents",
            "create_incident, own company (own incidents; empty without a company)",
            |c, t| own_company_list(c, t, CreateIncident),
            |_| json!({}),
        ),
        // narratives
        row(
            "narratives:create",
            "edit_own_incident_capture, the creator only (exists already: its id)",
            capture_owner,
            |cx| json!({"incident_id": cx.t.incident}),
        )
        .tenanted(),
        row(
            "narratives:update",
            "edit_own_incident_capture, the creator only (no phase given: VALIDATION)",
            capture_owner,
            |cx| json!({"incident_id": cx.t.incident}),
        )
        .tenanted(),
        row(
            "narratives:getByIncident",
            "the creator, or view_all_company_incidents in the company",
            incident_reader,
            |cx| json!({"incident_id": cx.t.incident}),
        )
        .tenanted(),
        row(
            "narratives:getByIncidentId",
            "the creator, or view_all_company_incidents in the company",
            incident_reader,
            |cx| json!({"incident_id": cx.t.incident}),
        )
        .tenanted(),
        row(
            "narratives:getConsolidated",
            "the creator, or view_all_company_incidents in the company",
            incident_reader,
            |cx| json!({"incident_id": cx.t.incident}),
        )
        .tenanted(),
        row(
            "narratives:getStatsByIncidentId",
            "the creator, or view_all_company_incidents in the company",
            incident_reader,
            |cx| json!({"incident_id": cx.t.incident}),
        )
        .tenanted(),
        // clarification questions and answers (capture: the creator; reading: incident readers)
        row(
            "aiClarification:generateClarificationQuestions",
            "edit_own_incident_capture, the creator only (blank narrative: VALIDATION)",
            capture_owner,
            |cx| {
                json!({"incident_id": cx.t.incident, "phase": "during_event",
                       "narrative_content": ""})
            },
        )
        .tenanted(),
        row(
            "aiClarification:generateAllClarificationQuestions",
            "edit_own_incident_capture, the creator only (blank phases: nothing generated)",
            capture_owner,
            |cx| {
                json!({"incident_id": cx.t.incident, "narrative": {"before_event": "",
                       "during_event": "", "end_event": "", "post_event": ""}})
            },
        )
        .tenanted(),
        row(
            "aiClarification:getClarificationQuestions",
            "the creator, or view_all_company_incidents in the company",
            incident_reader,
            |cx| json!({"incident_id": cx.t.incident}),
        )
        .tenanted(),
        row(
            "aiClarification:getClarificationAnswers",
            "the creator, or view_all_company_incidents in the company",
            incident_reader,
            |cx| json!({"incident_id": cx.t.incident, "phase": "before_event"}),
        )
        .tenanted(),
        row(
            "aiClarification:submitClarificationAnswer",
            "edit_own_incident_capture, the creator only (question of another phase: VALIDATION)",
            capture_owner,
            |cx| {
                json!({"incident_id": cx.t.incident, "question_id": "during_event_q1",
                       "phase": "before_event", "answer_text": "matrix"})
            },
        )
        .tenanted(),
        row(
            "aiClarification:generateMockAnswers",
            "sample_data, and the creator of the incident (no questions yet: VALIDATION)",
            |c, t| match perm(c, SampleData) {
                Forbidden => Forbidden,
                _ => capture_owner(c, t),
            },
            |cx| json!({"incident_id": cx.t.incident, "phase": "during_event"}),
        )
        .tenanted(),
        // enhancement, checklist and submission
        row(
            "aiEnhancement:enhanceNarrativePhase",
            "edit_own_incident_capture, the creator only (empty phase: VALIDATION)",
            capture_owner,
            |cx| json!({"incident_id": cx.t.incident, "phase": "during_event"}),
        )
        .tenanted(),
        // The reference's whole-incident form: a fresh incident, since the creator's call enhances.
        row(
            "aiEnhancement:enhanceIncidentNarrative",
            "edit_own_incident_capture, the creator only",
            capture_owner,
            |cx| json!({"incident_id": cx.fresh}),
        )
        .tenanted()
        .setup(Setup::VictimIncident),
        row(
            "aiEnhancement:updateEnhancedNarrative",
            "edit_own_incident_capture, the creator only (no phase: VALIDATION)",
            capture_owner,
            |cx| json!({"enhanced_narrative_id": cx.t.narrative, "user_edited_content": "Edited."}),
        )
        .tenanted(),
        row(
            "aiEnhancement:getEnhancedNarrative",
            "the creator, or view_all_company_incidents in the company (null before enhancement)",
            incident_reader,
            |cx| json!({"incident_id": cx.t.incident}),
        )
        .tenanted(),
        row(
            "aiEnhancement:validateWorkflowCompletion",
            "the creator, or view_all_company_incidents in the company",
            incident_reader,
            |cx| json!({"incident_id": cx.t.incident}),
        )
        .tenanted(),
        row(
            "aiEnhancement:submitIncidentForAnalysis",
            "edit_own_incident_capture, the creator only (incomplete checklist: CONFLICT)",
            capture_owner,
            |cx| json!({"incident_id": cx.t.incident}),
        )
        .tenanted(),
        // sample data for the capture wizard
        row(
            "incidents/createSampleData:fillIncidentWithSampleData",
            "sample_data, and the creator of the incident",
            |c, t| match perm(c, SampleData) {
                Forbidden => Forbidden,
                _ => capture_owner(c, t),
            },
            |cx| json!({"incidentId": cx.t.incident, "scenarioType": "injury"}),
        )
        .tenanted(),
        row(
            "incidents/createSampleData:generateRandomIncidentMetadata",
            "sample_data, own company (no participants: CONFLICT; changes nothing)",
            |c, t| own_company(c, t, SampleData),
            |_| json!({}),
        ),
        // workflow data (export and import of capture records)
        row(
            "workflowData:exportWorkflowData",
            "manage_all_companies (any company)",
            |c, _| perm(c, ManageAllCompanies),
            |cx| json!({"incident_id": cx.t.incident}),
        )
        .tenanted(),
        row(
            "workflowData:validateWorkflowData",
            "manage_all_companies",
            |c, _| perm(c, ManageAllCompanies),
            |_| json!({"workflow_data": {}}),
        ),
        row(
            "workflowData:importWorkflowData",
            "manage_all_companies, into any company (invalid data: success false)",
            |c, _| perm(c, ManageAllCompanies),
            |cx| json!({"workflow_data": {"format": "other"}, "company_id": cx.t.company}),
        )
        .tenanted(),
        // impersonation
        row(
            "impersonation:startImpersonation",
            "impersonate_users, from the admin's own session",
            |c, _| perm(c, ImpersonateUsers),
            |cx| {
                json!({"admin_session_token": cx.token.unwrap_or(""),
                       "target_user_email": cx.t.frontline_email, "reason": ""})
            },
        ),
        row(
            "impersonation:endImpersonation",
            "only the admin who started it; anyone else as for an unknown token",
            |c, _| match c {
                Caller::Anonymous => Forbidden,
                Caller::SystemAdmin => Allowed,
                _ => Hidden,
            },
            |cx| json!({"impersonation_token": cx.fx.impersonation}),
        ),
        row(
            "impersonation:getImpersonationStatus",
            "public (the token is the credential)",
            public,
            |cx| json!({"session_token": cx.token.unwrap_or("")}),
        ),
        row(
            "impersonation:searchUsersForImpersonation",
            "system admin by admin_session_token; no token answers [] (the page asks before it has one)",
            |c, t| match c {
                Caller::Anonymous => Allowed,
                _ => system_admin_only(c, t),
            },
            |cx| json!({"admin_session_token": cx.token.unwrap_or("")}),
        ),
        row(
            "impersonation:getActiveImpersonationSessions",
            "system admin by admin_session_token; no token answers []",
            |c, t| match c {
                Caller::Anonymous => Allowed,
                _ => system_admin_only(c, t),
            },
            |cx| json!({"admin_session_token": cx.token.unwrap_or("")}),
        ),
        // After endImpersonation: an allowed call ends the fixture's impersonation.
        row(
            "impersonation:emergencyTerminateAllSessions",
            "system admin by admin_session_token",
            system_admin_only,
            |cx| json!({"admin_session_token": cx.token.unwrap_or("")}),
        ),
        // prompt templates (platform-wide; ids that are not prompt ids fail validation after the
        // permission check, so an allowed call changes nothing)
        row(
            "promptManager:getActivePrompt",
            "public (no session), as in the contract",
            public,
            |_| json!({"prompt_name": "generate_mock_answers"}),
        ),
        row(
            "promptManager:processTemplateWithValidationQuery",
            "public (no session), like getActivePrompt",
            public,
            |_| json!({"prompt_name": "generate_mock_answers", "variables": {}}),
        ),
        row(
            "promptManager:listAllPrompts",
            "create_incident, as in the contract",
            |c, _| perm(c, CreateIncident),
            |_| json!({}),
        ),
        row(
            "promptManager:getPrompt",
            "create_incident (what listAllPrompts shows)",
            |c, _| perm(c, CreateIncident),
            |_| json!({"prompt_id": "not-a-prompt-id"}),
        ),
        row(
            "promptManager:listPromptVersions",
            "create_incident (what listAllPrompts shows)",
            |c, _| perm(c, CreateIncident),
            |_| json!({"prompt_name": "generate_mock_answers"}),
        ),
        row(
            "promptManager:listPromptGroups",
            "create_incident (what listAllPrompts shows)",
            |c, _| perm(c, CreateIncident),
            |_| json!({}),
        ),
        row(
            "promptManager:seedPromptTemplates",
            "sample_data, as in the contract",
            |c, _| perm(c, SampleData),
            |_| json!({}),
        ),
        row(
            "promptManager:resetAndSeedPrompts",
            "sample_data, as in the contract",
            |c, _| perm(c, SampleData),
            |_| json!({}),
        ),
        row(
            "promptManager:updatePromptTemplate",
            "sample_data, as in the contract",
            |c, _| perm(c, SampleData),
            |_| json!({"prompt_name": "not a name!", "new_template": "x"}),
        ),
        row(
            "promptManager:updatePromptModel",
            "sample_data, as in the contract",
            |c, _| perm(c, SampleData),
            |_| json!({"prompt_name": "not a name!", "ai_model": "m"}),
        ),
        // operations: the background layer, for system administrators
        row(
            "operations:listJobs",
            "system_configuration",
            |c, _| perm(c, SystemConfiguration),
            |_| json!({"state": "dead"}),
        ),
        row(
            "operations:retryJob",
            "system_configuration",
            |c, _| perm(c, SystemConfiguration),
            |_| json!({"jobId": "not-a-job-id"}),
        ),
        row(
            "operations:cancelJob",
            "system_configuration",
            |c, _| perm(c, SystemConfiguration),
            |_| json!({"jobId": "not-a-job-id"}),
        ),
        row(
            "operations:listScheduledFunctions",
            "system_configuration",
            |c, _| perm(c, SystemConfiguration),
            |_| json!({}),
        ),
        row(
            "operations:cancelScheduledFunction",
            "system_configuration",
            |c, _| perm(c, SystemConfiguration),
            |_| json!({"scheduledFunctionId": "not-an-id"}),
        ),
        row(
            "operations:listCrons",
            "system_configuration",
            |c, _| perm(c, SystemConfiguration),
            |_| json!({}),
        ),
        row(
            "promptManager:createPromptVersion",
            "system_configuration",
            |c, _| perm(c, SystemConfiguration),
            |_| json!({"prompt_name": "matrix", "prompt_template": "{{unclosed"}),
        ),
        row(
            "promptManager:activatePromptVersion",
            "system_configuration",
            |c, _| perm(c, SystemConfiguration),
            |_| json!({"prompt_id": "not-a-prompt-id"}),
        ),
        row(
            "promptManager:updatePromptLimits",
            "system_configuration",
            |c, _| perm(c, SystemConfiguration),
            |_| json!({"prompt_id": "not-a-prompt-id", "temperature": 0.5}),
        ),
        row(
            "promptManager:resetPromptToDefault",
            "system_configuration",
            |c, _| perm(c, SystemConfiguration),
            |_| json!({"prompt_name": "not a name!"}),
        ),
        row(
            "promptManager:acknowledgeTokenAdjustment",
            "system_configuration",
            |c, _| perm(c, SystemConfiguration),
            |_| json!({"prompt_id": "not-a-prompt-id"}),
        ),
        row(
            "promptManager:resetTokenAdjustment",
            "system_configuration",
            |c, _| perm(c, SystemConfiguration),
            |_| json!({"prompt_id": "not-a-prompt-id"}),
        ),
        row(
            "promptManager:createPromptGroup",
            "system_configuration",
            |c, _| perm(c, SystemConfiguration),
            |_| json!({"group_name": ""}),
        ),
        row(
            "promptManager:updatePromptGroup",
            "system_configuration",
            |c, _| perm(c, SystemConfiguration),
            |_| json!({"group_id": "not-a-group-id", "description": "x"}),
        ),
        row(
            "promptManager:deletePromptGroup",
            "system_configuration",
            |c, _| perm(c, SystemConfiguration),
            |_| json!({"group_id": "not-a-group-id"}),
        ),
        row(
            "promptManager:assignPromptGroup",
            "system_configuration",
            |c, _| perm(c, SystemConfiguration),
            |_| json!({"prompt_name": "not a name!", "group_id": null}),
        ),
        row(
            "promptManager:acknowledgePromptAdjustment",
            "system_configuration (as acknowledgeTokenAdjustment)",
            |c, _| perm(c, SystemConfiguration),
            |_| json!({"prompt_name": "not a name!"}),
        ),
        row(
            "promptManager:resetPromptToBaseline",
            "system_configuration (as resetTokenAdjustment; the reference let anyone)",
            |c, _| perm(c, SystemConfiguration),
            |_| json!({"prompt_name": "not a name!"}),
        ),
        row(
            "promptManager:bulkUpdatePromptModels",
            "sample_data, as in the contract",
            |c, _| perm(c, SampleData),
            |_| json!({"prompt_ids": [], "ai_model": "two words"}),
        ),
        row(
            "promptManager:listDefaultTemplates",
            "create_incident, as in the contract",
            |c, _| perm(c, CreateIncident),
            |_| json!({}),
        ),
        row(
            "promptManager:clearAllPrompts",
            "sample_data, as in the contract (deactivates; seeding brings them back)",
            |c, _| perm(c, SampleData),
            |_| json!({}),
        ),
        row(
            "promptGroups:listGroups",
            "public (no session; the web app sends none)",
            public,
            |_| json!({}),
        ),
        row(
            "promptGroups:listPrompts",
            "public (no session; without templates and people fields)",
            public,
            |_| json!({"activeOnly": true}),
        ),
        row(
            "promptGroups:reorderPrompts",
            "system_configuration (as the promptManager group functions)",
            |c, _| perm(c, SystemConfiguration),
            |_| json!({"promptIds": ["not-a-prompt-id"], "newOrders": [1]}),
        ),
        row(
            "promptGroups:movePromptToGroup",
            "system_configuration (as the promptManager group functions)",
            |c, _| perm(c, SystemConfiguration),
            |_| json!({"promptId": "not-a-prompt-id", "newGroupId": null, "displayOrder": 0}),
        ),
        row(
            "promptManager:testPrompt",
            "system_configuration",
            |c, _| perm(c, SystemConfiguration),
            |_| json!({"prompt_name": "not a name!", "variables": {}}),
        ),
        row(
            "promptManager:listAiRequestLogs",
            "view_audit_logs for the own company; any company with system_configuration",
            |c, t| match perm(c, ViewAuditLogs) {
                Forbidden => Forbidden,
                _ if perm(c, SystemConfiguration) == Allowed => Allowed,
                _ if c.has_company() && t == Tenant::Own => Allowed,
                _ => Forbidden,
            },
            |cx| json!({"companyId": cx.t.company, "limit": 1.0}),
        )
        .tenanted(),
        // incident attachments and the file access log
        row(
            "incidentAttachments:generateUploadUrl",
            "edit_own_incident_capture, the creator only, while the capture is open",
            capture_owner,
            |cx| json!({"incident_id": cx.t.incident}),
        )
        .tenanted(),
        row(
            "incidentAttachments:attach",
            "edit_own_incident_capture, the creator only (no such upload: VALIDATION)",
            capture_owner,
            |cx| json!({"incident_id": cx.t.incident, "storageId": "none"}),
        )
        .tenanted(),
        row(
            "incidentAttachments:list",
            "the creator, or view_all_company_incidents in the company",
            incident_reader,
            |cx| json!({"incident_id": cx.t.incident}),
        )
        .tenanted(),
        row(
            "incidentAttachments:remove",
            "edit_own_incident_capture, the creator only (no such attachment: VALIDATION)",
            capture_owner,
            |cx| json!({"incident_id": cx.t.incident, "attachment_id": "none"}),
        )
        .tenanted(),
        // the PDF incident report
        row(
            "pdfGeneration:generateIncidentPDF",
            "the creator, or view_all_company_incidents in the company",
            incident_reader,
            |cx| json!({"incident_id": cx.t.incident, "sections": ["metadata"]}),
        )
        .tenanted(),
        row(
            "pdfGeneration:downloadPDF",
            "a report of an incident the caller reads (no such report: NOT_FOUND for everyone)",
            |c, _| match c.role() {
                Some(_) if c.has_company() => Hidden,
                _ => Forbidden,
            },
            |_| json!({"storageId": "none"}),
        ),
        row(
            "storageAccess:listAccessLog",
            "view_audit_logs, own company (a company is needed)",
            |c, _| match perm(c, ViewAuditLogs) {
                Allowed if c.has_company() => Allowed,
                _ => Forbidden,
            },
            |_| json!({"limit": 1.0}),
        ),
        row(
            "promptManager:getAiUsageStats",
            "view_audit_logs for the own company; any company with system_configuration",
            |c, t| match perm(c, ViewAuditLogs) {
                Forbidden => Forbidden,
                _ if perm(c, SystemConfiguration) == Allowed => Allowed,
                _ if c.has_company() && t == Tenant::Own => Allowed,
                _ => Forbidden,
            },
            |cx| json!({"companyId": cx.t.company, "days": 1.0}),
        )
        .tenanted(),
        // analysis (the fixture's incident is unsubmitted: allowed calls end in CONFLICT)
        row(
            "analysis:listQueue",
            "perform_analysis, own company",
            |c, t| own_company(c, t, PerformAnalysis),
            |_| json!({"paginationOpts": {"numItems": 5.0, "cursor": null}}),
        ),
        row(
            "analysis:listReportableDeadlines",
            "perform_analysis, own company",
            |c, t| own_company(c, t, PerformAnalysis),
            |_| json!({}),
        ),
        row(
            "analysis:getAnalysis",
            "perform_analysis in the company; the creator once completed",
            analysis_reader,
            |cx| json!({"incident_id": cx.t.incident}),
        )
        .tenanted(),
        row(
            "analysis:listRevisions",
            "perform_analysis in the company; the creator once completed",
            analysis_reader,
            |cx| json!({"incident_id": cx.t.incident}),
        )
        .tenanted(),
        row(
            "analysis:exportReport",
            "perform_analysis in the company; the creator once completed",
            analysis_reader,
            |cx| json!({"incident_id": cx.t.incident, "format": "markdown"}),
        )
        .tenanted(),
        row(
            "analysis:startAnalysis",
            "perform_analysis in the company (before submission: CONFLICT)",
            |c, t| own_company(c, t, PerformAnalysis),
            |cx| json!({"incident_id": cx.t.incident}),
        )
        .tenanted(),
        row(
            "analysis:takeOverAnalysis",
            "perform_analysis in the company",
            |c, t| own_company(c, t, PerformAnalysis),
            |cx| json!({"incident_id": cx.t.incident, "reason": "cover"}),
        )
        .tenanted(),
        row(
            "analysis:generateContributingConditions",
            "perform_analysis in the company",
            |c, t| own_company(c, t, PerformAnalysis),
            |cx| json!({"incident_id": cx.t.incident}),
        )
        .tenanted(),
        row(
            "analysis:updateContributingConditions",
            "perform_analysis in the company, the assigned analyst",
            |c, t| own_company(c, t, PerformAnalysis),
            |cx| json!({"incident_id": cx.t.incident, "conditions": [], "expected_revision": 0.0}),
        )
        .tenanted(),
        row(
            "analysis:generateClassifications",
            "perform_analysis in the company",
            |c, t| own_company(c, t, PerformAnalysis),
            |cx| json!({"incident_id": cx.t.incident}),
        )
        .tenanted(),
        row(
            "analysis:saveClassification",
            "perform_analysis in the company, the assigned analyst",
            |c, t| own_company(c, t, PerformAnalysis),
            |cx| {
                json!({"incident_id": cx.t.incident, "rank": "primary", "incident_type": "other",
                       "severity": "low", "risk_level": "low", "supporting_evidence": [],
                       "recommended_actions": []})
            },
        )
        .tenanted(),
        row(
            "analysis:removeClassification",
            "perform_analysis in the company, the assigned analyst",
            |c, t| own_company(c, t, PerformAnalysis),
            |cx| json!({"incident_id": cx.t.incident, "classification_id": "cls_1"}),
        )
        .tenanted(),
        row(
            "analysis:screenReportable",
            "perform_analysis in the company",
            |c, t| own_company(c, t, PerformAnalysis),
            |cx| json!({"incident_id": cx.t.incident}),
        )
        .tenanted(),
        row(
            "analysis:decideReportable",
            "perform_analysis (team leads and company admins) in the company",
            |c, t| own_company(c, t, PerformAnalysis),
            |cx| {
                json!({"incident_id": cx.t.incident, "decision": "not_reportable",
                       "categories": [], "harm_caused": false, "rationale": "No harm"})
            },
        )
        .tenanted(),
        row(
            "analysis:recordCommissionNotification",
            "perform_analysis in the company",
            |c, t| own_company(c, t, PerformAnalysis),
            |cx| {
                json!({"incident_id": cx.t.incident, "form": "immediate",
                       "submitted_at": 1.0, "reference": "REF-1"})
            },
        )
        .tenanted(),
        row(
            "analysis:completeAnalysis",
            "perform_analysis in the company, the assigned analyst",
            |c, t| own_company(c, t, PerformAnalysis),
            |cx| json!({"incident_id": cx.t.incident}),
        )
        .tenanted(),
        row(
            "analysis:reopenAnalysis",
            "company_configuration in the company",
            |c, t| own_company(c, t, CompanyConfiguration),
            |cx| json!({"incident_id": cx.t.incident, "reason": "New information"}),
        )
        .tenanted(),
        // notifications: each user's own
        row(
            "notifications:listMine",
            "signed in (no company: an empty page)",
            signed_in,
            |_| json!({"paginationOpts": {"numItems": 5.0, "cursor": null}}),
        ),
        row(
            "notifications:markRead",
            "signed in, in a company",
            |c, _| {
                if c.role().is_some() && c.has_company() {
                    Allowed
                } else {
                    Forbidden
                }
            },
            |_| json!({}),
        ),
    ]
}
