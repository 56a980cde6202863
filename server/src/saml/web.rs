//! The SAML endpoints of the web panel.
//!
//! - `GET /saml/metadata`: Jumpgate's service-provider metadata, for the IdP administrator.
//! - `GET /saml/login?return=/path`: sends the browser to the IdP with an AuthnRequest. The
//!   request ID is stored (shared by every node) and travels as RelayState, so the answer
//!   finds its request and its return path. `?test=1`, for a signed-in administrator, makes it
//!   a test sign-in: the answer is checked and recorded for Settings > SAML, and nobody is
//!   signed in by it.
//! - `POST /saml/acs`: takes the IdP's answer. It is exempt from the panel's CSRF check (the
//!   IdP posts it from its own site); the signed response is what protects it.
//!
//! An answer to one of our requests is accepted only in the browser that sent the request:
//! `/saml/login` gives that browser a secret in a cookie scoped to the ACS, and stores its hash
//! with the request. Otherwise whoever captured a valid answer for their own sign-in could post
//! it from someone else's browser and sign that person in as themselves (login CSRF). The IdP
//! posts from another site, so a browser withholds the SameSite=Lax cookie from that first POST;
//! the ACS then answers with a page that posts the same form again from Jumpgate's own origin,
//! which carries the cookie. Sign-ins started at the IdP have no request to bind to: that is
//! why they are a setting of their own.
//!
//! A refused sign-in shows a plain page with a reference that also appears in the log with the
//! reason, never the XML or an internal error.

use app::api::backend::RequestContext;
use axum::Form;
use axum::extract::{ConnectInfo, Extension, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use rand::RngCore;
use samael::schema::{AuthnRequest, Issuer};
use samael::traits::ToXml;
use serde::Deserialize;
use std::net::SocketAddr;
use tracing::{error, info};

use super::acs::{self, Expect, Refusal};
use super::metadata::{SsoBinding, sp_xml};
use super::users::{AccountRefusal, account_for, apply_group_mappings};
use super::{IdpConfig, log_refusal, safe_return_path};
use crate::http::HttpState;
use crate::notice::{escape, page, page_with_link};
use crate::settings;
use crate::storage;

/// How long a sign-in may take at the IdP before its request is forgotten.
pub const REQUEST_LIFETIME_SECONDS: i64 = 10 * 60;

pub async fn sp_metadata(State(st): State<HttpState>) -> Response {
    let signs = match settings::get_bool(st.auth.storage(), settings::SAML_SIGN_REQUESTS).await {
        Ok(on) => on,
        Err(e) => return internal(e),
    };
    match sp_xml(&st.sp, signs) {
        Ok(xml) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/samlmetadata+xml"),
            )],
            xml,
        )
            .into_response(),
        Err(e) => {
            error!(error = %e, "could not write the SP metadata");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
        }
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(rename = "return")]
    return_to: Option<String>,
    test: Option<String>,
}

pub async fn login(
    State(st): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(ctx): Extension<RequestContext>,
    Query(q): Query<LoginQuery>,
) -> Response {
    let storage = st.auth.storage();
    let test_for_user = if q.test.is_some() {
        match st.auth.require_admin(&ctx).await {
            Ok(me) => Some(me.user.id),
            Err(_) => {
                return page(
                    StatusCode::FORBIDDEN,
                    "Administrators only",
                    "A test sign-in is for administrators signed in to the panel.",
                );
            }
        }
    } else {
        None
    };
    let idp = match IdpConfig::load(storage).await {
        Ok(idp) => idp,
        Err(e) => return internal(e),
    };
    if !idp.is_complete() {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Single sign-on is not set up",
            "This Jumpgate has no identity provider configured yet. Administrators can sign in \
             with their password at /login/local and configure it under Settings.",
        );
    }
    let return_to = if test_for_user.is_some() {
        format!("{}#saml-test", app::paths::ADMIN_SETTINGS)
    } else {
        q.return_to
            .as_deref()
            .and_then(safe_return_path)
            .unwrap_or_else(|| "/".into())
    };
    let id = request_id();
    let secret = crate::auth::session::new_token();
    if let Err(e) = storage
        .insert_saml_request(
            &id,
            &return_to,
            test_for_user,
            &crate::auth::session::hash_token(&secret),
        )
        .await
    {
        return internal(e);
    }
    let binding = st
        .auth
        .cookies()
        .saml_request_cookie(&id, &secret, REQUEST_LIFETIME_SECONDS);
    let request = AuthnRequest {
        id: id.clone(),
        issue_instant: chrono::Utc::now(),
        version: "2.0".into(),
        destination: Some(idp.sso_url.clone()),
        assertion_consumer_service_url: Some(st.sp.acs.clone()),
        protocol_binding: Some(samael::metadata::HTTP_POST_BINDING.into()),
        issuer: Some(Issuer {
            value: Some(st.sp.entity_id.clone()),
            ..Issuer::default()
        }),
        ..AuthnRequest::default()
    };
    info!(client.ip = %peer.ip(), request = %id, "sending a browser to the identity provider");
    let mut resp = match idp.sso_binding {
        SsoBinding::Redirect if idp.sign_requests => {
            let Some(key) = st.sp.signing.as_ref() else {
                return internal("request signing is on but Jumpgate has no signing key");
            };
            match request.signed_redirect(&id, &key.key) {
                Ok(Some(url)) => Redirect::to(url.as_str()).into_response(),
                Ok(None) => internal("the AuthnRequest has no destination"),
                Err(e) => internal(e),
            }
        }
        SsoBinding::Redirect => match request.redirect(&id) {
            Ok(Some(url)) => Redirect::to(url.as_str()).into_response(),
            Ok(None) => internal("the AuthnRequest has no destination"),
            Err(e) => internal(e),
        },
        SsoBinding::Post => {
            let key = if idp.sign_requests {
                match st.sp.signing.clone() {
                    Some(key) => Some(key),
                    None => {
                        return internal("request signing is on but Jumpgate has no signing key");
                    }
                }
            } else {
                None
            };
            // libxmlsec does the signing, behind its global lock: off the async workers.
            let written =
                tokio::task::spawn_blocking(move || post_binding_xml(request, key.as_deref()))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r);
            match written {
                Ok(xml) => {
                    use base64::Engine;
                    let encoded = base64::engine::general_purpose::STANDARD.encode(xml.as_bytes());
                    auto_post(
                        &idp.sso_url,
                        &[("SAMLRequest", &encoded), ("RelayState", &id)],
                    )
                }
                Err(e) => internal(e),
            }
        }
    };
    if (resp.status().is_redirection() || resp.status().is_success())
        && let Ok(v) = HeaderValue::from_str(&binding)
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// The AuthnRequest for the HTTP-POST binding: with `key`, an enveloped XML signature
/// (RSA-SHA256, SHA-256 digest) by samael and libxmlsec, with Jumpgate's certificate in it.
fn post_binding_xml(
    mut request: AuthnRequest,
    key: Option<&super::sp_key::SpKey>,
) -> Result<String, String> {
    let Some(key) = key else {
        return request.to_string().map_err(|e| format!("{e:?}"));
    };
    let mut signature =
        samael::signature::Signature::template(&request.id, &key.cert_der.clone().into());
    // samael's template digests with SHA-1, which IdPs rightly refuse nowadays.
    for reference in &mut signature.signed_info.reference {
        reference.digest_method.algorithm = samael::signature::DigestAlgorithm::Sha256;
    }
    request.signature = Some(signature);
    let der = key.key.private_key_to_der().map_err(|e| e.to_string())?;
    request.to_signed_xml(&der).map_err(|e| e.to_string())
}

#[derive(Deserialize)]
pub struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
    /// Set on the second post, the one Jumpgate's own page makes to bring the browser's cookie.
    #[serde(rename = "jumpgate_reposted")]
    reposted: Option<String>,
}

pub async fn acs(
    State(st): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<AcsForm>,
) -> Response {
    let ip = peer.ip();
    let reference = short_reference();
    let storage = st.auth.storage().clone();
    let Some(response) = form.saml_response.filter(|r| !r.is_empty()) else {
        return refused(
            &Refusal::Malformed("no SAMLResponse field".into()),
            ip,
            &reference,
        );
    };
    let idp = match IdpConfig::load(&storage).await {
        Ok(idp) => idp,
        Err(e) => return internal(e),
    };
    if !idp.is_complete() {
        return refused(&Refusal::NotConfigured, ip, &reference);
    }

    // Which request this answers decides how InResponseTo is checked.
    let relay = form.relay_state.unwrap_or_default();
    let since = storage::now() - REQUEST_LIFETIME_SECONDS;
    let open_request = if relay.is_empty() || relay.len() > 80 {
        None
    } else {
        match storage.open_saml_request(&relay, since).await {
            Ok(found) => found,
            Err(e) => return internal(e),
        }
    };
    if let Some(request) = &open_request {
        let cookies = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join("; ");
        let name = st.auth.cookies().saml_request_cookie_name(&relay);
        match crate::auth::session::read_cookie(&cookies, &name) {
            Some(secret) => {
                let presented = crate::auth::session::hash_token(&secret);
                let matches = request.browser_hash.as_deref().is_some_and(|stored| {
                    bool::from(subtle::ConstantTimeEq::ct_eq(
                        stored.as_bytes(),
                        presented.as_bytes(),
                    ))
                });
                if !matches {
                    return refused(&Refusal::OtherBrowser, ip, &reference);
                }
            }
            // The IdP's cross-site POST came without the cookie: post again from here once.
            None if form.reposted.is_none() => {
                return auto_post(
                    app::paths::SAML_ACS,
                    &[
                        ("SAMLResponse", &response),
                        ("RelayState", &relay),
                        ("jumpgate_reposted", "1"),
                    ],
                );
            }
            None => return refused(&Refusal::OtherBrowser, ip, &reference),
        }
    }
    let test_for_user = open_request.as_ref().and_then(|r| r.test_for_user);
    let (expect_id, return_to) = match open_request {
        Some(request) => (Some(relay.clone()), request.return_to),
        None if idp.allow_idp_initiated => {
            (None, safe_return_path(&relay).unwrap_or_else(|| "/".into()))
        }
        None if relay.starts_with("_jg") => {
            return refused(&Refusal::UnknownRequest, ip, &reference);
        }
        None => return refused(&Refusal::IdpInitiatedOff, ip, &reference),
    };

    let sp = st.sp.clone();
    let idp_for_check = idp.clone();
    let expect_owned = expect_id.clone();
    let verified = tokio::task::spawn_blocking(move || {
        let expect = match &expect_owned {
            Some(id) => Expect::Request(id),
            None => Expect::Unsolicited,
        };
        acs::verify(&response, &idp_for_check, &sp, expect)
    })
    .await;
    let verified = match verified {
        Ok(Ok(v)) => v,
        Ok(Err(refusal)) => {
            if let Some(admin) = test_for_user {
                // The administrator asked to see this: record the reason for the page.
                let _ = storage.consume_saml_request(&relay).await;
                return record_test(&storage, admin, Err(refusal.to_string()), &return_to).await;
            }
            return refused(&refusal, ip, &reference);
        }
        Err(e) => return internal(e),
    };

    // Each request is answered once, and each assertion is used once, on every node.
    if let Some(id) = &expect_id {
        match storage.consume_saml_request(id).await {
            Ok(true) => {}
            Ok(false) => return refused(&Refusal::UnknownRequest, ip, &reference),
            Err(e) => return internal(e),
        }
    }
    match storage
        .remember_assertion(&verified.assertion_id, verified.valid_until)
        .await
    {
        Ok(true) => {}
        Ok(false) => return refused(&Refusal::Replay, ip, &reference),
        Err(e) => return internal(e),
    }

    if let Some(admin) = test_for_user {
        return record_test(&storage, admin, Ok(&verified), &return_to).await;
    }

    let user = match account_for(&storage, &idp, &verified).await {
        Ok(u) => u,
        Err(AccountRefusal::Storage(e)) => return internal(e),
        Err(refusal) => {
            tracing::warn!(client.ip = %ip, reference = %reference, email = %verified.email,
                reason = %refusal, "SAML sign-in refused for the account");
            return page(
                StatusCode::FORBIDDEN,
                "Sign-in failed",
                &format!("{refusal} (Reference: {reference}.)"),
            );
        }
    };
    if let Err(e) = apply_group_mappings(&storage, &user, &verified.groups).await {
        return internal(e);
    }
    let subject = verified
        .name_id
        .clone()
        .map(|name_id| storage::SamlSubject {
            name_id,
            name_id_format: verified.name_id_format.clone(),
            session_index: verified.session_index.clone(),
        });
    let cookies = match st
        .auth
        .start_saml_session(&user, ip, subject.as_ref())
        .await
    {
        Ok(c) => c,
        Err(e) => return internal(e),
    };
    let mut resp = Redirect::to(&return_to).into_response();
    let spent = expect_id
        .as_deref()
        .map(|id| st.auth.cookies().expired_saml_request_cookie(id));
    for c in cookies.into_iter().chain(spent) {
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// After signing out of a panel that signs in through SAML: going to the sign-in page would send
/// the browser to the identity provider, which would sign the person straight back in.
/// `at_idp_too` is true once the IdP confirmed ending its own session (single logout).
pub fn signed_out(at_idp_too: bool) -> Response {
    let text = if at_idp_too {
        "You are signed out of Jumpgate and of your identity provider."
    } else {
        "You are signed out of Jumpgate. Your identity provider may still have you signed in; \
         sign out there too on a shared computer."
    };
    page_with_link(
        StatusCode::OK,
        "Signed out",
        text,
        (app::paths::SAML_LOGIN, "Sign in again"),
    )
}

/// Stores what a test sign-in produced for the administrator who asked, then shows it to them.
async fn record_test(
    storage: &storage::Storage,
    admin: i64,
    outcome: Result<&acs::Verified, String>,
    return_to: &str,
) -> Response {
    let result = match outcome {
        Ok(v) => {
            let would_be = match storage.user_by_email(&v.email).await {
                Ok(Some(u)) => format!("signs in as the existing user {}", u.username),
                Ok(None) => "has no account yet (auto-create decides)".to_string(),
                Err(e) => return internal(e),
            };
            serde_json::json!({
                "ok": true,
                "email": v.email,
                "name_id": v.name_id,
                "account": would_be,
                "groups": v.groups,
                "attributes": v.attributes,
            })
        }
        Err(reason) => serde_json::json!({ "ok": false, "reason": reason }),
    };
    if let Err(e) = storage
        .save_saml_test_result(admin, &result.to_string())
        .await
    {
        return internal(e);
    }
    info!(
        admin,
        ok = result["ok"].as_bool(),
        "SAML test sign-in recorded"
    );
    Redirect::to(return_to).into_response()
}

/// 128 random bits, prefixed so IDs are valid XML IDs and recognisably ours.
pub(super) fn request_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    format!("_jg{}", hex::encode(bytes))
}

pub(super) fn short_reference() -> String {
    let mut bytes = [0u8; 4];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn refused(reason: &Refusal, ip: std::net::IpAddr, reference: &str) -> Response {
    log_refusal(reason, ip, reference);
    page(
        StatusCode::FORBIDDEN,
        "Sign-in failed",
        &format!(
            "Jumpgate could not accept the sign-in from your identity provider. Try again from \
             the panel's address; if it keeps failing, ask your Jumpgate administrator and give \
             them this reference: {reference}."
        ),
    )
}

pub(super) fn internal(e: impl std::fmt::Display) -> Response {
    error!(error = %e, "SAML endpoint failed");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Jumpgate could not complete the sign-in. Try again; if it persists, ask your \
         administrator to check the server log.",
    )
}

/// A form of hidden `fields` that the browser submits by itself to `action` (the HTTP-POST
/// binding, and the ACS's second post).
fn auto_post(action: &str, fields: &[(&str, &str)]) -> Response {
    let inputs: String = fields
        .iter()
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(name),
                escape(value)
            )
        })
        .collect();
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Signing in – Jumpgate</title></head>\
         <body onload=\"document.forms[0].submit()\"><form method=\"post\" action=\"{a}\">{inputs}\
         <noscript><button type=\"submit\">Continue to sign-in</button></noscript></form></body></html>",
        a = escape(action),
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}
