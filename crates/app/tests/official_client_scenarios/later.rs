//! Scenarios 10, 14, 15 and 16.

use super::*;

#[tokio::test]
async fn scenario_10_another_company_cannot_read_list_or_change_users_or_participants() {
    for db in backends() {
        let s = Scenario::start(db).await;
        let c = s
            .companies(&[
                ("ABC Care", "admin@abc.org"),
                ("Beta Care", "admin@beta.org"),
            ])
            .await;
        let (a, b) = (&c.list[0], &c.list[1]);
        let out = s
            .step(
                "isolation",
                json!({
                    "a": {"sessionToken": a.admin, "companyId": a.id, "siteId": a.site},
                    "b": {"sessionToken": b.admin, "siteId": b.site, "missingUserId": MISSING_ID},
                    "participant": sarah(&a.site),
                }),
            )
            .await;

        // A's participant and user answer exactly like ones that do not exist.
        for (kind, answers) in [
            ("participant", &out["participantAnswers"]),
            ("user", &out["userAnswers"]),
        ] {
            let answers = answers.as_object().unwrap();
            assert!(answers.len() >= 3, "{answers:?}");
            for (path, pair) in answers {
                assert_eq!(code(&pair["foreign"]), "NOT_FOUND", "{kind} {path}: {pair}");
                assert_eq!(
                    failure(&pair["foreign"]),
                    failure(&pair["missing"]),
                    "{kind} {path}: foreign == missing"
                );
            }
        }
        let lists = &out["lists"];
        assert_eq!(lists["participants"]["participants"], json!([]));
        assert_eq!(lists["search"]["participants"], json!([]));
        let b_users: Vec<&Json> = lists["users"]["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| &u["email"])
            .collect();
        assert_eq!(b_users, [&json!("admin@beta.org")], "only B's own users");
        assert_eq!(code(&lists["invitations"]), "FORBIDDEN");
        assert_eq!(code(&out["inviteIntoA"]), "FORBIDDEN");

        // A's data is unchanged.
        let after = &out["after"];
        assert_eq!(after["participant"]["participant"]["first_name"], "Sarah");
        assert_eq!(after["participant"]["participant"]["status"], "active");
        let a_users = after["users"]["users"].as_array().unwrap();
        let alex = a_users
            .iter()
            .find(|u| u["_id"] == out["userId"])
            .unwrap_or_else(|| panic!("Alex is still in A: {a_users:?}"));
        assert_eq!(alex["name"], "Alex Lead");
        assert_eq!(alex["role"], "team_lead");
        assert!(
            !out.to_string().contains("$argon2"),
            "no password hashes reach a client"
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn scenario_14_a_system_admin_impersonates_a_worker_within_limits_and_it_is_audited() {
    for db in backends() {
        let s = Scenario::start(db).await;
        let c = s.companies(&[("ABC Care", "admin@abc.org")]).await;
        let abc = &c.list[0];
        let worker = s.worker(abc, "jo@abc.org").await;
        s.system_admin("second-root@platform.org").await;
        let reason = "Ticket 42: cannot submit";
        let out = s
            .step(
                "impersonate",
                json!({"root": c.root, "workerEmail": "Jo@ABC.org", "workerToken": worker,
                       "otherAdminEmail": "second-root@platform.org", "reason": reason}),
            )
            .await;
        assert_eq!(field(&out["noReason"]), "reason", "a reason is required");
        let started = succeeded(&out["started"]);
        let expires = started["expires"].as_f64().unwrap();
        assert!(
            (expires - now_ms() - 30.0 * 60e3).abs() < 60e3,
            "30 minutes"
        );

        // Every call acts as the worker, without the admin's powers.
        let acting = &out["acting"];
        assert_eq!(acting["me"]["email"], "jo@abc.org");
        assert_eq!(acting["me"]["company_id"], abc.id.as_str());
        assert_eq!(acting["permissions"]["role"], "frontline_worker");
        assert_eq!(acting["viaBearer"]["email"], "jo@abc.org", "setAuth too");
        assert_eq!(code(&acting["audit"]), "FORBIDDEN");
        assert_eq!(acting["status"]["isImpersonating"], true);
        assert_eq!(acting["status"]["adminUser"]["email"], ROOT);
        assert_eq!(acting["status"]["reason"], reason);

        succeeded(&out["second"]);
        succeeded(&out["third"]);
        assert_eq!(code(&out["fourth"]), "CONFLICT");
        assert_eq!(
            message(&out["fourth"]),
            "Maximum concurrent impersonation sessions reached (3)"
        );
        assert_eq!(code(&out["adminTarget"]), "FORBIDDEN");
        assert_eq!(
            message(&out["adminTarget"]),
            "Cannot impersonate other system administrators"
        );

        assert_eq!(out["ended"]["success"], true);
        let after = &out["afterEnd"];
        assert_eq!(after["me"], Json::Null, "the ended token no longer works");
        assert_eq!(after["status"]["isImpersonating"], false);
        assert_eq!(
            after["rootMe"]["email"], ROOT,
            "the admin's session lives on"
        );
        assert_eq!(
            after["handedMe"]["email"], ROOT,
            "ending hands back a working admin session"
        );
        assert_eq!(after["workerMe"]["email"], "jo@abc.org");

        let events = out["events"].as_array().unwrap();
        let count = |name: &str| events.iter().filter(|e| e["event"] == name).count();
        assert_eq!(count("impersonation_started"), 3, "{events:?}");
        assert_eq!(count("impersonation_ended"), 1, "{events:?}");
        let worker_id = text(&acting["me"]["_id"]);
        for e in events
            .iter()
            .filter(|e| e["event"] == "impersonation_started")
        {
            assert_eq!(e["details"]["reason"], reason);
            assert_eq!(e["target_id"], worker_id.as_str());
        }
        let token = text(&started["impersonation_token"]);
        assert!(
            !out["events"].to_string().contains(&token),
            "no token in the log"
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn scenario_15_five_bad_sign_ins_lock_the_account_and_a_reset_link_ends_sessions() {
    for db in backends() {
        let s = Scenario::start(db).await;
        let email = "jo@example.org";
        let out = s
            .step(
                "lockout",
                json!({"name": "Jo", "email": email, "password": PW, "wrong": "Wr0ng!Pass"}),
            )
            .await;
        assert!(
            text_data(&out["weak"]).starts_with("Password does not meet requirements"),
            "weak password refused: {}",
            out["weak"]
        );
        assert_eq!(out["registered"]["role"], "frontline_worker");
        let failures = out["failures"].as_array().unwrap();
        for (i, f) in failures[..4].iter().enumerate() {
            assert_eq!(
                text_data(f),
                "Invalid email or password",
                "attempt {}",
                i + 1
            );
        }
        for locked in [&failures[4], &out["rightPassword"]] {
            assert!(
                message(locked).contains("Try again in 15 minutes"),
                "{locked}"
            );
        }
        assert!(
            text_data(&out["rightPassword"]).contains("locked"),
            "locked out"
        );
        assert_eq!(out["resetRequest"]["success"], true);

        let link = s.only_link(email, RESET_LINK).await;
        let tokens = rows(&s.app, "password_reset_tokens").await;
        let expires = tokens[0].get("expires_at").unwrap().as_f64().unwrap();
        assert!((expires - now_ms() - HOUR_MS).abs() < 60e3, "1 h link");

        let reset = s
            .step(
                "reset",
                json!({"token": token_of(&link), "email": email, "oldSession": out["session"],
                       "oldPassword": PW, "newPassword": "N3w!Secret"}),
            )
            .await;
        assert!(
            text_data(&reset["weak"]).starts_with("Password does not meet requirements"),
            "weak password refused: {}",
            reset["weak"]
        );
        assert_eq!(reset["reset"]["success"], true);
        assert_eq!(
            reset["oldSessionUser"],
            Json::Null,
            "the reset ended the session"
        );
        assert_eq!(
            text_data(&reset["oldPasswordLogin"]),
            "Invalid email or password"
        );
        assert_eq!(
            succeeded(&reset["login"])["user"]["email"],
            email,
            "the new password signs in, the lock lifted"
        );
        assert_eq!(
            text_data(&reset["reused"]),
            "Invalid or expired token",
            "the link is single use"
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn scenario_16_github_sign_in_links_an_existing_user_or_creates_a_worker() {
    for db in backends() {
        let s = Scenario::start(db).await;
        let lee = json!({"name": "Lee Lead", "email": "lee@example.org", "password": PW});
        let started = s
            .step("oauthStart", json!({"existing": lee, "count": 2}))
            .await;
        let existing_id = text(&started["registered"]["userId"]);

        // At GitHub: a new person, and Lee (whose verified GitHub address is the same one).
        let ada = Person::new("4242", "Ada Lovelace", "Ada@Example.org");
        let lee_at_github = Person::new("5151", "Lee L", "LEE@example.org");
        let logins: Vec<Json> = started["starts"]
            .as_array()
            .unwrap()
            .iter()
            .zip([&ada, &lee_at_github])
            .map(|(start, person)| {
                let url = start["url"].as_str().unwrap();
                assert!(url.starts_with(&s.fake.url), "{url}");
                json!({"code": s.fake.approve(url, person), "state": start["state"]})
            })
            .collect();
        let out = s.step("oauthFinish", json!({"logins": logins})).await;

        let new = &out["logins"][0];
        let user = &succeeded(&new["login"])["user"];
        assert_eq!(user["email"], "ada@example.org");
        assert_eq!(user["name"], "Ada Lovelace");
        assert_eq!(user["role"], "frontline_worker");
        assert_eq!(new["me"]["_id"], user["id"]);
        assert!(new["me"].get("company_id").is_none(), "no company: {new}");
        let session_ends = session_expiry(&s.app, &text(&user["id"])).await;
        assert!(
            (session_ends - now_ms() - 30.0 * DAY_MS).abs() < 60e3,
            "30-day session"
        );
        failure(&new["replay"]);

        let linked = &out["logins"][1];
        assert_eq!(
            succeeded(&linked["login"])["user"]["id"],
            existing_id.as_str(),
            "linked by email, not a second account"
        );
        assert_eq!(linked["me"]["email"], "lee@example.org");
        assert_eq!(linked["me"]["name"], "Lee Lead");
        let users = rows(&s.app, "users").await;
        assert_eq!(users.len(), 2, "Ada created, Lee linked");
        s.stop().await;
    }
}
