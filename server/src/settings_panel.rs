//! The panel's Settings page on the server side: reads and stores runtime settings through
//! [`crate::settings`] (the same checks as `jumpgate settings set`), and fetches or reads SAML
//! metadata through [`crate::saml`]. Administrators only.

use std::sync::Arc;

use app::api::ApiError;
use app::api::backend::RequestContext;
use app::settings::backend::SettingsBackend;
use app::settings::{CertificateInfo, GroupMapping, IdpFields, SamlForm, SettingsView, TestSignIn};
use tracing::{error, info, warn};

use crate::auth::Auth;
use crate::saml::certs::{self, CertSummary};
use crate::saml::metadata::{self, IdpMetadata, MetadataError};
use crate::saml::{self, IdpConfig, SpUrls};
use crate::settings::{self as store, SettingsError};
use crate::storage;

#[derive(Clone)]
pub struct SettingsPanel {
    auth: Auth,
    sp: Arc<SpUrls>,
}

impl SettingsPanel {
    pub fn new(auth: Auth, sp: Arc<SpUrls>) -> Self {
        SettingsPanel { auth, sp }
    }
}

impl From<SettingsError> for ApiError {
    fn from(e: SettingsError) -> Self {
        match e {
            SettingsError::Invalid { .. } | SettingsError::Unknown(_) => {
                ApiError::Invalid(e.to_string())
            }
            SettingsError::Storage(inner) => {
                error!(error = %inner, "settings storage failed");
                ApiError::Internal
            }
        }
    }
}

impl From<MetadataError> for ApiError {
    fn from(e: MetadataError) -> Self {
        // Metadata errors say what is wrong with what the administrator supplied.
        ApiError::Invalid(format!("Could not use the metadata: {e}."))
    }
}

/// Certificates as the page shows them, with days left counted from now.
pub fn certificate_infos(summaries: &[CertSummary]) -> Vec<CertificateInfo> {
    let now = storage::now();
    summaries
        .iter()
        .map(|c| CertificateInfo {
            subject: c.subject.clone(),
            not_after: certs::date(c.not_after),
            days_left: certs::days_left(c.not_after, now),
            sha256: c.sha256.clone(),
        })
        .collect()
}

fn idp_fields(md: IdpMetadata) -> IdpFields {
    IdpFields {
        certificates: certificate_infos(&md.certificates),
        entity_id: md.entity_id,
        sso_url: md.sso_url,
        sso_binding: md.sso_binding.as_str().into(),
        slo_url: md.slo_url.unwrap_or_default(),
        certificates_pem: md.certificates_pem,
    }
}

fn internal(e: storage::StorageError) -> ApiError {
    error!(error = %e, "settings page storage failed");
    ApiError::Internal
}

/// A recorded test sign-in (JSON written by `saml::web`) for the page.
fn test_sign_in(at: i64, json: &str) -> TestSignIn {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    let text = |key: &str| v[key].as_str().map(str::to_string);
    let strings = |value: &serde_json::Value| -> Vec<String> {
        value
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let attributes = v["attributes"]
        .as_array()
        .map(|pairs| {
            pairs
                .iter()
                .filter_map(|p| Some((p[0].as_str()?.to_string(), strings(&p[1]))))
                .collect()
        })
        .unwrap_or_default();
    let time = time::OffsetDateTime::from_unix_timestamp(at)
        .map(|t| format!("{} {:02}:{:02} UTC", certs::date(at), t.hour(), t.minute()))
        .unwrap_or_default();
    TestSignIn {
        at: time,
        ok: v["ok"].as_bool().unwrap_or(false),
        reason: text("reason"),
        email: text("email"),
        name_id: text("name_id"),
        account: text("account"),
        groups: strings(&v["groups"]),
        attributes,
    }
}

fn flag(on: bool) -> &'static str {
    if on { "true" } else { "false" }
}

#[async_trait::async_trait]
impl SettingsBackend for SettingsPanel {
    async fn settings(&self, ctx: &RequestContext) -> Result<SettingsView, ApiError> {
        let me = self.auth.require_admin(ctx).await?;
        let storage = self.auth.storage();
        let idp = IdpConfig::load(storage).await?;
        // A stored bundle always parses (it was checked on the way in); an empty list shows
        // the missing-certificate warning.
        let summaries = certs::summarise(&idp.certificates_pem).unwrap_or_default();
        let refresh = storage.saml_refresh_state().await.map_err(|e| {
            error!(error = %e, "reading the metadata refresh state failed");
            ApiError::Internal
        })?;
        let (metadata_refresh, metadata_refresh_failed) = match refresh {
            None => (None, false),
            Some((attempted, succeeded, error)) => {
                let last_good = succeeded
                    .map(|t| format!("last refreshed {}", certs::date(t)))
                    .unwrap_or_else(|| "never refreshed successfully".into());
                match error {
                    Some(reason) => (
                        Some(format!(
                            "The automatic refresh on {} failed ({reason}); Jumpgate keeps the \
                             last good metadata ({last_good}).",
                            certs::date(attempted)
                        )),
                        true,
                    ),
                    None => (
                        Some(format!("Metadata refreshed automatically; {last_good}.")),
                        false,
                    ),
                }
            }
        };
        Ok(SettingsView {
            web_auth: store::get(storage, store::WEB_AUTH).await?,
            auto_create_users: idp.auto_create_users,
            skip_2fa: store::get_bool(storage, store::SAML_SKIP_2FA).await?,
            ssh_browser_approval: store::get_bool(storage, store::SAML_SSH_BROWSER_APPROVAL)
                .await?,
            sp_entity_id: self.sp.entity_id.clone(),
            sp_acs_url: self.sp.acs.clone(),
            sp_metadata_url: self.sp.metadata.clone(),
            sp_host_is_ip: self.sp.host_is_ip,
            metadata_url: store::get(storage, store::SAML_METADATA_URL).await?,
            metadata_refresh,
            metadata_refresh_failed,
            idp: IdpFields {
                entity_id: idp.entity_id,
                sso_url: idp.sso_url,
                sso_binding: idp.sso_binding.as_str().into(),
                slo_url: idp.slo_url,
                certificates: certificate_infos(&summaries),
                certificates_pem: idp.certificates_pem,
            },
            email_attribute: idp.email_attribute,
            username_attribute: idp.username_attribute,
            display_name_attribute: idp.display_name_attribute,
            groups_attribute: idp.groups_attribute,
            allow_idp_initiated: idp.allow_idp_initiated,
            sign_requests: idp.sign_requests,
            clock_skew_seconds: idp.clock_skew_seconds,
            group_mappings: storage
                .saml_group_mappings()
                .await
                .map_err(internal)?
                .into_iter()
                .map(|m| GroupMapping {
                    id: m.id,
                    idp_value: m.idp_value,
                    user_group: m.user_group,
                })
                .collect(),
            user_groups: storage
                .user_groups()
                .await
                .map_err(internal)?
                .into_iter()
                .map(|g| g.name)
                .collect(),
            last_test: storage
                .saml_test_result(me.user.id)
                .await
                .map_err(internal)?
                .map(|(at, json)| test_sign_in(at, &json)),
        })
    }

    async fn save_general(
        &self,
        ctx: &RequestContext,
        web_auth: String,
        auto_create_users: bool,
    ) -> Result<(), ApiError> {
        let me = self.auth.require_admin(ctx).await?;
        store::set_many(
            self.auth.storage(),
            &[
                (store::WEB_AUTH, &web_auth),
                (store::SAML_AUTO_CREATE, flag(auto_create_users)),
            ],
        )
        .await?;
        info!(admin = %me.user.username, web_auth, auto_create_users, "general settings saved");
        Ok(())
    }

    async fn save_two_factor(
        &self,
        ctx: &RequestContext,
        skip_2fa: bool,
        ssh_browser_approval: bool,
    ) -> Result<(), ApiError> {
        let me = self.auth.require_admin(ctx).await?;
        store::set_many(
            self.auth.storage(),
            &[
                (store::SAML_SKIP_2FA, flag(skip_2fa)),
                (store::SAML_SSH_BROWSER_APPROVAL, flag(ssh_browser_approval)),
            ],
        )
        .await?;
        info!(admin = %me.user.username, skip_2fa, ssh_browser_approval, "two-factor settings saved");
        Ok(())
    }

    async fn save_saml(&self, ctx: &RequestContext, form: SamlForm) -> Result<(), ApiError> {
        let me = self.auth.require_admin(ctx).await?;
        if form.idp_certificates.trim().is_empty() && !form.idp_entity_id.trim().is_empty() {
            return Err(ApiError::Invalid(
                "Add at least one signing certificate of the identity provider (Fetch fills it \
                 in). Jumpgate accepts only signed responses."
                    .into(),
            ));
        }
        store::set_many(
            self.auth.storage(),
            &[
                (store::SAML_METADATA_URL, &form.metadata_url),
                (store::SAML_IDP_ENTITY_ID, &form.idp_entity_id),
                (store::SAML_IDP_SSO_URL, &form.idp_sso_url),
                (store::SAML_IDP_SSO_BINDING, &form.idp_sso_binding),
                (store::SAML_IDP_SLO_URL, &form.idp_slo_url),
                (store::SAML_IDP_CERTIFICATES, &form.idp_certificates),
                (store::SAML_EMAIL_ATTRIBUTE, &form.email_attribute),
                (store::SAML_USERNAME_ATTRIBUTE, &form.username_attribute),
                (
                    store::SAML_DISPLAY_NAME_ATTRIBUTE,
                    &form.display_name_attribute,
                ),
                (store::SAML_GROUPS_ATTRIBUTE, &form.groups_attribute),
                (
                    store::SAML_ALLOW_IDP_INITIATED,
                    flag(form.allow_idp_initiated.is_some()),
                ),
                (store::SAML_CLOCK_SKEW_SECONDS, &form.clock_skew_seconds),
                (
                    store::SAML_SIGN_REQUESTS,
                    flag(form.sign_requests.is_some()),
                ),
            ],
        )
        .await?;
        info!(admin = %me.user.username, idp = %form.idp_entity_id, "SAML settings saved");
        Ok(())
    }

    async fn fetch_metadata(
        &self,
        ctx: &RequestContext,
        url: String,
    ) -> Result<IdpFields, ApiError> {
        let me = self.auth.require_admin(ctx).await?;
        let url = url.trim().to_string();
        if url.is_empty() {
            return Err(ApiError::Invalid(
                "Paste the identity provider's metadata URL first.".into(),
            ));
        }
        match saml::fetch_metadata(&url).await {
            Ok(md) => {
                info!(admin = %me.user.username, url, idp = %md.entity_id, "IdP metadata fetched");
                Ok(idp_fields(md))
            }
            Err(e) => {
                warn!(admin = %me.user.username, url, error = %e, "IdP metadata fetch failed");
                Err(e.into())
            }
        }
    }

    async fn read_metadata(
        &self,
        ctx: &RequestContext,
        xml: String,
    ) -> Result<IdpFields, ApiError> {
        self.auth.require_admin(ctx).await?;
        let md = metadata::parse_idp(xml.trim())?;
        Ok(idp_fields(md))
    }

    async fn add_group_mapping(
        &self,
        ctx: &RequestContext,
        idp_value: String,
        user_group: String,
    ) -> Result<(), ApiError> {
        let me = self.auth.require_admin(ctx).await?;
        let value = idp_value.trim();
        match saml::users::add_group_mapping(self.auth.storage(), value, &user_group).await {
            Ok(()) => {}
            Err(saml::users::MappingError::Storage(e)) => return Err(internal(e)),
            Err(e) => return Err(ApiError::Invalid(e.to_string())),
        }
        info!(admin = %me.user.username, idp_value = value, user_group, "SAML group mapping added");
        Ok(())
    }

    async fn remove_group_mapping(&self, ctx: &RequestContext, id: i64) -> Result<(), ApiError> {
        let me = self.auth.require_admin(ctx).await?;
        if !self
            .auth
            .storage()
            .delete_saml_group_mapping(id)
            .await
            .map_err(internal)?
        {
            return Err(ApiError::Invalid(
                "That mapping no longer exists. Reload the page.".into(),
            ));
        }
        info!(admin = %me.user.username, id, "SAML group mapping removed");
        Ok(())
    }
}
