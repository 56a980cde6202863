//! Shared set-up for integration tests: a fresh database on every backend under test.
//!
//! SQLite always runs. PostgreSQL runs when `JUMPGATE_TEST_POSTGRES_URL` names a server where
//! the test may create databases (the README's test command starts one); with
//! `JUMPGATE_TEST_REQUIRE_POSTGRES=1` its absence is a failure rather than a skip.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod gateway;
pub mod panel;
pub mod sshd;

use jumpgate::storage::Storage;
use sqlx::Connection;

pub struct TestDb {
    pub storage: Storage,
    pub label: &'static str,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/test.db", dir.path().display());
    TestDb {
        storage: Storage::open(&url).await.unwrap(),
        label: "sqlite",
        _dir: Some(dir),
    }
}

async fn postgres(admin_url: &str) -> TestDb {
    let name = format!("jg_test_{}", rand_suffix());
    let mut conn = sqlx::PgConnection::connect(admin_url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let mut url = url::Url::parse(admin_url).unwrap();
    url.set_path(&name);
    TestDb {
        storage: Storage::open(url.as_str()).await.unwrap(),
        label: "postgres",
        _dir: None,
    }
}

fn rand_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}_{}", std::process::id(), nanos)
}

/// One fresh database per backend under test.
pub async fn databases() -> Vec<TestDb> {
    let mut out = vec![sqlite().await];
    match std::env::var("JUMPGATE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => out.push(postgres(&url).await),
        _ => {
            if std::env::var("JUMPGATE_TEST_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!(
                    "JUMPGATE_TEST_REQUIRE_POSTGRES=1 but JUMPGATE_TEST_POSTGRES_URL is not set"
                );
            }
            eprintln!("note: PostgreSQL not configured (JUMPGATE_TEST_POSTGRES_URL); SQLite only");
        }
    }
    out
}
