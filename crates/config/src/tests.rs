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
        "https://app.example.org/portal/invite/accept?token=t-1"
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
        ("SUPPORTSIGNAL_SECRET_KEY", PROD_KEY),
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

const PROD_KEY: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn oauth_is_off_by_default_with_the_real_provider_endpoints() {
    let c = load(&[]).unwrap();
    assert!(c.oauth.github.is_none() && c.oauth.google.is_none());
    assert_eq!(
        c.oauth.github_authorize_url().as_str(),
        "https://github.com/login/oauth/authorize"
    );
    assert_eq!(
        c.oauth.github_token_url().as_str(),
        "https://github.com/login/oauth/access_token"
    );
    assert_eq!(
        c.oauth.github_user_url().as_str(),
        "https://api.github.com/user"
    );
    assert_eq!(
        c.oauth.github_emails_url().as_str(),
        "https://api.github.com/user/emails"
    );
    assert_eq!(
        c.oauth.google_authorize_url().as_str(),
        "https://accounts.google.com/o/oauth2/v2/auth"
    );
    assert_eq!(
        c.oauth.google_token_url().as_str(),
        "https://oauth2.googleapis.com/token"
    );
    assert_eq!(
        c.oauth.google_userinfo_url().as_str(),
        "https://openidconnect.googleapis.com/v1/userinfo"
    );
    // Outside production a missing secret key is replaced by one that lives as long as the process.
    assert!(c.oauth.secret_key.is_ephemeral());
    assert_eq!(c.oauth.secret_key.expose().len(), 32);
}

#[test]
fn oauth_clients_and_endpoint_overrides() {
    let c = load(&[
        ("GITHUB_CLIENT_ID", "gh-id"),
        ("GITHUB_CLIENT_SECRET", "gh-secret"),
        ("GOOGLE_CLIENT_ID", "g-id"),
        ("GOOGLE_CLIENT_SECRET", "g-secret"),
        ("GITHUB_OAUTH_BASE_URL", "http://127.0.0.1:9000/gh"),
        ("GITHUB_API_BASE_URL", "http://127.0.0.1:9000/api"),
        ("GOOGLE_OAUTH_BASE_URL", "http://127.0.0.1:9001"),
        ("GOOGLE_TOKEN_BASE_URL", "http://127.0.0.1:9002"),
        ("GOOGLE_API_BASE_URL", "http://127.0.0.1:9003"),
        ("SUPPORTSIGNAL_SECRET_KEY", PROD_KEY),
    ])
    .unwrap();
    let o = &c.oauth;
    assert_eq!(o.github.as_ref().unwrap().client_id, "gh-id");
    assert_eq!(o.github.as_ref().unwrap().client_secret(), "gh-secret");
    assert_eq!(o.google.as_ref().unwrap().client_secret(), "g-secret");
    assert_eq!(
        o.github_token_url().as_str(),
        "http://127.0.0.1:9000/gh/login/oauth/access_token"
    );
    assert_eq!(
        o.github_emails_url().as_str(),
        "http://127.0.0.1:9000/api/user/emails"
    );
    assert_eq!(
        o.google_authorize_url().as_str(),
        "http://127.0.0.1:9001/o/oauth2/v2/auth"
    );
    assert_eq!(o.google_token_url().as_str(), "http://127.0.0.1:9002/token");
    assert_eq!(
        o.google_userinfo_url().as_str(),
        "http://127.0.0.1:9003/v1/userinfo"
    );
    assert_eq!(o.secret_key.expose(), PROD_KEY.as_bytes());
    assert!(!o.secret_key.is_ephemeral());
}

#[test]
fn oauth_problems_are_refused_with_the_reason() {
    let msg = problems(&[("GITHUB_CLIENT_ID", "gh-id")]);
    assert!(
        msg.contains("GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET must be set together"),
        "{msg}"
    );
    let msg = problems(&[("GOOGLE_CLIENT_SECRET", "hunter2")]);
    assert!(
        msg.contains("GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET"),
        "{msg}"
    );
    assert!(!msg.contains("hunter2"), "{msg}");
    let msg = problems(&[("GITHUB_OAUTH_BASE_URL", "https://github.com/")]);
    assert!(
        msg.contains("GITHUB_OAUTH_BASE_URL must not end with a trailing slash"),
        "{msg}"
    );
    let msg = problems(&[("SUPPORTSIGNAL_SECRET_KEY", "short")]);
    assert!(msg.contains("at least 32 characters"), "{msg}");
    assert!(!msg.contains("short\""), "{msg}");
    let msg = problems(&[
        ("SUPPORTSIGNAL_ENV", "production"),
        ("SUPPORTSIGNAL_PUBLIC_URL", "https://app.example.org"),
    ]);
    assert!(
        msg.contains("SUPPORTSIGNAL_SECRET_KEY is required in production"),
        "{msg}"
    );
    let msg = problems(&[
        ("SUPPORTSIGNAL_ENV", "production"),
        ("SUPPORTSIGNAL_PUBLIC_URL", "https://app.example.org"),
        ("SUPPORTSIGNAL_SECRET_KEY", PROD_KEY),
        ("GOOGLE_API_BASE_URL", "http://fake.example.org"),
    ]);
    assert!(
        msg.contains("GOOGLE_API_BASE_URL must use https in production"),
        "{msg}"
    );
}

#[test]
fn oauth_secrets_never_printed() {
    let c = load(&[
        ("GITHUB_CLIENT_ID", "gh-id"),
        ("GITHUB_CLIENT_SECRET", "hunter2-github"),
        ("GOOGLE_CLIENT_ID", "g-id"),
        ("GOOGLE_CLIENT_SECRET", "hunter2-google"),
        (
            "SUPPORTSIGNAL_SECRET_KEY",
            "hunter2-server-key-0123456789abcdef",
        ),
    ])
    .unwrap();
    let printed = format!("{c:?}");
    for secret in ["hunter2-github", "hunter2-google", "hunter2-server-key"] {
        assert!(!printed.contains(secret), "{printed}");
    }
    assert!(
        printed.contains("gh-id") && printed.contains("***"),
        "{printed}"
    );
}

#[test]
fn storage_limits_have_defaults_and_an_upload_fits_in_a_body() {
    let c = load(&[]).unwrap();
    assert_eq!(c.storage.max_upload_bytes, 10 * 1024 * 1024);
    assert_eq!(c.storage.download_url_ttl, Duration::from_secs(300));
    assert_eq!(c.storage.upload_url_ttl, Duration::from_secs(3600));
    let c = load(&[
        ("SUPPORTSIGNAL_MAX_UPLOAD_BYTES", "1000"),
        ("SUPPORTSIGNAL_DOWNLOAD_URL_TTL_SECS", "60"),
    ])
    .unwrap();
    assert_eq!(c.storage.max_upload_bytes, 1000);
    assert_eq!(c.storage.download_url_ttl, Duration::from_secs(60));
    let small = load(&[("SUPPORTSIGNAL_MAX_BODY_BYTES", "4096")]).unwrap();
    assert_eq!(small.storage.max_upload_bytes, 4096);
    let refused = problems(&[
        ("SUPPORTSIGNAL_MAX_BODY_BYTES", "1000"),
        ("SUPPORTSIGNAL_MAX_UPLOAD_BYTES", "2000"),
        ("SUPPORTSIGNAL_STORAGE_QUOTA_BYTES", "lots"),
    ]);
    assert!(refused.contains("SUPPORTSIGNAL_MAX_UPLOAD_BYTES (2000) must not exceed"));
    assert!(refused.contains("SUPPORTSIGNAL_STORAGE_QUOTA_BYTES must be a positive"));
}

#[test]
fn object_storage_is_named_by_an_s3_url_and_its_secret_never_prints() {
    assert!(load(&[]).unwrap().storage.object_store.is_none());
    let c = load(&[
        (
            "SUPPORTSIGNAL_STORAGE_URL",
            "s3://files/supportsignal/prod/",
        ),
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "very-secret-key"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
        ("AWS_ALLOW_HTTP", "true"),
    ])
    .unwrap();
    let s3 = c.storage.object_store.clone().unwrap();
    assert_eq!(
        (s3.bucket.as_str(), s3.prefix.as_str()),
        ("files", "supportsignal/prod")
    );
    assert_eq!(s3.region, "us-east-1");
    assert!(s3.allow_http);
    assert!(!format!("{c:?}").contains("very-secret-key"));
    let refused = problems(&[
        ("SUPPORTSIGNAL_STORAGE_URL", "gs://elsewhere"),
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
    ]);
    assert!(
        refused.contains("must be s3://bucket[/prefix]"),
        "{refused}"
    );
    let refused = problems(&[
        ("SUPPORTSIGNAL_STORAGE_URL", "s3://b"),
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
    ]);
    assert!(refused.contains("must be set together"), "{refused}");
}
