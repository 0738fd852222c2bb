//! Who may read `GET /metrics`: anyone in development and test, only holders of the metrics token
//! once one is set, and nobody in production until one is set.

mod common;

use common::{Db, Place, TestServer};
use config::{Config, Overrides};

const TOKEN: &str = "scrape-me-7f3a9c1d2e";

async fn get_metrics(server: &TestServer, authorization: Option<&str>) -> (u16, String) {
    let mut request = server.http.get(format!("{}/metrics", server.url));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

fn production(place: &Place, extra: &[(&str, &str)]) -> Config {
    // Later entries win, so `extra` can add to or override the base.
    let env: Vec<(String, String)> = [
        ("SUPPORTSIGNAL_ENV", "production"),
        ("SUPPORTSIGNAL_PUBLIC_URL", "https://app.example.org"),
        (
            "SUPPORTSIGNAL_SECRET_KEY",
            "a-production-secret-of-32-characters!",
        ),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let overrides = Overrides {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(place.data_dir()),
        database_url: None,
    };
    Config::from_env(overrides, move |k| {
        env.iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    })
    .expect("production configuration is valid")
}

#[tokio::test]
async fn open_outside_production_without_a_token() {
    let place = Place::new(Db::Sqlite).await;
    let server = TestServer::start(&place).await;
    let (status, body) = get_metrics(&server, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("# TYPE"), "Prometheus text: {body}");
    server.stop().await;
}

#[tokio::test]
async fn a_configured_token_is_required() {
    let place = Place::new(Db::Sqlite).await;
    let server = TestServer::start_with(&place, &[("SUPPORTSIGNAL_METRICS_TOKEN", TOKEN)]).await;
    for refused in [
        None,
        Some("Bearer wrong-token-of-some-length"),
        Some(&format!("Bearer {TOKEN}x")[..]),
        Some(&format!("Basic {TOKEN}")[..]),
    ] {
        let (status, body) = get_metrics(&server, refused).await;
        assert_eq!(status, 401, "{refused:?}: {body}");
        assert!(body.contains("\"code\":\"Unauthenticated\""), "{body}");
        assert!(!body.contains(TOKEN), "the token is never echoed: {body}");
    }
    let (status, body) = get_metrics(&server, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("# TYPE"), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn off_in_production_until_a_token_is_set() {
    let place = Place::new(Db::Sqlite).await;
    let server = TestServer::start_config(production(&place, &[])).await;
    let (status, body) = get_metrics(&server, None).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("MetricsDisabled"), "{body}");
    server.stop().await;

    let place = Place::new(Db::Sqlite).await;
    let config = production(&place, &[("SUPPORTSIGNAL_METRICS_TOKEN", TOKEN)]);
    assert!(
        !format!("{config:?}").contains(TOKEN),
        "the token stays out of Debug output"
    );
    let server = TestServer::start_config(config).await;
    let (status, _) = get_metrics(&server, None).await;
    assert_eq!(status, 401);
    let (status, body) = get_metrics(&server, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;
}

#[test]
fn short_tokens_are_refused_at_start() {
    let error = Config::from_env(Overrides::default(), |k| {
        (k == "SUPPORTSIGNAL_METRICS_TOKEN").then(|| "short".to_string())
    })
    .expect_err("a 5-character token is refused");
    assert!(
        error
            .to_string()
            .contains("SUPPORTSIGNAL_METRICS_TOKEN must be at least 16"),
        "{error}"
    );
}
