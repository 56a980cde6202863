//! SAML 2.0 single sign-on: the web panel as a service provider.
//!
//! - [`SpUrls`]: Jumpgate's own entity ID, ACS and metadata URLs, derived from `web.public_url`.
//! - [`IdpConfig`]: the identity provider as configured in the runtime settings (`saml.*`).
//! - `metadata`: reading IdP metadata (fetched or pasted) and writing the SP's.
//! - `certs`: the trusted IdP signing certificates.
//! - `acs`: verifying a posted response (samael and libxmlsec underneath).
//! - `users`: finding or creating the account an assertion names.
//! - `web`: the HTTP endpoints `/saml/metadata`, `/saml/login` and `/saml/acs`.
//! - `slo`: single logout messages: checking the IdP's (HTTP-Redirect or HTTP-POST), writing
//!   ours (HTTP-Redirect).
//! - `xmldsig`: what a signature may ask of libxmlsec (same-document references,
//!   canonicalization), checked before it sees the document.
//! - `logout`: the endpoints `POST /saml/logout` (sign out here and at the IdP) and
//!   `GET`/`POST /saml/slo` (the IdP's logout requests and answers).

pub mod acs;
pub mod certs;
pub mod logout;
pub mod metadata;
pub mod slo;
pub mod sp_key;
pub mod upkeep;
pub mod users;
pub mod web;
pub mod xmldsig;

use std::net::IpAddr;

use url::Url;

use crate::settings::{self, SettingsError};
use crate::storage::Storage;
use metadata::{IdpMetadata, MetadataError, SsoBinding};

/// Jumpgate's service-provider addresses. The entity ID is the metadata URL, a common
/// convention that lets an IdP administrator open it to check.
#[derive(Debug, Clone)]
pub struct SpUrls {
    pub entity_id: String,
    pub acs: String,
    pub metadata: String,
    pub login: String,
    /// Single logout, both directions (the IdP may use HTTP-Redirect or HTTP-POST).
    pub slo: String,
    /// True when `web.public_url` names an IP address: SAML works, but certificates, cookies
    /// and IdP configuration all outlive an address change badly.
    pub host_is_ip: bool,
    /// Jumpgate's signing key for AuthnRequests, when one was loaded.
    pub signing: Option<std::sync::Arc<sp_key::SpKey>>,
}

impl SpUrls {
    pub fn from_public_url(public_url: &Url) -> Self {
        let base = public_url.as_str().trim_end_matches('/').to_string();
        let at = |path: &str| format!("{base}{path}");
        SpUrls {
            entity_id: at(app::paths::SAML_METADATA),
            acs: at(app::paths::SAML_ACS),
            metadata: at(app::paths::SAML_METADATA),
            login: at(app::paths::SAML_LOGIN),
            slo: at(app::paths::SAML_SLO),
            host_is_ip: matches!(
                public_url.host(),
                Some(url::Host::Ipv4(_)) | Some(url::Host::Ipv6(_))
            ),
            signing: None,
        }
    }

    pub fn with_signing_key(mut self, key: sp_key::SpKey) -> Self {
        self.signing = Some(std::sync::Arc::new(key));
        self
    }
}

/// The identity provider and the sign-in rules, as stored in the settings.
#[derive(Debug, Clone)]
pub struct IdpConfig {
    pub entity_id: String,
    pub sso_url: String,
    pub sso_binding: SsoBinding,
    pub slo_url: String,
    pub certificates_pem: String,
    pub email_attribute: String,
    pub username_attribute: String,
    pub display_name_attribute: String,
    pub groups_attribute: String,
    pub clock_skew_seconds: i64,
    pub allow_idp_initiated: bool,
    pub auto_create_users: bool,
    pub sign_requests: bool,
}

impl IdpConfig {
    pub async fn load(storage: &Storage) -> Result<Self, SettingsError> {
        let get = |key| settings::get(storage, key);
        Ok(IdpConfig {
            entity_id: get(settings::SAML_IDP_ENTITY_ID).await?,
            sso_url: get(settings::SAML_IDP_SSO_URL).await?,
            sso_binding: if get(settings::SAML_IDP_SSO_BINDING).await? == "post" {
                SsoBinding::Post
            } else {
                SsoBinding::Redirect
            },
            slo_url: get(settings::SAML_IDP_SLO_URL).await?,
            certificates_pem: get(settings::SAML_IDP_CERTIFICATES).await?,
            email_attribute: get(settings::SAML_EMAIL_ATTRIBUTE).await?,
            username_attribute: get(settings::SAML_USERNAME_ATTRIBUTE).await?,
            display_name_attribute: get(settings::SAML_DISPLAY_NAME_ATTRIBUTE).await?,
            groups_attribute: get(settings::SAML_GROUPS_ATTRIBUTE).await?,
            clock_skew_seconds: settings::get_i64(storage, settings::SAML_CLOCK_SKEW_SECONDS)
                .await?,
            allow_idp_initiated: settings::get_bool(storage, settings::SAML_ALLOW_IDP_INITIATED)
                .await?,
            auto_create_users: settings::get_bool(storage, settings::SAML_AUTO_CREATE).await?,
            sign_requests: settings::get_bool(storage, settings::SAML_SIGN_REQUESTS).await?,
        })
    }

    /// Sign-in can be attempted: an entity ID, where to send people, and a certificate.
    pub fn is_complete(&self) -> bool {
        !self.entity_id.is_empty()
            && !self.sso_url.is_empty()
            && !self.certificates_pem.trim().is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SamlError {
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
}

/// Stores what metadata says about the identity provider. The certificate list is replaced,
/// not merged: metadata is the IdP's own statement of which keys it signs with.
pub async fn apply_metadata(
    storage: &Storage,
    md: &IdpMetadata,
    metadata_url: Option<&str>,
) -> Result<(), SettingsError> {
    if md.certificates_pem.trim().is_empty() {
        return Err(SettingsError::Invalid {
            key: settings::SAML_IDP_CERTIFICATES.into(),
            message: MetadataError::NoSigningCertificate.to_string(),
        });
    }
    let slo = md.slo_url.clone().unwrap_or_default();
    let mut changes = vec![
        (
            settings::SAML_IDP_CERTIFICATES,
            md.certificates_pem.as_str(),
        ),
        (settings::SAML_IDP_ENTITY_ID, md.entity_id.as_str()),
        (settings::SAML_IDP_SSO_URL, md.sso_url.as_str()),
        (settings::SAML_IDP_SSO_BINDING, md.sso_binding.as_str()),
        (settings::SAML_IDP_SLO_URL, slo.as_str()),
    ];
    if let Some(url) = metadata_url {
        changes.push((settings::SAML_METADATA_URL, url));
    }
    settings::set_many(storage, &changes).await?;
    Ok(())
}

/// Downloads and reads metadata from `url` without storing anything.
pub async fn fetch_metadata(url: &str) -> Result<IdpMetadata, MetadataError> {
    let xml = metadata::fetch(url).await?;
    metadata::parse_idp(&xml)
}

/// A local path that is safe to send a signed-in person to: absolute, on this site, without
/// a scheme or host of its own.
pub fn safe_return_path(path: &str) -> Option<String> {
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && path.len() <= 1024
        && !path.chars().any(|c| c.is_control() || c == '\\');
    ok.then(|| path.to_string())
}

/// Where a refusal is logged from; the client address helps match a complaint to a log line.
/// Decodes base64 the way SAML bindings carry it: line breaks and spaces inside are ignored.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .ok()
}

pub fn log_refusal(reason: &dyn std::fmt::Display, ip: IpAddr, reference: &str) {
    tracing::warn!(client.ip = %ip, reference, reason = %reason, "SAML sign-in refused");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sp_urls_follow_the_public_url() {
        let sp = SpUrls::from_public_url(
            &Url::parse("https://gw.example.com/").unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(sp.entity_id, "https://gw.example.com/saml/metadata");
        assert_eq!(sp.acs, "https://gw.example.com/saml/acs");
        assert!(!sp.host_is_ip);
        let ip = SpUrls::from_public_url(
            &Url::parse("http://10.0.0.5:3000").unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(ip.acs, "http://10.0.0.5:3000/saml/acs");
        assert!(ip.host_is_ip);
    }

    #[test]
    fn return_paths_stay_on_this_site() {
        assert_eq!(
            safe_return_path("/console?x=1").as_deref(),
            Some("/console?x=1")
        );
        for bad in [
            "//evil.example",
            "/\\evil",
            "https://evil.example/",
            "console",
            "/a\nb",
        ] {
            assert!(safe_return_path(bad).is_none(), "{bad}");
        }
    }
}
