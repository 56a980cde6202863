//! `jumpgate serve`: opens storage, creates the first administrator when needed, and runs the
//! web panel and the SSH gateway until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use leptos::prelude::LeptosOptions;
use tracing::{info, warn};

use crate::assets::Assets;
use crate::auth::Auth;
use crate::config::Config;
use crate::http::{self, HttpState};
use crate::panel::InventoryPanel;
use crate::storage::{self, Storage};
use crate::{gateway, logging, settings};

pub async fn run(config: Config) -> anyhow::Result<()> {
    logging::init(config.log_format, &config.log_level);

    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let storage = Storage::open(&config.database_url)
        .await
        .context("opening the database")?;
    info!(backend = ?storage.kind(), "database ready");
    // Opened now so that a wrong or missing master key stops start-up before anything runs.
    let vault = crate::vault::open_at_start(&storage, &config.vault_key_source())
        .await
        .context("opening the credential vault")?;
    let gateway_key = crate::upstream::gateway_key(&config.data_dir)?;
    info!(
        fingerprint = %crate::upstream::fingerprint(gateway_key.public_key()),
        "gateway key ready (jumpgate server gateway-key prints its public half)"
    );

    let vault = Arc::new(vault);
    let auth = Auth::new(storage.clone(), config.is_https(), vault.clone());
    if let Some(otp) = auth.ensure_first_admin().await? {
        // Printed to the console only, never through the logger, which may feed a file.
        println!("{}", first_admin_banner(&otp, &config));
    }

    let assets = Arc::new(Assets::discover());
    if assets.is_empty() {
        warn!(
            "no web assets found: pages will render but not hydrate. Build with `cargo leptos build --release`."
        );
    }
    info!(assets = %assets.describe(), "static files");

    let leptos = LeptosOptions::builder()
        .output_name("jumpgate")
        .site_pkg_dir("pkg")
        .site_addr(config.web_listen)
        .build();

    let inventory = Arc::new(InventoryPanel::new(
        auth.clone(),
        vault.clone(),
        crate::upstream::gateway_public_line(&gateway_key),
    ));
    let onward = crate::onward::Onward {
        storage: storage.clone(),
        vault,
        gateway_key: Arc::new(gateway_key),
    };
    let host_key = gateway::host_key(&config.data_dir)?;
    let ssh_listener = gateway::bind(config.ssh_listen).await?;
    tokio::spawn(gateway::run(
        ssh_listener,
        gateway::Deps {
            auth: auth.clone(),
            onward: onward.clone(),
            public_url: config.public_url.clone(),
        },
        host_key,
    ));
    let sp_key = crate::saml::sp_key::load_or_create(
        &config.data_dir,
        config.public_url.host_str().unwrap_or("jumpgate"),
    )?;
    let sp = crate::saml::SpUrls::from_public_url(&config.public_url).with_signing_key(sp_key);
    let state = HttpState {
        auth,
        inventory,
        onward,
        leptos,
        public_origin: config.public_origin(),
        assets,
        sp: Arc::new(sp),
    };
    let app = http::router(state);

    let listener = tokio::net::TcpListener::bind(config.web_listen)
        .await
        .with_context(|| format!("listening on web.listen = {}", config.web_listen))?;
    let bound = listener.local_addr()?;
    info!(address = %bound, public_url = %config.public_url, "web panel listening");

    tokio::spawn(crate::saml::upkeep::run(storage.clone()));
    tokio::spawn(purge_expired_sessions(storage));

    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("serving the web panel")?;
    info!("stopped");
    Ok(())
}

fn first_admin_banner(otp: &str, config: &Config) -> String {
    let login = config
        .public_url
        .join("login")
        .map(|u| u.to_string())
        .unwrap_or_default();
    format!(
        "\n==================================================================\n\
         Jumpgate created the first administrator account.\n\
         \x20 user name: admin\n\
         \x20 password:  {otp}\n\
         This password is shown only now. Sign in at {login}\n\
         and choose your own password. Lost it? On this host run:\n\
         \x20 jumpgate admin reset-password admin\n\
         ==================================================================\n"
    )
}

/// Deletes expired web sessions and SAML sign-in records now and then, so the tables do not grow
/// without bound.
async fn purge_expired_sessions(storage: Storage) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        let now = storage::now();
        let idle = settings::get_i64(&storage, settings::SESSION_IDLE_MINUTES)
            .await
            .unwrap_or(60)
            * 60;
        match storage.delete_expired_sessions(now, now - idle).await {
            Ok(n) if n > 0 => info!(sessions = n, "purged expired web sessions"),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "purging expired sessions failed"),
        }
        // Sign-in requests are only honoured for minutes; a day's margin keeps them for tracing
        // a complaint. Remembered assertion IDs go once the assertion itself has expired.
        if let Err(e) = storage.prune_saml(now - 86_400, now).await {
            warn!(error = %e, "pruning SAML sign-in records failed");
        }
        // Anyone who connects creates an approval request, so they go soon after expiring.
        if let Err(e) = storage.prune_ssh_approvals(now - 3_600).await {
            warn!(error = %e, "pruning SSH approval records failed");
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
