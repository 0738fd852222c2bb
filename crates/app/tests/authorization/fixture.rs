//! The matrix's world, written straight into the store: companies A and B (each with a Primary site,
//! a participant, a revoked invitation, one user per company role, and an incident with its
//! narrative recorded by the frontline worker), a company-less demo admin and system admin, a
//! "ghost" company whose documents were deleted again (the missing ids a foreign id must be
//! indistinguishable from), and a signed-in session for every caller.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value as Json};

use crate::harness::App;
use crate::seed::{insert, now_ms, PW};

/// Who calls. Company roles belong to company A; the two administrators belong to no company.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Caller {
    Anonymous,
    FrontlineWorker,
    TeamLead,
    CompanyAdmin,
    DemoAdmin,
    SystemAdmin,
}

impl Caller {
    pub const ALL: [Caller; 6] = [
        Caller::Anonymous,
        Caller::FrontlineWorker,
        Caller::TeamLead,
        Caller::CompanyAdmin,
        Caller::DemoAdmin,
        Caller::SystemAdmin,
    ];

    pub fn role(self) -> Option<app::identity::Role> {
        use app::identity::Role;
        match self {
            Caller::Anonymous => None,
            Caller::FrontlineWorker => Some(Role::FrontlineWorker),
            Caller::TeamLead => Some(Role::TeamLead),
            Caller::CompanyAdmin => Some(Role::CompanyAdmin),
            Caller::DemoAdmin => Some(Role::DemoAdmin),
            Caller::SystemAdmin => Some(Role::SystemAdmin),
        }
    }

    /// Whether the caller is a member of company A (the company roles are; the admins are not).
    pub fn has_company(self) -> bool {
        matches!(
            self,
            Caller::FrontlineWorker | Caller::TeamLead | Caller::CompanyAdmin
        )
    }

    pub fn name(self) -> &'static str {
        self.role().map_or("anonymous", |r| r.as_str())
    }
}

/// Whose resources a call names: the caller's own company (A), another company (B), or ids that
/// existed once and were deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tenant {
    Own,
    Foreign,
    Missing,
}

/// The ids of one company's resources.
pub struct TenantIds {
    pub company: String,
    pub site: String,
    pub participant: String,
    pub ndis: String,
    pub frontline: String,
    pub frontline_email: String,
    pub invitation: String,
    /// An unsubmitted incident of the company's frontline worker, with a narrative.
    pub incident: String,
    /// That incident's narrative.
    pub narrative: String,
}

pub struct Fixture {
    pub a: TenantIds,
    pub b: TenantIds,
    pub ghost: TenantIds,
    /// The signed-in callers' user ids and session tokens.
    users: HashMap<Caller, (String, String)>,
    /// A user nobody else uses, so `auth:loginUser` can succeed without evicting fixture sessions.
    pub sign_in_email: String,
    /// An impersonation of A's frontline worker, started by the system admin.
    pub impersonation: String,
    counter: AtomicUsize,
}

/// Something a row needs made fresh for each call, because the call uses it up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    None,
    /// A second session of the caller (signing out must not end the fixture's session).
    SpareSession,
    /// A frontline worker in the target company, to be deleted.
    VictimUser,
    /// A participant of the target company, to be deleted.
    VictimParticipant,
    /// An incident (with a narrative) of the target company, to be deleted.
    VictimIncident,
}

/// A well-formed id of `table` that names nothing: the document is inserted and deleted again.
async fn deleted(app: &App, table: &'static str, fields: Json) -> String {
    let row = values::json::from_clean_json(&fields)
        .unwrap()
        .into_object()
        .unwrap();
    let (id, _, _) = app
        .store
        .mutate(move |txn| {
            let id = txn.insert(table, row.clone())?;
            txn.delete(&id)?;
            Ok::<_, store::StoreError>(id)
        })
        .await
        .unwrap();
    id.encode()
}

fn user_row(company: Option<&str>, email: &str, role: &str, hash: &str) -> Json {
    let mut row = json!({"name": format!("{role} {email}"), "email": email, "password": hash,
                         "role": role, "created_at": 1.0});
    if let Some(company) = company {
        row["company_id"] = json!(company);
    }
    row
}

fn participant_row(company: &str, site: &str, ndis: &str, by: &str) -> Json {
    json!({"company_id": company, "site_id": site, "first_name": "Pat", "last_name": "Lee",
           "date_of_birth": "1990-05-01", "ndis_number": ndis, "support_level": "low",
           "status": "active", "name_key": "lee\u{1}pat", "created_at": 1.0, "created_by": by,
           "updated_at": 1.0, "updated_by": by})
}

fn invitation_row(company: &str, email: &str, by: &str) -> Json {
    // Already revoked: revoking it again is refused after the permission and tenancy checks.
    json!({"email": email, "company_id": company, "role": "frontline_worker", "invited_by": by,
           "inviter_name": "Admin", "inviter_email": "admin@example.org",
           "token_hash": format!("unused-{email}"), "expires_at": now_ms() + 86_400_000.0,
           "status": "revoked", "created_at": 1.0})
}

fn incident_row(company: &str, site: &str, by: &str) -> Json {
    let now = now_ms();
    json!({"company_id": company, "site_id": site, "reporter_name": "Kim Lee",
           "participant_name": "Pat Lee", "event_date_time": "2025-06-01T14:30",
           "event_at": now - 3_600_000.0, "location": "Kitchen", "capture_status": "in_progress",
           "analysis_status": "not_started", "overall_status": "capture_pending",
           "handoff_status": "draft", "created_at": now, "created_by": by, "updated_at": now,
           "updated_by": by, "questions_generated": false, "narrative_enhanced": false,
           "analysis_generated": false, "participant_sort": "pat lee", "reporter_sort": "kim lee"})
}

fn narrative_row(company: &str, incident: &str, by: &str) -> Json {
    json!({"company_id": company, "incident_id": incident, "before_event": "Calm morning.",
           "during_event": "", "end_event": "", "post_event": "", "narrative_hash": "unused",
           "version": 2.0, "created_at": 1.0, "created_by": by, "updated_at": 1.0,
           "updated_by": by})
}

/// An incident of `company` recorded by `by`, with its narrative: both ids.
async fn incident_with_narrative(
    app: &App,
    company: &str,
    site: &str,
    by: &str,
) -> (String, String) {
    let id = insert(app, "incidents", incident_row(company, site, by)).await;
    let narrative = insert(app, "incident_narratives", narrative_row(company, &id, by)).await;
    (id, narrative)
}

/// An incident of `company` recorded by `by`, with its narrative.
async fn incident(app: &App, company: &str, site: &str, by: &str) -> String {
    incident_with_narrative(app, company, site, by).await.0
}

async fn session(app: &App, user: &str) -> String {
    let token = hex::encode(rand::random::<[u8; 32]>());
    let now = now_ms();
    insert(
        app,
        "sessions",
        json!({"user_id": user, "token_hash": app::identity::sessions::hash_token(&token),
               "created_at": now, "expires_at": now + 86_400_000.0, "remember_me": false}),
    )
    .await;
    token
}

/// One company with its site, participant, invitation and one user per company role. Returns the
/// ids and the users by role.
async fn company(
    app: &App,
    tag: &str,
    ndis: &str,
    hash: &str,
) -> (TenantIds, HashMap<&'static str, String>) {
    let company = insert(
        app,
        "companies",
        json!({"name": format!("Company {tag}"), "slug": format!("company-{tag}"),
               "contact_email": format!("office@{tag}.org"), "status": "active", "created_at": 1.0}),
    )
    .await;
    let site = insert(
        app,
        "sites",
        json!({"company_id": company, "name": "Primary", "created_at": 1.0}),
    )
    .await;
    let mut users = HashMap::new();
    for role in ["frontline_worker", "team_lead", "company_admin"] {
        let email = format!("{role}@{tag}.org");
        let id = insert(app, "users", user_row(Some(&company), &email, role, hash)).await;
        users.insert(role, id);
    }
    let admin = users["company_admin"].clone();
    let participant = insert(
        app,
        "participants",
        participant_row(&company, &site, ndis, &admin),
    )
    .await;
    let invitation = insert(
        app,
        "user_invitations",
        invitation_row(&company, &format!("invitee@{tag}.org"), &admin),
    )
    .await;
    let (incident, narrative) =
        incident_with_narrative(app, &company, &site, &users["frontline_worker"]).await;
    let ids = TenantIds {
        company,
        site,
        participant,
        ndis: ndis.to_string(),
        frontline: users["frontline_worker"].clone(),
        frontline_email: format!("frontline_worker@{tag}.org"),
        invitation,
        incident,
        narrative,
    };
    (ids, users)
}

impl Fixture {
    pub async fn build(app: &App) -> Fixture {
        let hash = app::auth::passwords::hash(PW).unwrap();
        let (a, a_users) = company(app, "a", "431000001", &hash).await;
        let (b, _) = company(app, "b", "431000002", &hash).await;

        let by = a_users["company_admin"].clone();
        let ghost_company = deleted(
            app,
            "companies",
            json!({"name": "Gone", "slug": "gone", "contact_email": "office@gone.org",
                   "status": "active", "created_at": 1.0}),
        )
        .await;
        let ghost_site = deleted(
            app,
            "sites",
            json!({"company_id": ghost_company, "name": "Primary", "created_at": 1.0}),
        )
        .await;
        let ghost_incident = deleted(
            app,
            "incidents",
            incident_row(&ghost_company, &ghost_site, &by),
        )
        .await;
        let ghost_narrative = deleted(
            app,
            "incident_narratives",
            narrative_row(&ghost_company, &ghost_incident, &by),
        )
        .await;
        let ghost = TenantIds {
            incident: ghost_incident,
            narrative: ghost_narrative,
            participant: deleted(
                app,
                "participants",
                participant_row(&ghost_company, &ghost_site, "431000003", &by),
            )
            .await,
            frontline: deleted(
                app,
                "users",
                user_row(
                    Some(&ghost_company),
                    "gone@gone.org",
                    "frontline_worker",
                    &hash,
                ),
            )
            .await,
            invitation: deleted(
                app,
                "user_invitations",
                invitation_row(&ghost_company, "invitee@gone.org", &by),
            )
            .await,
            company: ghost_company,
            site: ghost_site,
            ndis: "431000003".into(),
            frontline_email: "gone@gone.org".into(),
        };

        let mut users = HashMap::new();
        for (caller, role) in [
            (Caller::FrontlineWorker, "frontline_worker"),
            (Caller::TeamLead, "team_lead"),
            (Caller::CompanyAdmin, "company_admin"),
        ] {
            let id = a_users[role].clone();
            users.insert(caller, (id.clone(), session(app, &id).await));
        }
        for (caller, role) in [
            (Caller::DemoAdmin, "demo_admin"),
            (Caller::SystemAdmin, "system_admin"),
        ] {
            let email = format!("{role}@platform.org");
            let id = insert(app, "users", user_row(None, &email, role, &hash)).await;
            users.insert(caller, (id.clone(), session(app, &id).await));
        }
        let sign_in_email = "sign-in@platform.org".to_string();
        insert(
            app,
            "users",
            user_row(None, &sign_in_email, "frontline_worker", &hash),
        )
        .await;

        let started = app
            .ok(
                "mutation",
                "impersonation:startImpersonation",
                json!({"admin_session_token": users[&Caller::SystemAdmin].1,
                       "target_user_email": a.frontline_email, "reason": "authorization matrix"}),
            )
            .await;
        let impersonation = started["impersonation_token"].as_str().unwrap().to_string();

        Fixture {
            a,
            b,
            ghost,
            users,
            sign_in_email,
            impersonation,
            counter: AtomicUsize::new(0),
        }
    }

    pub fn tenant(&self, tenant: Tenant) -> &TenantIds {
        match tenant {
            Tenant::Own => &self.a,
            Tenant::Foreign => &self.b,
            Tenant::Missing => &self.ghost,
        }
    }

    pub fn token(&self, caller: Caller) -> Option<&str> {
        self.users.get(&caller).map(|(_, token)| token.as_str())
    }

    /// Makes what `setup` asks for; `None` when there is nothing to make.
    pub async fn prepare(
        &self,
        app: &App,
        setup: Setup,
        caller: Caller,
        tenant: Tenant,
    ) -> Option<String> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let t = self.tenant(tenant);
        match (setup, tenant) {
            (Setup::None, _) => None,
            (Setup::SpareSession, _) => match self.users.get(&caller) {
                Some((user, _)) => Some(session(app, user).await),
                None => None,
            },
            (Setup::VictimUser, Tenant::Missing) => Some(t.frontline.clone()),
            (Setup::VictimUser, _) => {
                let email = format!("victim{n}@example.org");
                let row = user_row(Some(&t.company), &email, "frontline_worker", "");
                Some(insert(app, "users", row).await)
            }
            (Setup::VictimParticipant, Tenant::Missing) => Some(t.participant.clone()),
            (Setup::VictimParticipant, _) => {
                let ndis = format!("5{n:08}");
                let row = participant_row(&t.company, &t.site, &ndis, &t.frontline);
                Some(insert(app, "participants", row).await)
            }
            (Setup::VictimIncident, Tenant::Missing) => Some(t.incident.clone()),
            (Setup::VictimIncident, _) => {
                Some(incident(app, &t.company, &t.site, &t.frontline).await)
            }
        }
    }
}
