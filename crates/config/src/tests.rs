use std::collections::HashMap;

use super::*;

fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    load_with(Overrides::default(), vars)
}

fn load_with(overrides: Overrides, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_env(overrides, move |k| map.get(k).cloned())
}

fn problems(vars: &[(&str, &str)]) -> String {
    load(vars)
        .expect_err("configuration should be refused")
        .to_string()
}

#[test]
fn zero_configuration_gives_embedded_defaults() {
    let c = load(&[]).unwrap();
    assert_eq!(c.environment, Environment::Development);
    assert_eq!(c.listen.to_string(), "127.0.0.1:3210");
    assert_eq!(c.data_dir, PathBuf::from("./data"));
    assert_eq!(
        c.database,
        Database::Sqlite {
            path: PathBuf::from("./data/supportsignal.db")
        }
    );
    assert_eq!(c.public_url.as_str(), "http://localhost:3200/");
}

#[test]
fn flags_win_over_environment() {
    let o = Overrides {
        listen: Some("127.0.0.1:9999".into()),
        data_dir: Some(PathBuf::from("/tmp/x")),
        database_url: None,
    };
    let c = load_with(
        o,
        &[
            ("SUPPORTSIGNAL_LISTEN", "127.0.0.1:1111"),
            ("SUPPORTSIGNAL_DATA_DIR", "/tmp/y"),
        ],
    )
    .unwrap();
    assert_eq!(c.listen.port(), 9999);
    assert_eq!(
        c.database,
        Database::Sqlite {
            path: PathBuf::from("/tmp/x/supportsignal.db")
        }
    );
}

#[test]
fn production_requires_a_public_url() {
    let msg = problems(&[("SUPPORTSIGNAL_ENV", "production")]);
    assert!(
        msg.contains("SUPPORTSIGNAL_PUBLIC_URL is required in production"),
        "{msg}"
    );
}

#[test]
fn ci_does_not_weaken_production() {
    let msg = problems(&[("SUPPORTSIGNAL_ENV", "production"), ("CI", "true")]);
    assert!(msg.contains("required in production"), "{msg}");
    assert_eq!(
        load(&[("CI", "true")]).unwrap().environment,
        Environment::Test
    );
}

#[test]
fn bad_urls_are_refused_with_the_reason() {
    assert!(problems(&[("SUPPORTSIGNAL_PUBLIC_URL", "not a url")]).contains("must be a valid URL"));
    assert!(
        problems(&[("SUPPORTSIGNAL_PUBLIC_URL", "https://app.example.org/")])
            .contains("trailing slash")
    );
    assert!(
        problems(&[("SUPPORTSIGNAL_PUBLIC_URL", "ftp://app.example.org")])
            .contains("http or https")
    );
    let msg = problems(&[
        ("SUPPORTSIGNAL_ENV", "production"),
        ("SUPPORTSIGNAL_PUBLIC_URL", "http://app.example.org"),
    ]);
    assert!(msg.contains("https in production"), "{msg}");
}

#[test]
fn all_problems_are_reported_together() {
    let err = load(&[
        ("SUPPORTSIGNAL_ENV", "staging"),
        ("SUPPORTSIGNAL_LISTEN", "nowhere"),
        ("DATABASE_URL", "mysql://x"),
    ])
    .unwrap_err();
    assert_eq!(err.0.len(), 3, "{err}");
}

#[test]
fn database_url_password_never_printed() {
    let c = load(&[("DATABASE_URL", "postgres://app:hunter2@db.internal/ss")]).unwrap();
    let printed = format!("{c:?}");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains("db.internal"));
    let msg = problems(&[("DATABASE_URL", "mysql://app:hunter2@db")]);
    assert!(!msg.contains("hunter2"), "{msg}");
}

#[test]
fn urls_come_from_the_configured_bases() {
    let c = load(&[
        ("SUPPORTSIGNAL_PUBLIC_URL", "https://app.example.org/portal"),
        ("SUPPORTSIGNAL_API_URL", "https://api.example.org"),
    ])
    .unwrap();
    let u = c.urls();
    assert_eq!(
        u.password_reset("abc_123").unwrap(),
        "https://app.example.org/portal/reset-password?token=abc_123"
    );
    assert_eq!(
        u.invitation_acceptance("t-1").unwrap(),
        "https://app.example.org/portal/accept-invitation?token=t-1"
    );
    assert_eq!(
        u.oauth_callback(OAuthProvider::GitHub),
        "https://app.example.org/portal/auth/github/callback"
    );
    assert_eq!(
        u.oauth_callback(OAuthProvider::Google),
        "https://app.example.org/portal/auth/google/callback"
    );
    assert_eq!(
        u.file_download("f00d").unwrap(),
        "https://api.example.org/api/storage/f00d"
    );
}

#[test]
fn url_inputs_are_validated() {
    let u = load(&[]).unwrap().urls();
    assert_eq!(
        u.password_reset(""),
        Err(UrlError::Empty {
            what: "password reset token"
        })
    );
    assert!(matches!(
        u.invitation_acceptance("a&b=c"),
        Err(UrlError::BadCharacters { .. })
    ));
    assert!(matches!(
        u.file_download(&"x".repeat(300)),
        Err(UrlError::TooLong { .. })
    ));
}

#[test]
fn no_smtp_by_default_and_a_development_sender() {
    let c = load(&[]).unwrap();
    assert_eq!(c.smtp, None);
    assert_eq!(c.mail_from, DEFAULT_MAIL_FROM);
}

#[test]
fn smtp_url_schemes_choose_transport_security() {
    let smtp = |url: &str| load(&[("SMTP_URL", url)]).unwrap().smtp.unwrap();
    let plain = smtp("smtp://127.0.0.1:2525");
    assert_eq!(
        (plain.host.as_str(), plain.port, plain.tls),
        ("127.0.0.1", 2525, SmtpTls::None)
    );
    assert_eq!(plain.username, None);
    assert_eq!(smtp("smtp://relay.internal").port, 25);
    // The submission port expects STARTTLS even when the URL says smtp://.
    assert_eq!(smtp("smtp://mail.example.org:587").tls, SmtpTls::StartTls);
    let starttls = smtp("smtp+starttls://mail.example.org");
    assert_eq!((starttls.port, starttls.tls), (587, SmtpTls::StartTls));
    let implicit = smtp("smtps://apikey:s%40cret%2F1@smtp.example.org");
    assert_eq!((implicit.port, implicit.tls), (465, SmtpTls::Implicit));
    assert_eq!(implicit.username.as_deref(), Some("apikey"));
    assert_eq!(implicit.password(), Some("s@cret/1"));
    assert_eq!(smtp("smtp://[::1]:2525").host, "::1");
}

#[test]
fn bad_smtp_settings_are_refused_with_the_reason() {
    for (url, expected) in [
        ("http://mail.example.org", "must start with smtp://"),
        ("smtp://", "must name a host"),
        ("smtps://mail.example.org/x?tls=none", "no path or query"),
        ("smtp://:pw@mail.example.org", "password but no user name"),
        ("not a url", "must be a URL"),
    ] {
        let msg = problems(&[("SMTP_URL", url)]);
        assert!(msg.contains(expected), "{url}: {msg}");
    }
    let msg = problems(&[("SMTP_FROM", "nobody")]);
    assert!(msg.contains("SMTP_FROM must be an address"), "{msg}");
    assert!(problems(&[("SMTP_FROM", "Support <help@x.org")]).contains("angle brackets"));
    let ok = load(&[("SMTP_FROM", "Support Team <help@example.org>")]).unwrap();
    assert_eq!(ok.mail_from, "Support Team <help@example.org>");
    assert!(load(&[("SMTP_FROM", "help@example.org")]).is_ok());
}

#[test]
fn production_mail_settings_must_be_safe() {
    let base = [
        ("SUPPORTSIGNAL_ENV", "production"),
        ("SUPPORTSIGNAL_PUBLIC_URL", "https://app.example.org"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| [&base[..], extra].concat();
    let msg = problems(&with(&[
        ("SMTP_URL", "smtp://user:hunter2@mail.example.org"),
        ("SMTP_FROM", "no-reply@example.org"),
    ]));
    assert!(msg.contains("unencrypted"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
    let msg = problems(&with(&[("SMTP_URL", "smtps://mail.example.org")]));
    assert!(msg.contains("SMTP_FROM is required in production"), "{msg}");
    // A relay on this machine may be plain; production without SMTP logs mail to the outbox.
    assert!(load(&with(&[
        ("SMTP_URL", "smtp://user:pw@localhost:25"),
        ("SMTP_FROM", "no-reply@example.org"),
    ]))
    .is_ok());
    assert!(load(&base).is_ok());
}

#[test]
fn smtp_password_never_printed() {
    let c = load(&[("SMTP_URL", "smtps://apikey:hunter2@smtp.example.org")]).unwrap();
    let printed = format!("{c:?}");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains("smtp.example.org") && printed.contains("***"));
    let msg = problems(&[("SMTP_URL", "smtps://apikey:hunter2@smtp.example.org/path")]);
    assert!(!msg.contains("hunter2"), "{msg}");
    let msg = problems(&[("SMTP_URL", "ftp://apikey:hunter2@smtp.example.org")]);
    assert!(!msg.contains("hunter2"), "{msg}");
}
