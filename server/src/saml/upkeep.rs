//! Keeping the identity provider's metadata current without anyone watching: when a metadata
//! URL is set, it is fetched again every `saml.metadata_refresh_hours`. Every signing
//! certificate the metadata lists is trusted at once, so an IdP that publishes its next
//! certificate ahead of a rollover causes no outage. A failed refresh keeps the last good
//! metadata and records why, as does metadata naming another IdP entity ID (which only an
//! administrator's Fetch accepts); certificates close to expiry are logged daily.

use std::time::Duration;

use tracing::{info, warn};

use super::certs;
use super::metadata::IdpMetadata;
use crate::settings;
use crate::storage::{self, Storage};

/// Certificates expiring within this many days are warned about.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// What one refresh did.
#[derive(Debug)]
pub enum Refresh {
    /// No metadata URL is set, or automatic refresh is off.
    Off,
    /// The last attempt is recent enough.
    NotDue,
    Refreshed(IdpMetadata),
    /// The reason; the stored IdP settings were left as they were.
    Failed(String),
}

/// Refreshes when the interval has passed since the last attempt (on any node).
pub async fn refresh_if_due(storage: &Storage) -> Result<Refresh, settings::SettingsError> {
    let hours = settings::get_i64(storage, settings::SAML_METADATA_REFRESH_HOURS).await?;
    if hours == 0 {
        return Ok(Refresh::Off);
    }
    if let Some((attempted, _, _)) = storage.saml_refresh_state().await?
        && storage::now() - attempted < hours * 3600
    {
        return Ok(Refresh::NotDue);
    }
    refresh_now(storage).await
}

/// Fetches the metadata URL and stores what it says, or records the failure.
pub async fn refresh_now(storage: &Storage) -> Result<Refresh, settings::SettingsError> {
    let url = settings::get(storage, settings::SAML_METADATA_URL).await?;
    if url.is_empty() {
        return Ok(Refresh::Off);
    }
    let trusted = settings::get(storage, settings::SAML_IDP_ENTITY_ID).await?;
    let outcome = match super::fetch_metadata(&url).await {
        // Another IdP behind the same URL is a decision for an administrator, not for a timer:
        // it may mean the URL now points somewhere it should not.
        Ok(md) if !trusted.is_empty() && md.entity_id != trusted => Err(format!(
            "the metadata now names another identity provider ({}, was {trusted}), so nothing \
             was changed; if that is intended, press Fetch in Settings > SAML or run \
             `jumpgate saml fetch URL`",
            md.entity_id
        )),
        Ok(md) => match super::apply_metadata(storage, &md, None).await {
            Ok(()) => Ok(md),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    match outcome {
        Ok(md) => {
            storage.record_saml_refresh(None).await?;
            info!(url, idp = %md.entity_id, certificates = md.certificates.len(),
                "identity provider metadata refreshed");
            Ok(Refresh::Refreshed(md))
        }
        Err(reason) => {
            storage.record_saml_refresh(Some(&reason)).await?;
            warn!(url, reason = %reason,
                "identity provider metadata refresh failed; keeping the last good metadata");
            Ok(Refresh::Failed(reason))
        }
    }
}

/// Trusted certificates that expire within [`EXPIRY_WARNING_DAYS`]: (subject, days left).
pub async fn expiring_certificates(
    storage: &Storage,
) -> Result<Vec<(String, i64)>, settings::SettingsError> {
    let bundle = settings::get(storage, settings::SAML_IDP_CERTIFICATES).await?;
    let now = storage::now();
    Ok(certs::summarise(&bundle)
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.subject, certs::days_left(c.not_after, now)))
        .filter(|(_, days)| *days < EXPIRY_WARNING_DAYS)
        .collect())
}

/// The background task `serve` starts: checks every ten minutes, warns about expiry daily.
pub async fn run(storage: Storage) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    let mut last_warning: Option<tokio::time::Instant> = None;
    loop {
        tick.tick().await;
        if let Err(e) = refresh_if_due(&storage).await {
            warn!(error = %e, "could not check the identity provider metadata");
        }
        let due = last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(86_400));
        if due {
            last_warning = Some(tokio::time::Instant::now());
            for (subject, days) in expiring_certificates(&storage).await.unwrap_or_default() {
                warn!(certificate = %subject, days_left = days,
                    "a trusted identity provider certificate expires soon; add its successor \
                     (refresh the metadata or paste it in Settings > SAML)");
            }
        }
    }
}
