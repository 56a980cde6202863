//! The web front door: the axum router, the request guard (CSRF, sign-in redirect, security
//! headers), machine endpoints and static files. Pages and server functions are Leptos's.
//!
//! Every request passes [`guard`] first. It refuses state-changing requests that come from a
//! foreign origin or lack the CSRF token, sends visitors without a session to the sign-in page,
//! and hands the session cookie and client address to the server functions through a
//! [`RequestContext`] in the request's extensions.

use std::net::SocketAddr;
use std::sync::Arc;

use app::api::backend::{RequestContext, SharedBackend};
use app::api::{ApiError, CSRF_FIELD};
use app::inventory::backend::SharedInventory;
use app::paths;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::extract::{ConnectInfo, FromRef, MatchedPath, State};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use subtle::ConstantTimeEq;
use tower_http::trace::TraceLayer;
use tracing::{error, info_span, warn};

use crate::assets::Assets;
use crate::auth::{self, Auth, session};
use crate::{saml, settings};

/// Largest form body the guard reads to find the CSRF token. Panel forms are far smaller.
const MAX_FORM_BYTES: usize = 64 * 1024;
/// Largest body the assertion consumer service reads: a generous SAML response, URL-encoded.
const SAML_BODY_LIMIT: usize = 2 * saml::acs::MAX_RESPONSE_B64;

#[derive(Clone)]
pub struct HttpState {
    pub auth: Auth,
    /// Backend of the Servers and Access pages.
    pub inventory: SharedInventory,
    /// Opens target sessions for the browser console.
    pub onward: crate::onward::Onward,
    pub leptos: LeptosOptions,
    /// `scheme://host[:port]` of `web.public_url`.
    pub public_origin: String,
    pub assets: Arc<Assets>,
    /// Jumpgate's SAML service-provider URLs, derived from `web.public_url`.
    pub sp: Arc<crate::saml::SpUrls>,
}

impl FromRef<HttpState> for LeptosOptions {
    fn from_ref(state: &HttpState) -> Self {
        state.leptos.clone()
    }
}

/// Builds the whole web application. Tests drive it without a socket.
pub fn router(state: HttpState) -> Router {
    let routes = generate_route_list(app::App);
    let backend: SharedBackend = Arc::new(state.auth.clone());
    let inventory = state.inventory.clone();
    let settings_panel: app::settings::backend::SharedSettings = Arc::new(
        crate::settings_panel::SettingsPanel::new(state.auth.clone(), state.sp.clone()),
    );
    let leptos = state.leptos.clone();

    let context = {
        let backend = backend.clone();
        let leptos = leptos.clone();
        move || {
            provide_context(backend.clone());
            provide_context(inventory.clone());
            provide_context(settings_panel.clone());
            provide_context(leptos.clone());
        }
    };
    let shell = {
        let leptos = leptos.clone();
        move || app::shell(leptos.clone())
    };

    Router::new()
        .route(paths::HEALTHZ, get(healthz))
        .route(paths::API_ME, get(api_me))
        .route(paths::CONSOLE_WS, get(crate::webssh::upgrade))
        .route(paths::SAML_METADATA, get(saml::web::sp_metadata))
        .route(paths::SAML_LOGIN, get(saml::web::login))
        .route(paths::SAML_LOGOUT, post(saml::logout::sign_out))
        .route(
            paths::SAML_SLO,
            get(saml::logout::slo).post(saml::logout::slo_post),
        )
        .route(paths::SSH_APPROVE, get(crate::ssh_approval::web::entry))
        .route(
            "/ssh/approve/{code}",
            get(crate::ssh_approval::web::show).post(crate::ssh_approval::web::decide),
        )
        .route(
            paths::SAML_ACS,
            post(saml::web::acs).layer(DefaultBodyLimit::max(SAML_BODY_LIMIT)),
        )
        .leptos_routes_with_context(&state, routes, context.clone(), shell.clone())
        .fallback(move |State(st): State<HttpState>, req: Request<Body>| {
            let render =
                leptos_axum::render_app_to_stream_with_context(context.clone(), shell.clone());
            async move { fallback(st, req, render).await }
        })
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
                // The route template, never the raw URL: query strings may carry tokens.
                let route = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map(|m| m.as_str().to_owned())
                    .unwrap_or_else(|| "(unmatched)".into());
                let client = req
                    .extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip().to_string())
                    .unwrap_or_default();
                info_span!("http", method = %req.method(), route = %route, client.ip = %client)
            }),
        )
        .with_state(state)
}

async fn healthz(State(st): State<HttpState>) -> Response {
    match st.auth.storage().ping().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            error!(error = %e, "health check: database unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

async fn api_me(State(st): State<HttpState>, req: Request<Body>) -> Response {
    let token = req
        .extensions()
        .get::<RequestContext>()
        .and_then(|c| c.session_token.clone());
    match st.auth.authenticate(token.as_deref()).await {
        Ok(Some(a)) => Json(auth::me(&a.user, a.session.auth_method)).into_response(),
        Ok(None) => (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({ "error": "not signed in" })),
        )
            .into_response(),
        Err(e) => {
            error!(error = %e, "GET /api/me failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(serde_json::json!({ "error": "internal error" })),
            )
                .into_response()
        }
    }
}

/// Static files first; anything else is a page the app does not know, answered with its
/// not-found page and a 404 status.
async fn fallback<F, Fut>(st: HttpState, req: Request<Body>, render: F) -> Response
where
    F: Fn(Request<Body>) -> Fut,
    Fut: std::future::Future<Output = Response<Body>>,
{
    if matches!(*req.method(), Method::GET | Method::HEAD)
        && let Some(resp) = st.assets.response(req.uri().path())
    {
        return resp;
    }
    let mut resp = render(req).await;
    *resp.status_mut() = StatusCode::NOT_FOUND;
    resp
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Request guard: CSRF and origin checks, the sign-in redirect, and the request context.
async fn guard(
    State(st): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request<Body>,
    next: Next,
) -> Response {
    let cookie_header = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join("; ");
    let session_token = session::read_cookie(&cookie_header, session::SESSION_COOKIE);
    let known_csrf = session::read_cookie(&cookie_header, session::CSRF_COOKIE)
        .filter(|t| t.len() >= 32 && t.len() <= 128);
    let issue_csrf = known_csrf.is_none();
    let csrf_token = known_csrf.unwrap_or_else(session::new_token);
    let path = req.uri().path().to_owned();

    let mut req = req;
    // The identity provider posts sign-in answers and logout messages from its own site,
    // without our token; their signatures and the request bookkeeping protect those endpoints.
    let idp_post = path == paths::SAML_ACS || path == paths::SAML_SLO;
    if is_state_changing(req.method()) && !idp_post {
        if !same_origin(req.headers(), &st.public_origin) {
            warn!(client.ip = %peer.ip(), path = %path, "refused a cross-origin request");
            return refuse_csrf(&path);
        }
        let (rebuilt, supplied) = match take_csrf_token(req).await {
            Ok(pair) => pair,
            Err(resp) => return resp,
        };
        req = rebuilt;
        // A visitor who had no CSRF cookie cannot have echoed the right token.
        let matches = !issue_csrf
            && supplied
                .as_deref()
                .is_some_and(|s| bool::from(s.as_bytes().ct_eq(csrf_token.as_bytes())));
        if !matches {
            warn!(client.ip = %peer.ip(), path = %path, "refused a request without a valid CSRF token");
            return refuse_csrf(&path);
        }
    }

    req.extensions_mut().insert(RequestContext {
        client_ip: peer.ip(),
        session_token: session_token.clone(),
        csrf_token: csrf_token.clone(),
    });

    let is_read = matches!(*req.method(), Method::GET | Method::HEAD);
    if is_read && path == paths::LOGIN && sso_is_on(&st).await {
        if req.uri().query().is_some_and(|q| q.contains("signed_out")) {
            return saml::web::signed_out(false);
        }
        let to = match req.uri().query() {
            Some(q) => format!("{}?{q}", paths::SAML_LOGIN),
            None => paths::SAML_LOGIN.to_string(),
        };
        return Redirect::to(&to).into_response();
    }
    if is_read && !paths::is_public(&path) {
        match st.auth.authenticate(session_token.as_deref()).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                let to = if sso_is_on(&st).await {
                    let wanted = req
                        .uri()
                        .path_and_query()
                        .map(|p| p.as_str())
                        .unwrap_or("/");
                    let encoded: String =
                        form_urlencoded::byte_serialize(wanted.as_bytes()).collect();
                    format!("{}?return={encoded}", paths::SAML_LOGIN)
                } else {
                    paths::LOGIN.to_string()
                };
                return with_csrf_cookie(
                    &st,
                    Redirect::to(&to).into_response(),
                    issue_csrf,
                    &csrf_token,
                );
            }
            Err(e) => {
                error!(error = %e, "session lookup failed");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong; see the server log.\n",
                )
                    .into_response();
            }
        }
    }

    let mut resp = next.run(req).await;
    let headers = resp.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    with_csrf_cookie(&st, resp, issue_csrf, &csrf_token)
}

/// True when the panel signs people in through SAML. A database error counts as "no", which
/// leaves the password page, which still refuses wrong passwords.
async fn sso_is_on(st: &HttpState) -> bool {
    settings::get(st.auth.storage(), settings::WEB_AUTH)
        .await
        .is_ok_and(|v| v == "saml")
}

/// Sets the CSRF cookie for a first-time visitor, unless the handler already set a new one.
fn with_csrf_cookie(st: &HttpState, mut resp: Response, issue: bool, token: &str) -> Response {
    if !issue {
        return resp;
    }
    let handler_set_one = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.starts_with(&format!("{}=", session::CSRF_COOKIE)));
    if !handler_set_one && let Ok(v) = HeaderValue::from_str(&st.auth.cookies().csrf_cookie(token))
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// True unless the browser says the request comes from another site. Browsers always send
/// `Origin` on cross-origin POSTs; it must be the panel's public origin or the origin the
/// request was addressed to (so that a panel reached by another name still works).
fn same_origin(headers: &HeaderMap, public_origin: &str) -> bool {
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if origin == public_origin {
        return true;
    }
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    origin == format!("http://{host}") || origin == format!("https://{host}")
}

/// Finds the CSRF token in the `X-CSRF-Token` header or, for form posts, the `csrf_token`
/// field, and returns the request with its body intact.
async fn take_csrf_token(req: Request<Body>) -> Result<(Request<Body>, Option<String>), Response> {
    if let Some(v) = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
    {
        let v = v.to_owned();
        return Ok((req, Some(v)));
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((req, None));
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return Err((StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.\n").into_response());
        }
    };
    let token = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.into_owned());
    Ok((Request::from_parts(parts, Body::from(bytes)), token))
}

fn refuse_csrf(path: &str) -> Response {
    if path.starts_with("/api/") {
        // Server functions decode this body into the error the page shows.
        let body = serde_json::to_string(&ApiError::CsrfRejected).unwrap_or_default();
        return (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
    }
    (
        StatusCode::FORBIDDEN,
        "This request was refused: it did not carry a valid form token. Reload the page and try again.\n",
    )
        .into_response()
}
