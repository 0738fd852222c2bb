//! A fresh PostgreSQL database per run, so figures never depend on what an earlier run left behind.

use anyhow::Context as _;

pub struct FreshDatabase {
    /// The URL the server connects to.
    pub url: String,
    name: String,
    admin_url: String,
}

async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {}", config::redact_url(url)))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

impl FreshDatabase {
    /// Creates `bench_<random>` through `admin_url` (any database the user may connect to).
    pub async fn create(admin_url: &str) -> anyhow::Result<FreshDatabase> {
        let name = format!("bench_{}", hex::encode(rand::random::<[u8; 6]>()));
        connect(admin_url)
            .await?
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("CREATE DATABASE {name}"))?;
        let mut url = url::Url::parse(admin_url).context("the PostgreSQL URL does not parse")?;
        url.set_path(&format!("/{name}"));
        Ok(FreshDatabase {
            url: url.to_string(),
            name,
            admin_url: admin_url.to_string(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database (after the server has stopped; FORCE covers one that did not).
    pub async fn drop_database(self) -> anyhow::Result<()> {
        connect(&self.admin_url)
            .await?
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
            .with_context(|| format!("DROP DATABASE {}", self.name))
    }
}
