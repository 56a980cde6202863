//! The web front door without a socket: CSRF and origin checks, the sign-in redirect and the
//! machine endpoints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use jumpgate::assets::Assets;
use jumpgate::auth::{Auth, session};
use jumpgate::http::{HttpState, router};
use jumpgate::onward::Onward;
use jumpgate::panel::InventoryPanel;
use jumpgate::vault::{MasterKey, Vault};
use leptos::prelude::LeptosOptions;
use tower::ServiceExt;

async fn app() -> (axum::Router, Auth, common::TestDb) {
    let db = common::databases().await.remove(0);
    let vault = Arc::new(Vault::new(&MasterKey::generate()));
    let auth = Auth::new(db.storage.clone(), false, vault.clone());
    let dir = tempfile::tempdir().unwrap();
    let state = HttpState {
        auth: auth.clone(),
        inventory: Arc::new(InventoryPanel::new(
            auth.clone(),
            vault.clone(),
            String::new(),
        )),
        onward: Onward {
            storage: db.storage.clone(),
            vault,
            gateway_key: Arc::new(jumpgate::upstream::gateway_key(dir.path()).unwrap()),
        },
        leptos: LeptosOptions::builder().output_name("jumpgate").build(),
        public_origin: "http://gate.test".into(),
        assets: Arc::new(Assets::discover()),
        sp: Arc::new(jumpgate::saml::SpUrls::from_public_url(
            &"http://gate.test".parse().unwrap(),
        )),
    };
    (router(state), auth, db)
}

fn request(method: &str, uri: &str) -> axum::http::request::Builder {
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "gate.test")
        .extension(ConnectInfo(peer))
}

async fn body_text(resp: axum::response::Response) -> String {
    String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()).into_owned()
}

const CSRF: &str = "0123456789abcdef0123456789abcdef0123456789a";

fn login_form(csrf: &str) -> String {
    format!("csrf_token={csrf}&login=admin&password=whatever-it-is")
}

#[tokio::test]
async fn post_without_csrf_token_is_refused() {
    let (app, _, _db) = app().await;
    let resp = app
        .oneshot(
            request("POST", "/api/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::COOKIE, format!("{}={CSRF}", session::CSRF_COOKIE))
                .body(Body::from("login=admin&password=x"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(body_text(resp).await.contains("CsrfRejected"));
}

#[tokio::test]
async fn post_with_token_but_no_cookie_is_refused() {
    let (app, _, _db) = app().await;
    let resp = app
        .oneshot(
            request("POST", "/api/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(login_form(CSRF)))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn post_from_a_foreign_origin_is_refused_even_with_the_token() {
    let (app, _, _db) = app().await;
    let resp = app
        .oneshot(
            request("POST", "/api/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::ORIGIN, "https://evil.example")
                .header(header::COOKIE, format!("{}={CSRF}", session::CSRF_COOKIE))
                .body(Body::from(login_form(CSRF)))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn post_with_matching_token_reaches_the_server_function() {
    let (app, auth, _db) = app().await;
    let otp = auth.ensure_first_admin().await.unwrap().unwrap();
    let resp = app
        .oneshot(
            request("POST", "/api/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::ORIGIN, "http://gate.test")
                .header(header::COOKIE, format!("{}={CSRF}", session::CSRF_COOKIE))
                .body(Body::from(format!(
                    "csrf_token={CSRF}&login=admin&password={otp}"
                )))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookies: Vec<String> = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("jumpgate_session="))
        .expect("session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"));
    // The CSRF token is renewed at sign-in.
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("jumpgate_csrf=") && !c.contains(CSRF))
    );
}

#[tokio::test]
async fn pages_redirect_to_sign_in_without_a_session() {
    let (app, _, _db) = app().await;
    for path in ["/", "/account", "/no/such/page"] {
        let resp = app
            .clone()
            .oneshot(request("GET", path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert!(resp.status().is_redirection(), "{path}: {}", resp.status());
        assert_eq!(resp.headers()[header::LOCATION], "/login");
    }
    let resp = app
        .oneshot(request("GET", "/login").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(body_text(resp).await.contains("Sign in to Jumpgate"));
}

#[tokio::test]
async fn healthz_and_api_me_answer_machines() {
    let (app, auth, _db) = app().await;
    let resp = app
        .clone()
        .oneshot(request("GET", "/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let resp = app
        .clone()
        .oneshot(request("GET", "/api/me").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let otp = auth.ensure_first_admin().await.unwrap().unwrap();
    let ctx = app::api::backend::RequestContext {
        client_ip: "127.0.0.1".parse().unwrap(),
        session_token: None,
        csrf_token: CSRF.into(),
    };
    let (_, cookies) = app::api::backend::Backend::login(&auth, &ctx, "admin".into(), otp)
        .await
        .unwrap();
    let cookie = cookies[0].split(';').next().unwrap().to_owned();
    let resp = app
        .oneshot(
            request("GET", "/api/me")
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let me: serde_json::Value = serde_json::from_str(&body_text(resp).await).unwrap();
    assert_eq!(me["username"], "admin");
    assert_eq!(me["role"], "admin");
    assert_eq!(me["auth_method"], "password");
}
