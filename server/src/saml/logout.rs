//! Signing out with single logout:
//! - `POST /saml/logout` (the panel's Sign out button for sessions that came through SAML):
//!   ends the panel session, then, when single logout is on and the IdP has a logout URL, sends
//!   the browser there with our LogoutRequest; otherwise to the "Signed out" page.
//! - `GET /saml/slo` (HTTP-Redirect binding) and `POST /saml/slo` (HTTP-POST binding): the
//!   IdP's answer to our request (shows "Signed out"), or the IdP's own logout request (ends
//!   that person's panel sessions and answers the IdP, by HTTP-Redirect).

use app::api::AuthMethod;
use app::api::backend::{Backend, RequestContext};
use axum::Form;
use axum::extract::{ConnectInfo, Extension, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use std::net::{IpAddr, SocketAddr};
use tracing::{info, warn};

use super::slo::{self, SloRefusal};
use super::web::{internal, request_id, short_reference, signed_out};
use super::{IdpConfig, SpUrls};
use crate::http::HttpState;
use crate::notice::page;
use crate::settings;
use crate::storage::{self, Storage};

/// True when single logout is on and the IdP offers it.
async fn single_logout(storage: &Storage, idp: &IdpConfig) -> bool {
    !idp.slo_url.is_empty()
        && idp.is_complete()
        && settings::get_bool(storage, settings::SAML_SINGLE_LOGOUT)
            .await
            .unwrap_or(false)
}

/// Jumpgate's signing key, when requests are to be signed.
fn signing_key<'a>(
    idp: &IdpConfig,
    sp: &'a SpUrls,
) -> Option<&'a openssl::pkey::PKey<openssl::pkey::Private>> {
    idp.sign_requests
        .then(|| sp.signing.as_ref().map(|k| &k.key))
        .flatten()
}

/// `POST /saml/logout`
pub async fn sign_out(
    State(st): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(ctx): Extension<RequestContext>,
) -> Response {
    let storage = st.auth.storage();
    let me = match st.auth.authenticate(ctx.session_token.as_deref()).await {
        Ok(me) => me,
        Err(e) => return internal(e),
    };
    let mut next = format!("{}?signed_out=1", app::paths::LOGIN);
    if let Some(me) = me.filter(|m| m.session.auth_method == AuthMethod::Saml) {
        let idp = match IdpConfig::load(storage).await {
            Ok(idp) => idp,
            Err(e) => return internal(e),
        };
        if single_logout(storage, &idp).await {
            match idp_logout_url(storage, &idp, &st.sp, &me.session.id_hash).await {
                Ok(Some(url)) => next = url,
                Ok(None) => {}
                // The panel session ends regardless; only the IdP's stays.
                Err(e) => {
                    warn!(user = %me.user.username, error = %e, "could not start single logout")
                }
            }
        }
    }
    // Ends the session and clears the cookies, as the panel's own sign-out does.
    let cookies = match st.auth.logout(&ctx).await {
        Ok(c) => c,
        Err(e) => return internal(format!("{e:?}")),
    };
    info!(client.ip = %peer.ip(), to_idp = !next.starts_with('/'), "signed out through the SAML sign-out");
    let mut resp = Redirect::to(&next).into_response();
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// The IdP's logout URL with our request for this session's subject, or `None` when the
/// assertion named no subject.
async fn idp_logout_url(
    storage: &Storage,
    idp: &IdpConfig,
    sp: &SpUrls,
    session_hash: &str,
) -> Result<Option<String>, String> {
    let Some(subject) = storage
        .saml_subject(session_hash)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let id = request_id();
    storage
        .insert_saml_logout_request(&id)
        .await
        .map_err(|e| e.to_string())?;
    slo::logout_request_url(idp, sp, &subject, &id, signing_key(idp, sp)).map(Some)
}

fn refused(reason: &SloRefusal, ip: IpAddr) -> Response {
    let reference = short_reference();
    warn!(client.ip = %ip, reference, reason = %reason, "SAML logout message refused");
    page(
        StatusCode::FORBIDDEN,
        "Sign-out request refused",
        &format!(
            "Jumpgate could not accept this sign-out message from your identity provider. If \
             it keeps happening, give your administrator this reference: {reference}."
        ),
    )
}

/// `GET /saml/slo`
pub async fn slo(
    State(st): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let storage = st.auth.storage();
    let idp = match IdpConfig::load(storage).await {
        Ok(idp) => idp,
        Err(e) => return internal(e),
    };
    let has = |key: &str| query.split('&').any(|p| p.split('=').next() == Some(key));
    if has("SAMLResponse") {
        return answer(storage, &idp, &st.sp, &query, peer.ip()).await;
    }
    if !has("SAMLRequest") {
        return refused(&SloRefusal::NoMessage, peer.ip());
    }
    if !single_logout(storage, &idp).await {
        return refused(&SloRefusal::NotConfigured, peer.ip());
    }
    let order = slo::check_logout_request(&query, &idp, &st.sp, chrono::Utc::now());
    obey(&st, &idp, order, peer.ip()).await
}

/// The form the IdP posts with the HTTP-POST binding.
#[derive(serde::Deserialize)]
pub struct SloForm {
    #[serde(rename = "SAMLRequest")]
    saml_request: Option<String>,
    #[serde(rename = "SAMLResponse")]
    saml_response: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

/// `POST /saml/slo`
pub async fn slo_post(
    State(st): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<SloForm>,
) -> Response {
    let storage = st.auth.storage();
    let idp = match IdpConfig::load(storage).await {
        Ok(idp) => idp,
        Err(e) => return internal(e),
    };
    let sp = st.sp.clone();
    let checked_idp = idp.clone();
    // XML signatures are libxmlsec's work, behind its global lock: off the async workers.
    match (form.saml_request, form.saml_response) {
        (None, Some(response)) => {
            // Without single logout we sent no request to answer: no signature work for it.
            if !single_logout(storage, &idp).await {
                return signed_out(false);
            }
            let checked = tokio::task::spawn_blocking(move || {
                slo::check_posted_logout_response(&response, &checked_idp, &sp)
            })
            .await;
            match checked {
                Ok(checked) => answered(storage, checked, peer.ip()).await,
                Err(e) => internal(e),
            }
        }
        (Some(request), None) => {
            if !single_logout(storage, &idp).await {
                return refused(&SloRefusal::NotConfigured, peer.ip());
            }
            let relay = form.relay_state;
            let checked = tokio::task::spawn_blocking(move || {
                slo::check_posted_logout_request(
                    &request,
                    relay,
                    &checked_idp,
                    &sp,
                    chrono::Utc::now(),
                )
            })
            .await;
            match checked {
                Ok(order) => obey(&st, &idp, order, peer.ip()).await,
                Err(e) => internal(e),
            }
        }
        _ => refused(&SloRefusal::NoMessage, peer.ip()),
    }
}

/// Carries out a checked logout request from the IdP and answers it.
async fn obey(
    st: &HttpState,
    idp: &IdpConfig,
    order: Result<slo::LogoutOrder, SloRefusal>,
    ip: IpAddr,
) -> Response {
    let order = match order {
        Ok(order) => order,
        Err(reason) => return refused(&reason, ip),
    };
    let storage = st.auth.storage();
    // The ID joins the assertion IDs: a replayed logout request is caught on every node.
    let keep_until = storage::now() + 2 * slo::REQUEST_LIFETIME_SECONDS;
    match storage.remember_assertion(&order.id, keep_until).await {
        Ok(true) => {}
        Ok(false) => return refused(&SloRefusal::Replay, ip),
        Err(e) => return internal(e),
    }
    let ended = match storage
        .end_saml_sessions(&order.name_id, order.session_index.as_deref())
        .await
    {
        Ok(n) => n,
        Err(e) => return internal(e),
    };
    info!(client.ip = %ip, request = %order.id, ended, "the identity provider ended panel sessions");
    match slo::logout_response_url(idp, &st.sp, &order, &request_id(), signing_key(idp, &st.sp)) {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) => internal(e),
    }
}

/// The IdP's answer to our logout request. The panel session ended before the browser left, so
/// every outcome shows "Signed out"; only whether the IdP's session ended too differs.
async fn answer(
    storage: &Storage,
    idp: &IdpConfig,
    sp: &SpUrls,
    query: &str,
    ip: IpAddr,
) -> Response {
    answered(storage, slo::check_logout_response(query, idp, sp), ip).await
}

async fn answered(
    storage: &Storage,
    checked: Result<slo::LogoutAnswer, SloRefusal>,
    ip: IpAddr,
) -> Response {
    match checked {
        Ok(answer) => {
            let since = storage::now() - slo::REQUEST_LIFETIME_SECONDS;
            match storage
                .consume_saml_logout_request(&answer.in_response_to, since)
                .await
            {
                Ok(true) => {
                    info!(client.ip = %ip, success = answer.success, signed = answer.signed,
                        "the identity provider answered our logout request");
                    signed_out(answer.success)
                }
                Ok(false) => {
                    warn!(client.ip = %ip, request = %answer.in_response_to,
                        "a logout answer for no open request of ours");
                    signed_out(false)
                }
                Err(e) => internal(e),
            }
        }
        Err(reason) => {
            warn!(client.ip = %ip, reason = %reason, "the identity provider's logout answer was refused");
            signed_out(false)
        }
    }
}
