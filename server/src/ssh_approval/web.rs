//! The approval pages:
//! - `GET /ssh/approve`: a form to type the code an SSH client shows;
//! - `GET /ssh/approve/CODE`: what asks to sign in (account, client address, time), with
//!   Approve and Deny;
//! - `POST /ssh/approve/CODE`: the decision (the panel's CSRF check applies).
//!
//! Only a fully signed-in web session that came through SAML may decide, and only for its own
//! account. Anyone else is sent through the identity provider first, which also replaces a
//! password session.

use app::api::CSRF_FIELD;
use app::api::backend::RequestContext;
use axum::Form;
use axum::extract::{ConnectInfo, Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::net::SocketAddr;
use tracing::{error, info, warn};

use super::{display, enabled, hash, normalize};
use crate::auth::Authenticated;
use crate::http::HttpState;
use crate::notice::{escape, html, page};
use crate::storage::{ApprovalRow, now};
use app::api::AuthMethod;

#[derive(Deserialize)]
pub struct EntryQuery {
    code: Option<String>,
}

#[derive(Deserialize)]
pub struct Decision {
    decision: String,
}

/// Why a code cannot be decided here. Each tells the person what to do next.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    Off,
    Unknown,
    Decided,
    OtherAccount,
}

impl Refusal {
    fn page(&self) -> Response {
        let (status, title, text) = match self {
            Refusal::Off => (
                StatusCode::NOT_FOUND,
                "Approval is turned off",
                "This Jumpgate does not approve SSH sign-ins in the browser. Sign in with your \
                 SSH client's prompts, or ask your administrator.",
            ),
            Refusal::Unknown => (
                StatusCode::NOT_FOUND,
                "Unknown or expired code",
                "This code is not known or has expired. Connect with your SSH client again to \
                 get a new one.",
            ),
            Refusal::Decided => (
                StatusCode::GONE,
                "Code already used",
                "This code was already approved or denied. Each code works once; connect again \
                 to get a new one.",
            ),
            Refusal::OtherAccount => (
                StatusCode::FORBIDDEN,
                "Not your sign-in",
                "This code asks to sign in to another account. Only that account's owner can \
                 approve it. If someone sent you this link, do not approve anything they send.",
            ),
        };
        page(status, title, text)
    }
}

/// The signed-in SAML user, or the response that gets them there.
async fn approver(
    st: &HttpState,
    ctx: &RequestContext,
    back_to: &str,
) -> Result<Authenticated, Response> {
    match st.auth.authenticate(ctx.session_token.as_deref()).await {
        Ok(Some(a)) if a.session.auth_method == AuthMethod::Saml => Ok(a),
        Ok(_) => {
            let encoded: String = form_urlencoded::byte_serialize(back_to.as_bytes()).collect();
            Err(
                Redirect::to(&format!("{}?return={encoded}", app::paths::SAML_LOGIN))
                    .into_response(),
            )
        }
        Err(e) => Err(internal(e)),
    }
}

/// A pending request that the signed-in person may decide.
struct Decidable {
    who: Authenticated,
    row: ApprovalRow,
    /// The code in canonical form.
    code: String,
    /// This request's page.
    here: String,
}

/// The checks both pages make: approval on, a well-formed code, a SAML session (else through
/// the IdP and back), a pending unexpired request, and its login belonging to that session.
async fn decidable(
    st: &HttpState,
    ctx: &RequestContext,
    peer: SocketAddr,
    raw_code: &str,
) -> Result<Decidable, Response> {
    let storage = st.auth.storage();
    if !enabled(storage).await {
        return Err(Refusal::Off.page());
    }
    let Some(code) = normalize(raw_code) else {
        return Err(Refusal::Unknown.page());
    };
    let here = format!("{}/{}", app::paths::SSH_APPROVE, display(&code));
    let who = approver(st, ctx, &here).await?;
    let refuse = |refusal: Refusal| {
        warn!(user = %who.user.username, client.ip = %peer.ip(), refusal = ?refusal, "SSH approval page refused");
        refusal.page()
    };
    let row = match storage.ssh_approval(&hash(&code)).await {
        Ok(Some(row)) if row.expires_at > now() => row,
        Ok(_) => return Err(refuse(Refusal::Unknown)),
        Err(e) => return Err(internal(e)),
    };
    // Told before the state, so that a stranger's guess learns nothing about the request.
    let owner = storage.user_by_login(&row.login).await.map_err(internal)?;
    if owner.map(|u| u.id) != Some(who.user.id) {
        return Err(refuse(Refusal::OtherAccount));
    }
    if row.state != "pending" {
        return Err(refuse(Refusal::Decided));
    }
    Ok(Decidable {
        who,
        row,
        code,
        here,
    })
}

/// `GET /ssh/approve[?code=...]`
pub async fn entry(
    State(st): State<HttpState>,
    Extension(ctx): Extension<RequestContext>,
    Query(q): Query<EntryQuery>,
) -> Response {
    if !enabled(st.auth.storage()).await {
        return Refusal::Off.page();
    }
    let typed = q.code.as_deref().map(str::trim).filter(|c| !c.is_empty());
    if let Some(code) = typed.and_then(normalize) {
        return Redirect::to(&format!("{}/{}", app::paths::SSH_APPROVE, display(&code)))
            .into_response();
    }
    if let Err(resp) = approver(&st, &ctx, app::paths::SSH_APPROVE).await {
        return resp;
    }
    let problem = if typed.is_some() {
        "<p role=\"alert\" class=\"error\">That is not a code from the gateway: it has eight \
         letters and digits, like BCDF-2345.</p>"
    } else {
        ""
    };
    html(
        StatusCode::OK,
        "Approve an SSH sign-in",
        &format!(
            "<p>Type the code your SSH client shows.</p>{problem}\
             <form method=\"get\" action=\"{action}\"><label>Code \
             <input name=\"code\" autocomplete=\"off\" autofocus maxlength=\"20\"></label> \
             <button type=\"submit\">Continue</button></form>",
            action = app::paths::SSH_APPROVE
        ),
    )
}

/// `GET /ssh/approve/CODE`
pub async fn show(
    State(st): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(ctx): Extension<RequestContext>,
    Path(code): Path<String>,
) -> Response {
    let Decidable {
        row, code, here, ..
    } = match decidable(&st, &ctx, peer, &code).await {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    let target = row
        .target
        .as_deref()
        .map(|t| format!(" and go straight to <strong>{}</strong>", escape(t)))
        .unwrap_or_default();
    let ago = (now() - row.created_at).max(0);
    html(
        StatusCode::OK,
        "Approve an SSH sign-in",
        &format!(
            "<p>An SSH client at <strong class=\"client-ip\">{ip}</strong> asked at \
             <strong>{at}</strong> ({ago} seconds ago) to sign in as \
             <strong>{login}</strong>{target}.</p>\
             <p>Code: <strong class=\"code\">{shown}</strong>. Approve only if you started this \
             connection just now and your SSH client shows the same code.</p>\
             <form method=\"post\" action=\"{here}\">\
             <input type=\"hidden\" name=\"{csrf_field}\" value=\"{csrf}\">\
             <button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button> \
             <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>",
            ip = escape(&row.client_ip),
            at = clock(row.created_at),
            login = escape(&row.login),
            shown = display(&code),
            here = escape(&here),
            csrf_field = CSRF_FIELD,
            csrf = escape(&ctx.csrf_token),
        ),
    )
}

/// `POST /ssh/approve/CODE`
pub async fn decide(
    State(st): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(ctx): Extension<RequestContext>,
    Path(code): Path<String>,
    Form(d): Form<Decision>,
) -> Response {
    let approve = match d.decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                "Nothing decided",
                "Press Approve or Deny on the approval page.",
            );
        }
    };
    let Decidable { who, row, code, .. } = match decidable(&st, &ctx, peer, &code).await {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    match st
        .auth
        .storage()
        .decide_ssh_approval(&hash(&code), approve, who.user.id, &who.session.id_hash)
        .await
    {
        Ok(true) => {}
        // Decided or expired between the two reads.
        Ok(false) => return Refusal::Decided.page(),
        Err(e) => return internal(e),
    }
    info!(
        user = %who.user.username,
        client.ip = %peer.ip(),
        ssh_client = %row.client_ip,
        target = row.target.as_deref().unwrap_or(""),
        approved = approve,
        "SSH sign-in decided in the browser"
    );
    if approve {
        page(
            StatusCode::OK,
            "Approved",
            "Go back to your SSH client and press Enter. Signing out of Jumpgate here will end \
             that SSH connection.",
        )
    } else {
        page(
            StatusCode::OK,
            "Denied",
            "The SSH client is refused. If you did not start it, tell your administrator: \
             someone may know your user name.",
        )
    }
}

/// A Unix time as a UTC clock time with date.
fn clock(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| {
            format!(
                "{:02}:{:02}:{:02} UTC on {}",
                t.hour(),
                t.minute(),
                t.second(),
                crate::saml::certs::date(unix)
            )
        })
        .unwrap_or_else(|_| unix.to_string())
}

fn internal(e: impl std::fmt::Display) -> Response {
    error!(error = %e, "SSH approval page failed");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Jumpgate could not handle the approval. Try again; if it persists, ask your \
         administrator to check the server log.",
    )
}
