//! SAML single sign-on against a real third-party identity provider: pysaml2's, started by the
//! test on 127.0.0.1 (server/tests/support/saml_idp.py). The panel's real router serves the SP
//! endpoints on a socket; an HTTP client plays the browser.
//!
//! Covered: metadata fetch filling the IdP fields, SP-initiated sign-in back to the page asked
//! for, IdP-initiated sign-in only when allowed, auto-create on and off, case-insensitive email
//! matching, disabled accounts; responses forged from valid ones (signature wrapping, removed
//! signature, another key, edited email, a comment inside the email, expired, not yet valid,
//! wrong audience, destination and InResponseTo, replay, DTD, oversized body), each refused for
//! its reason; the TOTP skip on native SSH with and without a live SAML web session; and SSH
//! sign-in approved in the browser (who may approve, once only, denial, and the connection
//! ending with the web session or the account).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::gateway::{Gateway, Person};
use common::panel::PanelServer;
use jumpgate::saml::acs::{self, Expect, Refusal, Verified};
use jumpgate::saml::{self, IdpConfig};
use jumpgate::settings;
use reqwest::redirect::Policy;

// ---------------------------------------------------------------------------------------------
// The identity provider process

struct Idp {
    child: Child,
    base: String,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> String {
    if let Ok(p) = std::env::var("JUMPGATE_TEST_PYTHON") {
        return p;
    }
    let cache = std::env::var("JUMPGATE_CACHE_DIR")
        .unwrap_or_else(|_| format!("{}/.cache/jumpgate", std::env::var("HOME").unwrap()));
    let p = format!("{cache}/pyvenv/bin/python");
    assert!(
        std::path::Path::new(&p).exists(),
        "{p} is missing: run scripts/setup.sh, which installs the test identity provider"
    );
    p
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Idp {
    fn start(sp_metadata_url: &str) -> Idp {
        let dir = tempfile::tempdir().unwrap();
        let mut idp = Idp::spawn(sp_metadata_url, dir.path(), &[]);
        idp._dir = Some(dir);
        idp
    }

    /// A second process signing as the same IdP (same keys and entity ID) with its clock
    /// shifted by `offset` (libfaketime syntax, such as `+1h`).
    fn skewed(&self, sp_metadata_url: &str, offset: &str) -> Idp {
        let dir = self._dir.as_ref().unwrap().path().to_path_buf();
        let entity = self.entity_id();
        Idp::spawn(
            sp_metadata_url,
            &dir,
            &["--entity-id", &entity, "--clock-offset", offset],
        )
    }

    fn spawn(sp_metadata_url: &str, dir: &std::path::Path, extra: &[&str]) -> Idp {
        let port = free_port();
        let mut child = Command::new(python())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/support/saml_idp.py"
            ))
            .arg("--port")
            .arg(port.to_string())
            .arg("--sp-metadata")
            .arg(sp_metadata_url)
            .arg("--dir")
            .arg(dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the test IdP");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("ready "),
            "the test IdP did not start: {line:?}"
        );
        Idp {
            child,
            base: line["ready ".len()..].trim().to_string(),
            _dir: None,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn entity_id(&self) -> String {
        self.url("/metadata")
    }

    fn certificate(&self, name: &str) -> String {
        std::fs::read_to_string(
            self._dir
                .as_ref()
                .unwrap()
                .path()
                .join(format!("{name}.crt")),
        )
        .unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// Logs: refusals are checked by the reason logged next to the reference the user is shown.

#[derive(Clone)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = LogBuffer(Arc::new(Mutex::new(Vec::new())));
        let writer = buffer.clone();
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        buffer
    })
}

/// The log line that carries the reference shown on a refusal page.
fn logged_reason(page: &str) -> String {
    let marker = "reference: ";
    let at = page.find(marker).expect("a reference on the refusal page") + marker.len();
    let reference: String = page[at..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    let text = String::from_utf8_lossy(&logs().0.lock().unwrap()).to_string();
    text.lines()
        .find(|l| l.contains(&reference) && l.contains("refused"))
        .unwrap_or_else(|| panic!("no log line for reference {reference}"))
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// A site: gateway storage, the panel on a socket, the IdP, and a browser-like HTTP client.

struct Site {
    gw: Gateway,
    panel: PanelServer,
    idp: Idp,
    http: reqwest::Client,
    bob: Person,
    /// The cookies that bind sign-in requests to "this browser", as a browser would keep them:
    /// (name, value) from `/saml/login` answers, sent back with answers posted to the ACS.
    jar: std::sync::Mutex<Vec<(String, String)>>,
}

/// What an IdP's auto-submitting form would post to the ACS.
#[derive(Clone, Debug)]
struct Posted {
    action: String,
    saml_response: String,
    relay_state: String,
}

impl Posted {
    fn xml(&self) -> String {
        String::from_utf8(STANDARD.decode(self.saml_response.as_bytes()).unwrap()).unwrap()
    }

    fn with_xml(&self, xml: &str) -> Posted {
        Posted {
            saml_response: STANDARD.encode(xml.as_bytes()),
            ..self.clone()
        }
    }
}

async fn site() -> Site {
    logs();
    let gw = Gateway::start().await;
    let panel = PanelServer::start(&gw).await;
    let idp = Idp::start(&panel.url("/saml/metadata"));
    let bob = gw.add_user("bob", true).await;
    let md = saml::fetch_metadata(&idp.url("/metadata")).await.unwrap();
    saml::apply_metadata(&gw.storage, &md, Some(&idp.url("/metadata")))
        .await
        .unwrap();
    gw.set(settings::WEB_AUTH, "saml").await;
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    Site {
        gw,
        panel,
        idp,
        http,
        bob,
        jar: Default::default(),
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&#43;", "+")
        .replace("&#x2B;", "+")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of attribute `attr` on the first tag of `html` that contains `marker`.
fn attr_near(html: &str, marker: &str, attr: &str) -> Option<String> {
    let at = html.find(marker)?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    let tag = &html[start..end];
    for quote in ['"', '\''] {
        let key = format!("{attr}={quote}");
        if let Some(i) = tag.find(&key) {
            let rest = &tag[i + key.len()..];
            return Some(unescape(&rest[..rest.find(quote)?]));
        }
    }
    None
}

fn posted_from(html: &str) -> Posted {
    Posted {
        action: attr_near(html, "<form", "action").expect("a form action"),
        saml_response: attr_near(html, "\"SAMLResponse\"", "value").expect("a SAMLResponse"),
        relay_state: attr_near(html, "\"RelayState\"", "value").unwrap_or_default(),
    }
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .unwrap()
        .to_string()
}

impl Site {
    /// Keeps the request-binding cookies that `resp` sets.
    fn keep_bindings(&self, resp: &reqwest::Response) {
        for value in resp.headers().get_all("set-cookie") {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if name.starts_with("jumpgate_saml_jg") && !value.is_empty() {
                self.jar
                    .lock()
                    .unwrap()
                    .push((name.to_string(), value.to_string()));
            }
        }
    }

    /// The binding cookie this browser holds for sign-in request `relay`.
    fn binding_for(&self, relay: &str) -> Option<String> {
        let name = format!("jumpgate_saml{relay}");
        let jar = self.jar.lock().unwrap();
        jar.iter()
            .find(|(n, _)| *n == name)
            .map(|(n, v)| format!("{n}={v}"))
    }

    /// Opens `path` without a session, follows the panel to the IdP and signs in there as
    /// `email`, with the IdP knobs in `knobs`; returns what the IdP would post to the ACS.
    async fn sp_initiated(&self, path: &str, email: &str, knobs: &[(&str, &str)]) -> Posted {
        let resp = self.http.get(self.panel.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 303, "{path} without a session");
        let login = location(&resp);
        assert!(login.starts_with("/saml/login"), "{login}");
        let resp = self.http.get(self.panel.url(&login)).send().await.unwrap();
        assert_eq!(resp.status(), 303, "{login}");
        self.keep_bindings(&resp);
        self.idp_answer(&location(&resp), email, knobs).await
    }

    /// Signs in at the IdP's form that `sso` (where Jumpgate sent the browser) shows.
    async fn idp_answer(&self, sso: &str, email: &str, knobs: &[(&str, &str)]) -> Posted {
        // Whichever IdP process Jumpgate sent the browser to answers.
        let base = sso.split("/sso/redirect?").next().unwrap();
        assert!(sso.contains("/sso/redirect?"), "{sso}");
        let form = self.http.get(sso).send().await.unwrap();
        assert_eq!(form.status(), 200, "the IdP refused the request");
        let form = form.text().await.unwrap();
        let key = attr_near(&form, "name='key'", "value").expect("the IdP's sign-in form");
        let mut fields = vec![("key", key.as_str()), ("email", email)];
        fields.extend_from_slice(knobs);
        let html = self
            .http
            .post(format!("{base}/sso/login"))
            .form(&fields)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        posted_from(&html)
    }

    /// The IdP's portal launching Jumpgate without a request (as the AWS access portal does).
    async fn idp_initiated(&self, idp: &Idp, email: &str, knobs: &[(&str, &str)]) -> Posted {
        let mut query = vec![("email", email)];
        query.extend_from_slice(knobs);
        let html = self
            .http
            .get(idp.url("/launch"))
            .query(&query)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        posted_from(&html)
    }

    /// Posts the IdP's answer to the ACS from the browser that started the sign-in.
    async fn post(&self, posted: &Posted) -> reqwest::Response {
        let cookie = self.binding_for(&posted.relay_state);
        self.post_with(posted, cookie.as_deref(), false).await
    }

    /// Posts an answer with the given `cookie` header; `reposted` marks the ACS's own second post.
    async fn post_with(
        &self,
        posted: &Posted,
        cookie: Option<&str>,
        reposted: bool,
    ) -> reqwest::Response {
        assert_eq!(posted.action, self.panel.url("/saml/acs"));
        let mut fields = vec![
            ("SAMLResponse", posted.saml_response.as_str()),
            ("RelayState", posted.relay_state.as_str()),
        ];
        if reposted {
            fields.push(("jumpgate_reposted", "1"));
        }
        let mut req = self.http.post(&posted.action).form(&fields);
        if let Some(cookie) = cookie {
            req = req.header("cookie", cookie);
        }
        req.send().await.unwrap()
    }

    /// Posts and expects a refusal page; returns the logged reason.
    async fn refused(&self, posted: &Posted) -> String {
        let resp = self.post(posted).await;
        assert_eq!(resp.status(), 403);
        let page = resp.text().await.unwrap();
        assert!(page.contains("Sign-in failed"), "{page}");
        assert!(
            !page.contains("<saml") && !page.contains("Assertion"),
            "{page}"
        );
        logged_reason(&page)
    }

    async fn idp_config(&self) -> IdpConfig {
        IdpConfig::load(&self.gw.storage).await.unwrap()
    }

    /// Verifies directly, answering the request named by the RelayState.
    async fn verify(&self, posted: &Posted) -> Result<Verified, Refusal> {
        let idp = self.idp_config().await;
        let expect = if posted.relay_state.is_empty() {
            Expect::Unsolicited
        } else {
            Expect::Request(&posted.relay_state)
        };
        acs::verify(&posted.saml_response, &idp, &self.panel.sp, expect)
    }

    /// Where the panel redirects a visitor without a session who opens `path`.
    async fn redirect_of(&self, path: &str) -> String {
        let resp = self.http.get(self.panel.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 303, "{path}");
        self.keep_bindings(&resp);
        location(&resp)
    }

    /// Jumpgate's SP metadata, as an IdP administrator would download it.
    async fn sp_metadata(&self) -> String {
        let resp = self.http.get(self.panel.url("/saml/metadata")).send().await;
        resp.unwrap().text().await.unwrap()
    }

    /// GET `path` on the panel with a session cookie.
    async fn get_with(&self, path: &str, cookie: &str) -> reqwest::Response {
        let resp = self
            .http
            .get(self.panel.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        self.keep_bindings(&resp);
        resp
    }

    /// A real sshd as server `web01` in group `prod`, which bob is granted.
    async fn web01_for_bob(&self) -> common::sshd::Sshd {
        let web = common::sshd::Sshd::start();
        web.authorize(&self.gw.gateway_public);
        self.gw
            .add_server(
                "web01",
                "prod",
                web.port,
                jumpgate::inventory::Credential::GatewayKey,
            )
            .await;
        self.gw.grant_group("bob", "prod").await;
        web
    }

    /// POSTs a form to `path` on the panel with a session cookie and a matching CSRF token, as
    /// the panel's own forms do.
    async fn post_form(
        &self,
        path: &str,
        cookie: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let csrf = "c".repeat(43);
        let mut form = vec![("csrf_token", csrf.as_str())];
        form.extend_from_slice(fields);
        self.http
            .post(self.panel.url(path))
            .header("cookie", format!("{cookie}; jumpgate_csrf={csrf}"))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// Signs `email` in to the panel through the IdP; returns the session cookie.
    async fn saml_cookie(&self, email: &str) -> String {
        let posted = self.sp_initiated("/", email, &[]).await;
        let resp = self.post(&posted).await;
        assert_eq!(resp.status(), 303, "{email} signs in through SAML");
        session_cookie(&resp).unwrap()
    }

    /// The account with `email`, which must exist.
    async fn user(&self, email: &str) -> jumpgate::storage::UserRow {
        self.gw
            .storage
            .user_by_email(email)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no account for {email}"))
    }

    async fn saml_session_of(&self, username: &str) -> bool {
        let user = self
            .gw
            .storage
            .user_by_username(username)
            .await
            .unwrap()
            .unwrap();
        self.gw
            .storage
            .newest_live_saml_session(user.id, 0)
            .await
            .unwrap()
            .is_some()
    }
}

fn session_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.contains("session") && !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap().to_string())
}

// ---------------------------------------------------------------------------------------------
// Set-up and sign-in

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_fills_the_identity_provider_fields() {
    let site = site().await;
    let s = &site.gw.storage;
    let get = |key: &'static str| async move { settings::get(s, key).await.unwrap() };
    assert_eq!(
        get(settings::SAML_IDP_ENTITY_ID).await,
        site.idp.entity_id()
    );
    // Redirect is preferred when the IdP offers both bindings.
    assert_eq!(
        get(settings::SAML_IDP_SSO_URL).await,
        site.idp.url("/sso/redirect")
    );
    assert_eq!(get(settings::SAML_IDP_SSO_BINDING).await, "redirect");
    assert_eq!(
        get(settings::SAML_IDP_SLO_URL).await,
        site.idp.url("/slo/redirect")
    );
    assert_eq!(
        get(settings::SAML_METADATA_URL).await,
        site.idp.url("/metadata")
    );
    let stored = saml::certs::der_all(&get(settings::SAML_IDP_CERTIFICATES).await).unwrap();
    let trusted = saml::certs::der_all(&site.idp.certificate("trusted")).unwrap();
    assert_eq!(stored, trusted);

    // Jumpgate's own metadata names the ACS at the public URL.
    let md = site.sp_metadata().await;
    assert!(md.contains(&site.panel.url("/saml/acs")), "{md}");
    assert!(md.contains(&format!(
        "entityID=\"{}\"",
        site.panel.url("/saml/metadata")
    )));

    // Without a signing certificate the configuration cannot be completed or kept.
    let err = settings::set(s, settings::SAML_IDP_CERTIFICATES, "").await;
    assert!(
        err.is_err(),
        "emptying the certificates while SAML signs people in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sp_initiated_sign_in_returns_to_the_page_asked_for() {
    let site = site().await;
    let posted = site
        .sp_initiated("/admin/servers?tab=2", "Bob@Example.Test", &[])
        .await;
    assert!(posted.relay_state.starts_with("_jg"), "{posted:?}");
    let resp = site.post(&posted).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/admin/servers?tab=2");
    let cookie = session_cookie(&resp).expect("a session cookie");
    // The email matched bob's account without regard to case; the session is marked SAML.
    assert!(site.saml_session_of("bob").await);

    // The session opens the panel.
    let resp = site.get_with("/account", &cookie).await;
    assert_eq!(resp.status(), 200);

    // The same answer again: its request was consumed.
    let reason = site.refused(&posted).await;
    assert!(
        reason.contains("unknown, expired or already answered"),
        "{reason}"
    );

    // Return paths leave the site never.
    let relay = site
        .redirect_of("/saml/login?return=//evil.example/x")
        .await;
    let id = relay
        .split("RelayState=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let since = jumpgate::storage::now() - 600;
    let back = site.gw.storage.open_saml_request(id, since).await.unwrap();
    assert_eq!(back.unwrap().return_to, "/");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_signs_in_only_the_browser_that_asked_for_it() {
    let site = site().await;
    let posted = site.sp_initiated("/account", "bob@example.test", &[]).await;
    let binding = site
        .binding_for(&posted.relay_state)
        .expect("a binding cookie");
    let refusal = |resp: reqwest::Response| async move {
        assert_eq!(resp.status(), 403);
        logged_reason(&resp.text().await.unwrap())
    };

    // The IdP posts from its own site, so the browser leaves the SameSite cookie out: the ACS
    // answers with a page that posts the same answer again from the panel's origin.
    let resp = site.post_with(&posted, None, false).await;
    assert_eq!(resp.status(), 200);
    assert!(session_cookie(&resp).is_none());
    let page = resp.text().await.unwrap();
    assert_eq!(attr_near(&page, "<form", "action").unwrap(), "/saml/acs");
    assert_eq!(
        attr_near(&page, "\"SAMLResponse\"", "value").unwrap(),
        posted.saml_response
    );
    assert_eq!(
        attr_near(&page, "\"RelayState\"", "value").unwrap(),
        posted.relay_state
    );
    assert_eq!(
        attr_near(&page, "\"jumpgate_reposted\"", "value").unwrap(),
        "1"
    );

    // Another browser (no cookie on the second post, or a cookie of its own) is refused.
    let reason = refusal(site.post_with(&posted, None, true).await).await;
    assert!(reason.contains("browser other than"), "{reason}");
    let forged = format!("jumpgate_saml{}=not-the-secret", posted.relay_state);
    let reason = refusal(site.post_with(&posted, Some(&forged), false).await).await;
    assert!(reason.contains("browser other than"), "{reason}");
    let (name, _) = binding.split_once('=').unwrap();
    let other_request = site.sp_initiated("/", "bob@example.test", &[]).await;
    let borrowed = format!(
        "{name}={}",
        site.binding_for(&other_request.relay_state)
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
    );
    let reason = refusal(site.post_with(&posted, Some(&borrowed), false).await).await;
    assert!(reason.contains("browser other than"), "{reason}");

    // None of that spent the answer: the browser that asked is signed in, and its binding
    // cookie is cleared.
    let resp = site.post_with(&posted, Some(&binding), true).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/account");
    assert!(session_cookie(&resp).is_some());
    let cleared = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with(&format!("{name}=;")) && c.contains("Max-Age=0"));
    assert!(cleared, "{:?}", resp.headers());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idp_initiated_sign_in_only_when_allowed_and_only_once() {
    let site = site().await;
    let posted = site.idp_initiated(&site.idp, "bob@example.test", &[]).await;
    assert_eq!(posted.relay_state, "");
    let reason = site.refused(&posted).await;
    assert!(reason.contains("turned off"), "{reason}");

    site.gw
        .set(settings::SAML_ALLOW_IDP_INITIATED, "true")
        .await;
    let posted = site
        .idp_initiated(&site.idp, "bob@example.test", &[("relay", "/console")])
        .await;
    let resp = site.post(&posted).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/console");
    assert!(session_cookie(&resp).is_some());

    // An assertion is good once, on every node: the replay cache is in the database.
    let reason = site.refused(&posted).await;
    assert!(reason.contains("replay"), "{reason}");

    // An unsolicited answer cannot pass for one to a request, nor the reverse.
    let solicited = site.sp_initiated("/", "bob@example.test", &[]).await;
    let as_unsolicited = Posted {
        relay_state: String::new(),
        ..solicited
    };
    let reason = site.refused(&as_unsolicited).await;
    assert!(reason.contains("InResponseTo"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_people_are_created_only_when_auto_create_is_on() {
    let site = site().await;
    let posted = site.sp_initiated("/", "carol@corp.test", &[]).await;
    let resp = site.post(&posted).await;
    assert_eq!(resp.status(), 403);
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("no Jumpgate account for carol@corp.test"),
        "{page}"
    );
    assert!(
        site.gw
            .storage
            .user_by_email("carol@corp.test")
            .await
            .unwrap()
            .is_none()
    );

    site.gw.set(settings::SAML_AUTO_CREATE, "true").await;
    let posted = site.sp_initiated("/", "carol@corp.test", &[]).await;
    let resp = site.post(&posted).await;
    assert_eq!(resp.status(), 303);
    let carol = site.user("carol@corp.test").await;
    assert_eq!(carol.username, "carol");
    assert_eq!(carol.role, "user");
    assert_eq!(carol.origin, "saml");
    assert!(carol.password_hash.is_none() && carol.security_code_hash.is_none());

    // Another carol gets a name of her own; an existing name is never taken over.
    let posted = site.sp_initiated("/", "carol@other.test", &[]).await;
    assert_eq!(site.post(&posted).await.status(), 303);
    let other = site.user("carol@other.test").await;
    assert_eq!(other.username, "carol2");
    let posted = site.sp_initiated("/", "bob@elsewhere.test", &[]).await;
    assert_eq!(site.post(&posted).await.status(), 303);
    let bob2 = site.user("bob@elsewhere.test").await;
    assert_ne!(bob2.username, "bob");

    // Disabled accounts are refused even with a valid assertion.
    site.gw
        .storage
        .set_user_status(carol.id, "disabled")
        .await
        .unwrap();
    let posted = site.sp_initiated("/", "carol@corp.test", &[]).await;
    let resp = site.post(&posted).await;
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("disabled"));
}

// ---------------------------------------------------------------------------------------------
// Forged and faulty responses

/// The namespace prefix a document uses for `uri` (pysaml2 writes ns0, ns1, ...).
fn prefix(xml: &str, uri: &str) -> String {
    let at = xml
        .find(&format!("=\"{uri}\""))
        .expect("namespace declared");
    let decl = &xml[..at];
    decl[decl.rfind("xmlns:").unwrap() + "xmlns:".len()..].to_string()
}

/// Byte span of the first element `qname` at or after `from` (no nested same-name elements).
fn span(xml: &str, qname: &str, from: usize) -> (usize, usize) {
    let start = from + xml[from..].find(&format!("<{qname}")).expect(qname);
    let close = format!("</{qname}>");
    let end = start + xml[start..].find(&close).expect("closing tag") + close.len();
    (start, end)
}

struct Parts {
    saml: String,
    ds: String,
    assertion: (usize, usize),
    response_signature: (usize, usize),
}

fn parts(xml: &str) -> Parts {
    let saml = prefix(xml, "urn:oasis:names:tc:SAML:2.0:assertion");
    let ds = prefix(xml, "http://www.w3.org/2000/09/xmldsig#");
    let assertion = span(xml, &format!("{saml}:Assertion"), 0);
    let response_signature = span(xml, &format!("{ds}:Signature"), 0);
    assert!(
        response_signature.1 < assertion.0,
        "pysaml2 signs the response first"
    );
    Parts {
        saml,
        ds,
        assertion,
        response_signature,
    }
}

fn cut(xml: &str, (a, b): (usize, usize)) -> String {
    format!("{}{}", &xml[..a], &xml[b..])
}

fn attribute_value(xml: &str, name: &str) -> String {
    let marker = format!(" {name}=\"");
    let at = xml.find(&marker).unwrap() + marker.len();
    xml[at..at + xml[at..].find('"').unwrap()].to_string()
}

/// The assertion with the email swapped, a new ID and no signature: what an attacker writes.
fn evil_assertion(xml: &str, p: &Parts, genuine: &str, id: &str) -> String {
    let original = &xml[p.assertion.0..p.assertion.1];
    let sig = span(original, &format!("{}:Signature", p.ds), 0);
    let unsigned = cut(original, sig);
    let old_id = attribute_value(&unsigned, "ID");
    unsigned
        .replace(genuine, "admin@example.test")
        .replace(&format!("ID=\"{old_id}\""), &format!("ID=\"{id}\""))
}

/// Signature-wrapping variants of a response signed twice (response and assertion), named after
/// where the attacker's content and the signed original sit.
fn wrapping_variants(xml: &str, genuine: &str) -> Vec<(&'static str, String)> {
    let p = parts(xml);
    let original = xml[p.assertion.0..p.assertion.1].to_string();
    let original_id = attribute_value(&original, "ID");
    let evil = evil_assertion(xml, &p, genuine, "_evil");
    let unsigned_response = cut(xml, p.response_signature);
    let q = parts_without_response_signature(&unsigned_response, &p);
    let mut out = Vec::new();

    // Evil assertion beside the signed one, before and after.
    out.push((
        "evil assertion before the signed one",
        insert(&unsigned_response, q.0, &evil),
    ));
    out.push((
        "evil assertion after the signed one",
        insert(&unsigned_response, q.1, &evil),
    ));
    // Evil assertion reusing the signed one's ID, placed first.
    let same_id = evil.replace("ID=\"_evil\"", &format!("ID=\"{original_id}\""));
    out.push((
        "evil assertion with the signed one's ID",
        insert(&unsigned_response, q.0, &same_id),
    ));
    // The signed assertion wrapped inside the evil one (after its Issuer).
    let issuer_end = evil.find(&format!("</{}:Issuer>", p.saml)).unwrap()
        + format!("</{}:Issuer>", p.saml).len();
    let wrapping = format!("{}{}{}", &evil[..issuer_end], original, &evil[issuer_end..]);
    out.push((
        "signed assertion inside the evil one",
        format!(
            "{}{}{}",
            &unsigned_response[..q.0],
            wrapping,
            &unsigned_response[q.1..]
        ),
    ));
    // The signed assertion moved into an Object of the evil assertion's copied signature.
    let a_sig = span(&original, &format!("{}:Signature", p.ds), 0);
    let sig = &original[a_sig.0..a_sig.1];
    let close = format!("</{}:Signature>", p.ds);
    let sig_with_object = format!(
        "{}<{ds}:Object>{original}</{ds}:Object>{close}",
        &sig[..sig.len() - close.len()],
        ds = p.ds
    );
    let evil_with_sig = format!(
        "{}{}{}",
        &evil[..issuer_end],
        sig_with_object,
        &evil[issuer_end..]
    );
    out.push((
        "signed assertion inside an Object of the evil one's signature",
        format!(
            "{}{}{}",
            &unsigned_response[..q.0],
            evil_with_sig,
            &unsigned_response[q.1..]
        ),
    ));
    // Response level: a new outer response carrying the evil assertion, with the whole signed
    // original response inside its signature's Object, or beside its children.
    let response_sig = &xml[p.response_signature.0..p.response_signature.1];
    let with_object = format!(
        "{}<{ds}:Object>{body}</{ds}:Object>{close}",
        &response_sig[..response_sig.len() - close.len()],
        ds = p.ds,
        body = strip_declaration(xml)
    );
    let outer_evil = |inner: &str| {
        let mut outer = strip_declaration(&unsigned_response).replacen(
            &format!("ID=\"{}\"", attribute_value(xml, "ID")),
            "ID=\"_evilresponse\"",
            1,
        );
        let (a, b) = parts_without_response_signature(&outer, &p);
        outer = format!("{}{}{}", &outer[..a], evil, &outer[b..]);
        let issuer_close = format!("</{}:Issuer>", p.saml);
        let at = outer.find(&issuer_close).unwrap() + issuer_close.len();
        format!("{}{}{}", &outer[..at], inner, &outer[at..])
    };
    out.push((
        "signed response inside the signature Object of an evil response",
        outer_evil(&with_object),
    ));
    out.push((
        "signed response beside the children of an evil response",
        outer_evil(strip_declaration(xml)),
    ));
    out
}

fn strip_declaration(xml: &str) -> &str {
    match xml.strip_prefix("<?xml") {
        Some(rest) => rest[rest.find("?>").unwrap() + 2..].trim_start(),
        None => xml,
    }
}

/// Where the assertion sits once the response signature has been cut out.
fn parts_without_response_signature(xml: &str, p: &Parts) -> (usize, usize) {
    span(xml, &format!("{}:Assertion", p.saml), 0)
}

fn insert(xml: &str, at: usize, what: &str) -> String {
    format!("{}{}{}", &xml[..at], what, &xml[at..])
}

/// Refused, or at worst accepted as exactly what was signed: never as the attacker's email.
fn assert_not_as_attacker(case: &str, result: &Result<Verified, Refusal>, genuine: &str) {
    match result {
        Err(_) => {}
        Ok(v) => assert_eq!(v.email, genuine, "{case}: signed in as {}", v.email),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_responses_are_refused_for_their_reason() {
    let site = site().await;
    let genuine = "bob@example.test";
    let posted = site.sp_initiated("/", genuine, &[]).await;
    let valid = site
        .verify(&posted)
        .await
        .expect("the untouched response verifies");
    assert_eq!(valid.email, genuine);
    let xml = posted.xml();

    // Signature wrapping: every variant keeps the signed parts intact and adds its own.
    for (case, forged) in wrapping_variants(&xml, genuine) {
        let result = site.verify(&posted.with_xml(&forged)).await;
        assert_not_as_attacker(case, &result, genuine);
        assert!(
            matches!(result, Err(Refusal::Structure { .. })),
            "{case}: {:?}",
            result.map(|v| v.email)
        );
    }

    // Signatures removed.
    let p = parts(&xml);
    let no_response_sig = cut(&xml, p.response_signature);
    let q = parts_without_response_signature(&no_response_sig, &p);
    let assertion = &no_response_sig[q.0..q.1];
    let a_sig = span(assertion, &format!("{}:Signature", p.ds), 0);
    let bare = format!(
        "{}{}{}",
        &no_response_sig[..q.0],
        cut(assertion, a_sig),
        &no_response_sig[q.1..]
    );
    let result = site.verify(&posted.with_xml(&bare)).await;
    assert!(matches!(result, Err(Refusal::Signature)), "{result:?}");
    // One good signature (on the assertion) is enough.
    let result = site.verify(&posted.with_xml(&no_response_sig)).await;
    assert_eq!(result.unwrap().email, genuine);

    // The email changed after signing.
    let edited = xml.replace(genuine, "admin@example.test");
    let result = site.verify(&posted.with_xml(&edited)).await;
    assert!(matches!(result, Err(Refusal::Signature)), "{result:?}");

    // A comment inside the email: canonicalisation drops comments, so the signature still
    // holds; the address used must be the whole one that was signed.
    let long = "bob@example.test.evil.test";
    let signed_long = site.sp_initiated("/", long, &[]).await;
    let commented = signed_long
        .xml()
        .replace(long, "bob@example.test<!---->.evil.test");
    let result = site.verify(&signed_long.with_xml(&commented)).await;
    match &result {
        Ok(v) => assert_eq!(v.email, long),
        Err(e) => assert!(
            matches!(e, Refusal::Signature | Refusal::Malformed(_)),
            "{e:?}"
        ),
    }

    // Signed by a key the configuration does not trust.
    let rogue = site
        .sp_initiated("/", genuine, &[("signer", "rogue")])
        .await;
    assert!(matches!(site.verify(&rogue).await, Err(Refusal::Signature)));

    // SHA-1 signatures are not accepted.
    let weak = site.sp_initiated("/", genuine, &[("weak", "1")]).await;
    let result = site.verify(&weak).await;
    assert!(result.is_err(), "{result:?}");

    // Time: expired (beyond the allowed clock skew), and from an IdP whose clock runs an hour
    // ahead.
    let expired = site
        .sp_initiated("/", genuine, &[("lifetime", "-600")])
        .await;
    let result = site.verify(&expired).await;
    assert!(matches!(result, Err(Refusal::Expired)), "{result:?}");
    let ahead = site.idp.skewed(&site.panel.url("/saml/metadata"), "+1h");
    site.gw
        .set(settings::SAML_ALLOW_IDP_INITIATED, "true")
        .await;
    let future = site.idp_initiated(&ahead, genuine, &[]).await;
    let result = site.verify(&future).await;
    assert!(matches!(result, Err(Refusal::NotYetValid)), "{result:?}");
    // Control: the same IdP on time is accepted unsolicited.
    let now = site.idp_initiated(&site.idp, genuine, &[]).await;
    assert_eq!(site.verify(&now).await.unwrap().email, genuine);

    // Addressed elsewhere.
    let other = site
        .sp_initiated("/", genuine, &[("audience", "other")])
        .await;
    let result = site.verify(&other).await;
    assert!(matches!(result, Err(Refusal::Audience)), "{result:?}");
    let elsewhere = site
        .sp_initiated(
            "/",
            genuine,
            &[("destination", "https://elsewhere.test/saml/acs")],
        )
        .await;
    let result = site.verify(&elsewhere).await;
    assert!(
        matches!(result, Err(Refusal::Destination | Refusal::Recipient)),
        "{result:?}"
    );

    // Answering another request.
    let idp = site.idp_config().await;
    let result = acs::verify(
        &posted.saml_response,
        &idp,
        &site.panel.sp,
        Expect::Request("_jg0123456789abcdef0123456789abcdef"),
    );
    assert!(matches!(result, Err(Refusal::InResponseTo)), "{result:?}");

    // A DTD with entity expansion, through the ACS.
    let fresh = site.sp_initiated("/", genuine, &[]).await;
    let body = strip_declaration(&fresh.xml()).to_string();
    let bomb = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>{}",
        body.replacen(genuine, "&b;", 1)
    );
    let reason = site.refused(&fresh.with_xml(&bomb)).await;
    assert!(reason.contains("DTD"), "{reason}");

    // A signature that would make the verifier fetch something or run a stylesheet is refused
    // before any signature work (libxmlsec resolves references before checking the value).
    let xml = fresh.xml();
    assert!(xml.contains("URI=\"#"), "{xml}");
    let remote = xml.replacen("URI=\"#", "URI=\"http://127.0.0.1:9/fetched#", 1);
    let reason = site.refused(&fresh.with_xml(&remote)).await;
    assert!(reason.contains("points outside the document"), "{reason}");
    let stylesheet = xml.replacen(
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
        "http://www.w3.org/TR/1999/REC-xslt-19991116",
        1,
    );
    let reason = site.refused(&fresh.with_xml(&stylesheet)).await;
    assert!(reason.contains("not canonicalization"), "{reason}");

    // An oversized body never reaches the XML parser.
    let huge = Posted {
        saml_response: "A".repeat(600 * 1024),
        ..fresh.clone()
    };
    let resp = site.post(&huge).await;
    assert_eq!(resp.status(), 413);
    let big = Posted {
        saml_response: "A".repeat(300 * 1024),
        ..fresh.clone()
    };
    let reason = site.refused(&big).await;
    assert!(reason.contains("larger than"), "{reason}");

    // Nothing configured to check against: fail closed, even with a correct signature.
    let mut unconfigured = site.idp_config().await;
    unconfigured.certificates_pem.clear();
    let result = acs::verify(
        &fresh.saml_response,
        &unconfigured,
        &site.panel.sp,
        Expect::Request(&fresh.relay_state),
    );
    assert!(matches!(result, Err(Refusal::NotConfigured)), "{result:?}");
}

// ---------------------------------------------------------------------------------------------
// Native SSH after SAML

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_skips_the_totp_step_only_during_a_live_saml_session() {
    let site = site().await;
    let _web = site.web01_for_bob().await;
    site.gw.set(settings::SAML_SKIP_2FA, "true").await;
    let client = site.gw.client(&site.bob);
    let asked_for_totp = |client: &common::gateway::Client| {
        client.prompts().iter().any(|p| p.contains("Verification"))
    };

    // No web session yet: the TOTP code is asked for.
    client.set_answer("totp", &common::gateway::totp_now(&site.bob));
    let out = client.ssh("bob:web01", &["echo in-$((6*7))"]).await;
    assert_eq!(common::gateway::text(&out.stdout), "in-42\n");
    assert!(asked_for_totp(&client), "{:?}", client.prompts());

    // Signed in to the panel through SAML: password and security code only.
    let posted = site.sp_initiated("/", "bob@example.test", &[]).await;
    let resp = site.post(&posted).await;
    assert_eq!(resp.status(), 303);
    let cookie = session_cookie(&resp).unwrap();
    let client = site.gw.client(&site.bob);
    client.set_answer("totp", "000000");
    let out = client.ssh("bob:web01", &["echo in-$((6*7))"]).await;
    assert_eq!(
        common::gateway::text(&out.stdout),
        "in-42\n",
        "{}",
        common::gateway::text(&out.stderr)
    );
    assert!(!asked_for_totp(&client), "{:?}", client.prompts());

    // The setting off: asked again, session or not. (Whether the reused code is accepted does
    // not matter here, only that it was asked for.)
    site.gw.set(settings::SAML_SKIP_2FA, "false").await;
    let client = site.gw.client(&site.bob);
    client.set_answer("totp", &common::gateway::totp_now(&site.bob));
    let _ = client.ssh("bob:web01", &["true"]).await;
    assert!(asked_for_totp(&client), "{:?}", client.prompts());

    // On again, but signed out of the panel: asked again.
    site.gw.set(settings::SAML_SKIP_2FA, "true").await;
    let resp = site.get_with("/account", &cookie).await;
    assert_eq!(resp.status(), 200, "the SAML session was live until now");
    let user = site
        .gw
        .storage
        .user_by_username("bob")
        .await
        .unwrap()
        .unwrap();
    site.gw
        .storage
        .delete_user_sessions(user.id, None)
        .await
        .unwrap();
    assert!(!site.saml_session_of("bob").await);
    let client = site.gw.client(&site.bob);
    client.set_answer("totp", &common::gateway::totp_now(&site.bob));
    let _ = client.ssh("bob:web01", &["true"]).await;
    assert!(asked_for_totp(&client), "{:?}", client.prompts());
}

// ---------------------------------------------------------------------------------------------
// Native SSH approved in the browser

/// The real `ssh` running in the background with its output going to files, for sign-ins that
/// wait for something to happen in the browser.
struct Background {
    child: tokio::process::Child,
    out: std::path::PathBuf,
    err: std::path::PathBuf,
}

fn background_ssh(client: &common::gateway::Client, user: &str, command: &str) -> Background {
    let tag = rand_tag();
    let out = client.path(&format!("out-{tag}"));
    let err = client.path(&format!("err-{tag}"));
    let mut c = client.command("ssh");
    c.arg("-p")
        .arg(client.port.to_string())
        .arg(format!("{user}@127.0.0.1"))
        .arg(command)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    Background {
        child: c.spawn().unwrap(),
        out,
        err,
    }
}

fn rand_tag() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

/// Waits until the file holds `needle`; returns its text.
async fn wait_in_file(path: &std::path::Path, needle: &str, secs: u64) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{needle:?} did not appear in {}: {text}",
            path.display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

impl Background {
    /// The approval page's path from the link the gateway showed.
    async fn approval_path(&self) -> String {
        let base = format!("{}ssh/approve/", common::gateway::PANEL_URL);
        let err = wait_in_file(&self.err, &base, 30).await;
        let at = err.rfind(&base).unwrap() + base.len() - "/ssh/approve/".len();
        err[at..].split_whitespace().next().unwrap().to_string()
    }

    async fn finished(mut self) -> (std::process::ExitStatus, String, String) {
        let status = tokio::time::timeout(std::time::Duration::from_secs(60), self.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "ssh did not finish; it wrote {:?} and {:?}",
                    std::fs::read_to_string(&self.out),
                    std::fs::read_to_string(&self.err)
                )
            })
            .unwrap();
        (
            status,
            std::fs::read_to_string(&self.out).unwrap(),
            std::fs::read_to_string(&self.err).unwrap(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_sign_in_is_approved_once_in_the_browser_and_ends_with_the_web_session() {
    let site = site().await;
    let _web = site.web01_for_bob().await;
    site.gw.add_user("carol", false).await;
    site.gw
        .set(settings::SAML_SSH_BROWSER_APPROVAL, "true")
        .await;
    let bob = site.saml_cookie("bob@example.test").await;
    let carol = site.saml_cookie("carol@example.test").await;

    // The SSH client shows a link; the page names the account, the client and the target.
    let client = site.gw.client(&site.bob);
    let ssh = background_ssh(&client, "bob:web01", "echo in-$((6*7)); sleep 120");
    let path = ssh.approval_path().await;
    let page = site.get_with(&path, &bob).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    for shown in [
        "127.0.0.1",
        "<strong>bob</strong>",
        "web01",
        "Approve",
        "Deny",
    ] {
        assert!(page.contains(shown), "{shown} on the page: {page}");
    }

    // Without a session the page goes through the IdP and comes back to the same code.
    let resp = site.get_with(&path, "").await;
    assert_eq!(resp.status(), 303);
    let encoded: String = form_urlencoded::byte_serialize(path.as_bytes()).collect();
    assert_eq!(location(&resp), format!("/saml/login?return={encoded}"));
    // A password session is not enough either.
    let resp = site.get_with(&path, &password_session(&site).await).await;
    assert_eq!(resp.status(), 303);
    // Another account's SAML session may neither see nor decide it.
    let resp = site.get_with(&path, &carol).await;
    assert_eq!(resp.status(), 403);
    assert!(!resp.text().await.unwrap().contains("127.0.0.1"));
    let resp = site
        .post_form(&path, &carol, &[("decision", "approve")])
        .await;
    assert_eq!(resp.status(), 403);
    // Without the form token, nothing is decided.
    let resp = site
        .http
        .post(site.panel.url(&path))
        .header("cookie", &bob)
        .form(&[("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    // Approved: Enter completes the sign-in without password or security code.
    let resp = site
        .post_form(&path, &bob, &[("decision", "approve")])
        .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("Approved"));
    client.set_answer("approval", "");
    wait_in_file(&ssh.out, "in-42", 30).await;
    let prompts = client.prompts();
    assert!(
        prompts
            .iter()
            .all(|p| !p.contains("Password") && !p.contains("Security")),
        "{prompts:?}"
    );
    // Once only.
    let resp = site
        .post_form(&path, &bob, &[("decision", "approve")])
        .await;
    assert_eq!(resp.status(), 410);

    // Signing out of the panel ends the SSH connection that relied on it.
    let resp = site.post_form("/api/logout", &bob, &[]).await;
    assert!(resp.status().is_success(), "{}", resp.status());
    let (status, out, err) = ssh.finished().await;
    assert!(!status.success());
    assert_eq!(out, "in-42\n");
    assert!(err.contains("relied on it"), "{err}");

    // Denied: the client is refused.
    let bob = site.saml_cookie("bob@example.test").await;
    let client = site.gw.client(&site.bob);
    let ssh = background_ssh(&client, "bob:web01", "echo in-$((6*7))");
    let path = ssh.approval_path().await;
    let resp = site.post_form(&path, &bob, &[("decision", "deny")]).await;
    assert_eq!(resp.status(), 200);
    client.set_answer("approval", "");
    let (status, out, err) = ssh.finished().await;
    assert!(!status.success());
    assert_eq!(out, "");
    assert!(err.contains("denied in the browser"), "{err}");

    // A password typed at the prompt signs in the usual way (accounts outside SSO).
    let client = site.gw.client(&site.bob);
    client.set_answer("approval", &site.bob.password);
    client.set_answer("totp", &common::gateway::totp_now(&site.bob));
    let out = client.ssh("bob:web01", &["echo in-$((6*7))"]).await;
    assert_eq!(
        common::gateway::text(&out.stdout),
        "in-42\n",
        "{}",
        common::gateway::text(&out.stderr)
    );

    // Disabling the account ends an approved connection too.
    let client = site.gw.client(&site.bob);
    let ssh = background_ssh(&client, "bob:web01", "echo in-$((6*7)); sleep 120");
    let path = ssh.approval_path().await;
    let resp = site
        .post_form(&path, &bob, &[("decision", "approve")])
        .await;
    assert_eq!(resp.status(), 200);
    client.set_answer("approval", "");
    wait_in_file(&ssh.out, "in-42", 30).await;
    let id = site.user("bob@example.test").await.id;
    site.gw
        .storage
        .set_user_status(id, "disabled")
        .await
        .unwrap();
    let (status, _, err) = ssh.finished().await;
    assert!(!status.success());
    assert!(err.contains("disabled"), "{err}");

    // Turned off: the pages say so and the SSH client asks for the password again.
    site.gw
        .set(settings::SAML_SSH_BROWSER_APPROVAL, "false")
        .await;
    let resp = site.get_with("/ssh/approve/BCDF-2345", &carol).await;
    assert_eq!(resp.status(), 404);
}

/// A panel session signed in with bob's password, for pages that demand a SAML one.
async fn password_session(site: &Site) -> String {
    let id = site.user("bob@example.test").await.id;
    let row = jumpgate::storage::SessionRow {
        id_hash: jumpgate::auth::session::hash_token("password-session-token-of-bob-000000000"),
        user_id: id,
        stage: "active".into(),
        auth_method: "password".into(),
        client_ip: "127.0.0.1".into(),
        created_at: jumpgate::storage::now(),
        last_seen_at: jumpgate::storage::now(),
        expires_at: jumpgate::storage::now() + 3600,
    };
    site.gw.storage.insert_session(&row).await.unwrap();
    "jumpgate_session=password-session-token-of-bob-000000000".to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssh_connection_that_skipped_totp_ends_with_the_saml_session() {
    let site = site().await;
    let _web = site.web01_for_bob().await;
    site.gw.set(settings::SAML_SKIP_2FA, "true").await;
    let bob = site.saml_cookie("bob@example.test").await;
    let client = site.gw.client(&site.bob);
    client.set_answer("totp", "000000");
    let ssh = background_ssh(&client, "bob:web01", "echo in-$((6*7)); sleep 120");
    wait_in_file(&ssh.out, "in-42", 30).await;
    let resp = site.post_form("/api/logout", &bob, &[]).await;
    assert!(resp.status().is_success(), "{}", resp.status());
    let (status, _, err) = ssh.finished().await;
    assert!(!status.success());
    assert!(err.contains("relied on it"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Single logout

/// GET of an absolute URL (IdP or panel) without following redirects.
async fn get_url(site: &Site, url: &str) -> reqwest::Response {
    let resp = site.http.get(url).send().await.unwrap();
    site.keep_bindings(&resp);
    resp
}

/// What the IdP saw of single logout, a line per message.
async fn slo_log(site: &Site) -> String {
    let resp = get_url(site, &site.idp.url("/slo/log")).await;
    resp.text().await.unwrap()
}

/// GETs `url`, expects a redirect to somewhere starting with `prefix`, and returns it.
async fn redirected(site: &Site, url: &str, prefix: &str) -> String {
    let resp = get_url(site, url).await;
    assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
    let to = location(&resp);
    assert!(to.starts_with(prefix), "{to}");
    to
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_ends_the_session_at_the_identity_provider_too() {
    let site = site().await;
    let cookie = site.saml_cookie("bob@example.test").await;

    // Sign out: the panel session ends at once, and the browser goes to the IdP's logout URL.
    let resp = site.post_form("/saml/logout", &cookie, &[]).await;
    assert_eq!(resp.status(), 303);
    let to_idp = location(&resp);
    assert!(
        to_idp.starts_with(&site.idp.url("/slo/redirect?SAMLRequest=")),
        "{to_idp}"
    );
    assert_eq!(site.get_with("/account", &cookie).await.status(), 303);
    assert!(!site.saml_session_of("bob").await);

    // The IdP (pysaml2) takes the request and answers with a signed LogoutResponse.
    let back = redirected(&site, &to_idp, &site.panel.url("/saml/slo?SAMLResponse=")).await;
    let log = slo_log(&site).await;
    assert!(
        log.contains("request bob@example.test index=") && !log.contains("index= "),
        "{log}"
    );
    let page = get_url(&site, &back).await;
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("and of your identity provider"),
        "the IdP's answer was accepted"
    );
    // Each request is answered once.
    let page = get_url(&site, &back).await.text().await.unwrap();
    assert!(page.contains("may still have you signed in"), "{page}");

    // A tampered answer is not believed (the session here has ended all the same).
    let tampered = back.replacen("SAMLResponse=", "SAMLResponse=A", 1);
    let page = get_url(&site, &tampered).await.text().await.unwrap();
    assert!(page.contains("may still have you signed in"), "{page}");

    // With single logout off, signing out stays here.
    site.gw.set(settings::SAML_SINGLE_LOGOUT, "false").await;
    let cookie = site.saml_cookie("bob@example.test").await;
    let resp = site.post_form("/saml/logout", &cookie, &[]).await;
    assert_eq!(location(&resp), "/login?signed_out=1");
    assert_eq!(site.get_with("/account", &cookie).await.status(), 303);
    // Without the form token nothing happens.
    site.gw.set(settings::SAML_SINGLE_LOGOUT, "true").await;
    let cookie = site.saml_cookie("bob@example.test").await;
    let resp = site
        .http
        .post(site.panel.url("/saml/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(site.get_with("/account", &cookie).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_request_from_the_identity_provider_ends_that_persons_sessions() {
    let site = site().await;
    site.gw.add_user("carol", false).await;
    let bob_1 = site.saml_cookie("bob@example.test").await;
    let bob_2 = site.saml_cookie("bob@example.test").await;
    let carol = site.saml_cookie("carol@example.test").await;
    let refused_for = |page: String| logged_reason(&page);

    // Forged or misdirected requests are refused for their reason and end nothing.
    let initiate = |knobs: &str| {
        site.idp
            .url(&format!("/slo/initiate?email=bob%40example.test{knobs}"))
    };
    for (knobs, reason) in [
        ("&unsigned=1", "not signed"),
        ("&signer=rogue", "does not verify"),
        (
            "&destination=https%3A%2F%2Felsewhere.test%2Fsaml%2Fslo",
            "destination",
        ),
    ] {
        let to_panel = location(&get_url(&site, &initiate(knobs)).await);
        let resp = get_url(&site, &to_panel).await;
        assert_eq!(resp.status(), 403, "{knobs}");
        let line = refused_for(resp.text().await.unwrap());
        assert!(line.contains(reason), "{knobs}: {line}");
    }
    let genuine = location(&get_url(&site, &initiate("")).await);
    let tampered = genuine.replacen("RelayState=", "RelayState=x", 1);
    let resp = get_url(&site, &tampered).await;
    assert_eq!(resp.status(), 403);
    assert!(refused_for(resp.text().await.unwrap()).contains("does not verify"));
    for cookie in [&bob_1, &bob_2, &carol] {
        assert_eq!(site.get_with("/account", cookie).await.status(), 200);
    }

    // The genuine request ends both of bob's sessions, not carol's, and is answered.
    let answer = redirected(
        &site,
        &genuine,
        &site.idp.url("/slo/redirect?SAMLResponse="),
    )
    .await;
    assert!(answer.contains("RelayState=idp-relay"), "{answer}");
    for cookie in [&bob_1, &bob_2] {
        assert_eq!(site.get_with("/account", cookie).await.status(), 303);
    }
    assert_eq!(site.get_with("/account", &carol).await.status(), 200);
    // pysaml2 reads the answer as a success.
    assert_eq!(get_url(&site, &answer).await.status(), 200);
    let log = slo_log(&site).await;
    assert!(
        log.contains("urn:oasis:names:tc:SAML:2.0:status:Success"),
        "{log}"
    );

    // The same request again is a replay.
    let resp = get_url(&site, &genuine).await;
    assert_eq!(resp.status(), 403);
    assert!(refused_for(resp.text().await.unwrap()).contains("replay"));

    // With single logout off, the IdP's requests are refused.
    site.gw.set(settings::SAML_SINGLE_LOGOUT, "false").await;
    let to_panel = location(&get_url(&site, &initiate("")).await);
    let resp = get_url(&site, &to_panel).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(site.get_with("/account", &carol).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_request_posted_by_the_identity_provider_is_checked_the_same_way() {
    let site = site().await;
    site.gw.add_user("carol", false).await;
    let bob = site.saml_cookie("bob@example.test").await;
    let carol = site.saml_cookie("carol@example.test").await;

    // The IdP's page that posts a LogoutRequest (HTTP-POST binding, enveloped XML signature).
    let form = |knobs: &'static str| {
        let site = &site;
        async move {
            let url = site.idp.url(&format!(
                "/slo/initiate?email=bob%40example.test&binding=post{knobs}"
            ));
            let page = get_url(site, &url).await.text().await.unwrap();
            let action = attr_near(&page, "<form", "action").expect("a form");
            assert_eq!(action, site.panel.url("/saml/slo"));
            let request = attr_near(&page, "\"SAMLRequest\"", "value").unwrap();
            let relay = attr_near(&page, "\"RelayState\"", "value").unwrap_or_default();
            (request, relay)
        }
    };
    let post = |request: String, relay: String| {
        let site = &site;
        async move {
            site.http
                .post(site.panel.url("/saml/slo"))
                .form(&[("SAMLRequest", request), ("RelayState", relay)])
                .send()
                .await
                .unwrap()
        }
    };
    let refusal = |resp: reqwest::Response| async move {
        assert_eq!(resp.status(), 403);
        logged_reason(&resp.text().await.unwrap())
    };

    // Forged, misdirected, edited or wrapped requests are refused for their reason.
    for (knobs, reason) in [
        ("&unsigned=1", "not signed"),
        ("&signer=rogue", "does not verify"),
        (
            "&destination=https%3A%2F%2Felsewhere.test%2Fsaml%2Fslo",
            "destination",
        ),
        // Signed messages sent by HTTP-POST must say where they are going.
        ("&destination=none", "destination \"(none given)\""),
        // RelayState travels unsigned and goes back to the IdP: 80 bytes at most.
        (
            "&relay=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "RelayState is too large",
        ),
    ] {
        let (request, relay) = form(knobs).await;
        let line = refusal(post(request, relay).await).await;
        assert!(line.contains(reason), "{knobs}: {line}");
    }
    let (genuine, relay) = form("").await;
    let xml = String::from_utf8(STANDARD.decode(&genuine).unwrap()).unwrap();
    assert!(xml.contains("SignatureValue"), "{xml}");
    let edited = STANDARD.encode(xml.replace("bob@example.test", "carol@example.test"));
    let line = refusal(post(edited, relay.clone()).await).await;
    assert!(line.contains("does not verify"), "{line}");
    let body = strip_declaration(&xml);
    let wrapped = format!(
        "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
         xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_evil\" Version=\"2.0\" \
         IssueInstant=\"2026-01-01T00:00:00Z\"><saml:NameID>carol@example.test</saml:NameID>\
         <samlp:Extensions>{body}</samlp:Extensions></samlp:LogoutRequest>"
    );
    let line = refusal(post(STANDARD.encode(wrapped), relay.clone()).await).await;
    assert!(line.contains("well-formed LogoutRequest"), "{line}");
    let remote = STANDARD.encode(xml.replacen("URI=\"#", "URI=\"file:///etc/passwd#", 1));
    let line = refusal(post(remote, relay.clone()).await).await;
    assert!(line.contains("points outside the document"), "{line}");
    for cookie in [&bob, &carol] {
        assert_eq!(site.get_with("/account", cookie).await.status(), 200);
    }

    // The genuine request ends bob's session, not carol's, and is answered by redirect.
    let resp = post(genuine.clone(), relay.clone()).await;
    assert_eq!(resp.status(), 303);
    assert!(
        location(&resp).starts_with(&site.idp.url("/slo/redirect?SAMLResponse=")),
        "{}",
        location(&resp)
    );
    assert_eq!(site.get_with("/account", &bob).await.status(), 303);
    assert_eq!(site.get_with("/account", &carol).await.status(), 200);

    // Again: a replay.
    let line = refusal(post(genuine, relay).await).await;
    assert!(line.contains("replay"), "{line}");
}

// ---------------------------------------------------------------------------------------------
// From the host

/// `jumpgate saml fetch`, `saml info` and `settings set`, run as an administrator on the host
/// would run them.
#[test]
fn the_command_line_fetches_metadata_and_switches_sign_in() {
    let data = tempfile::tempdir().unwrap();
    let idp = Idp::start("http://127.0.0.1:9/unused-sp-metadata");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_jumpgate"))
            .args(args)
            .env_clear()
            .env("JUMPGATE_STORAGE_DATA_DIR", data.path())
            .env(
                "JUMPGATE_STORAGE_DATABASE_URL",
                format!("sqlite://{}/jumpgate.db", data.path().display()),
            )
            .env("JUMPGATE_WEB_PUBLIC_URL", "https://gate.example.com")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (ok, out, _) = run(&["saml", "info"]);
    assert!(ok);
    assert!(out.contains("Entity ID (audience): https://gate.example.com/saml/metadata"));
    assert!(out.contains("ACS URL: https://gate.example.com/saml/acs"));
    assert!(out.contains("Single logout URL: https://gate.example.com/saml/slo"));

    // Group mappings from the host, with the same rules as the Settings page.
    let (ok, _, err) = run(&["user-group", "add", "ops"]);
    assert!(ok, "{err}");
    let (ok, out, err) = run(&["saml", "map", "add", " 8f3a-group-id ", "ops"]);
    assert!(ok, "{err}");
    assert!(out.contains("Mapped 8f3a-group-id to ops"), "{out}");
    for (args, says) in [
        (
            ["saml", "map", "add", "8f3a-group-id", "ops"],
            "already maps",
        ),
        (
            ["saml", "map", "add", "x", "nosuch"],
            "no user group nosuch",
        ),
        (
            ["saml", "map", "add", "", "ops"],
            "exactly as the identity provider sends it",
        ),
    ] {
        let (ok, _, err) = run(&args);
        assert!(!ok && err.contains(says), "{args:?}: {err}");
    }
    let (ok, out, _) = run(&["--json", "saml", "map", "list"]);
    assert!(ok);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        list,
        serde_json::json!([{ "idp_value": "8f3a-group-id", "user_group": "ops" }])
    );
    let (ok, _, err) = run(&["saml", "map", "remove", "8f3a-group-id", "ops"]);
    assert!(ok, "{err}");
    let (_, out, _) = run(&["saml", "map", "list"]);
    assert_eq!(out.trim(), "No group mappings.");
    let (ok, _, err) = run(&["saml", "map", "remove", "8f3a-group-id", "ops"]);
    assert!(!ok && err.contains("is not mapped"), "{err}");

    // Switching before anything is configured is refused with what to do.
    let (ok, _, err) = run(&["settings", "set", "web_auth", "saml"]);
    assert!(!ok);
    assert!(err.contains("jumpgate saml fetch"), "{err}");

    let metadata = idp.url("/metadata");
    let (ok, out, err) = run(&["saml", "fetch", &metadata, "--dry-run"]);
    assert!(ok, "{err}");
    assert!(out.contains("Not saved"), "{out}");
    let (_, stored, _) = run(&["settings", "get", "saml.idp_entity_id"]);
    assert_eq!(stored.trim(), "");

    let (ok, out, err) = run(&["saml", "fetch", &metadata]);
    assert!(ok, "{err}");
    assert!(
        out.contains("Signing certificate: CN=Test IdP trusted"),
        "{out}"
    );
    let (_, stored, _) = run(&["settings", "get", "saml.idp_entity_id"]);
    assert_eq!(stored.trim(), idp.entity_id());
    let (ok, _, err) = run(&["settings", "set", "web_auth", "saml"]);
    assert!(ok, "{err}");
    // The certificates cannot be removed while SAML signs people in.
    let (ok, _, err) = run(&["settings", "set", "saml.idp_certificates", ""]);
    assert!(!ok);
    assert!(err.contains("web_auth"), "{err}");
    let (ok, _, _) = run(&["settings", "set", "web_auth", "password"]);
    assert!(ok);

    // A wrong URL: one line that says what happened, nothing stored.
    let (ok, _, err) = run(&["saml", "fetch", &idp.url("/nothing-here")]);
    assert!(!ok);
    assert!(err.contains("HTTP 404"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

// ---------------------------------------------------------------------------------------------
// Metadata upkeep

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_refresh_keeps_the_last_good_metadata() {
    use jumpgate::saml::upkeep::{self, Refresh};
    let site = site().await;
    let s = &site.gw.storage;

    // Never refreshed: due at once, and then not again until the interval has passed.
    match upkeep::refresh_if_due(s).await.unwrap() {
        Refresh::Refreshed(md) => assert_eq!(md.entity_id, site.idp.entity_id()),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        upkeep::refresh_if_due(s).await.unwrap(),
        Refresh::NotDue
    ));
    site.gw
        .set(settings::SAML_METADATA_REFRESH_HOURS, "0")
        .await;
    assert!(matches!(
        upkeep::refresh_if_due(s).await.unwrap(),
        Refresh::Off
    ));

    // The IdP's metadata goes missing: the refresh fails, says why, and changes nothing.
    let certificates = settings::get(s, settings::SAML_IDP_CERTIFICATES)
        .await
        .unwrap();
    site.gw
        .set(settings::SAML_METADATA_URL, &site.idp.url("/gone"))
        .await;
    match upkeep::refresh_now(s).await.unwrap() {
        Refresh::Failed(reason) => assert!(reason.contains("404"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        settings::get(s, settings::SAML_IDP_CERTIFICATES)
            .await
            .unwrap(),
        certificates
    );
    let (_, succeeded, error) = s.saml_refresh_state().await.unwrap().unwrap();
    assert!(succeeded.is_some() && error.unwrap().contains("404"));
    // Sign-in goes on with the last good metadata.
    let posted = site.sp_initiated("/", "bob@example.test", &[]).await;
    assert_eq!(site.post(&posted).await.status(), 303);

    // The URL now serves another IdP's metadata: a timer does not switch IdPs.
    let other = Idp::start(&site.panel.url("/saml/metadata"));
    site.gw
        .set(settings::SAML_METADATA_URL, &other.url("/metadata"))
        .await;
    match upkeep::refresh_now(s).await.unwrap() {
        Refresh::Failed(reason) => {
            assert!(reason.contains("another identity provider"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        settings::get(s, settings::SAML_IDP_ENTITY_ID)
            .await
            .unwrap(),
        site.idp.entity_id()
    );

    // The test IdP's certificate expires in 20 days: flagged.
    let expiring = upkeep::expiring_certificates(s).await.unwrap();
    assert_eq!(expiring.len(), 1, "{expiring:?}");
    assert_eq!(expiring[0].0, "CN=Test IdP trusted");
    assert!((18..=20).contains(&expiring[0].1), "{expiring:?}");
}

// ---------------------------------------------------------------------------------------------
// Group mappings and the administrators' test sign-in

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_mappings_follow_the_assertion() {
    let site = site().await;
    let s = &site.gw.storage;
    let ops = s.create_user_group("ops", None).await.unwrap();
    let manual = s.create_user_group("manual", None).await.unwrap();
    assert!(s.add_saml_group_mapping("g-1234", ops).await.unwrap());
    assert!(!s.add_saml_group_mapping("g-1234", ops).await.unwrap());
    let bob = s.user_by_username("bob").await.unwrap().unwrap();
    s.add_group_member(manual, bob.id).await.unwrap();

    let posted = site
        .sp_initiated("/", "bob@example.test", &[("groups", "g-other,g-1234")])
        .await;
    assert_eq!(site.post(&posted).await.status(), 303);
    let groups = s.groups_of_user(bob.id).await.unwrap();
    assert!(
        groups.contains(&ops) && groups.contains(&manual),
        "{groups:?}"
    );

    // No longer in the IdP group: out of the mapped user group; the unmapped one stays.
    let posted = site.sp_initiated("/", "bob@example.test", &[]).await;
    assert_eq!(site.post(&posted).await.status(), 303);
    let groups = s.groups_of_user(bob.id).await.unwrap();
    assert!(
        !groups.contains(&ops) && groups.contains(&manual),
        "{groups:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_sign_in_shows_what_the_idp_sent_and_signs_nobody_in() {
    use app::api::backend::{Backend, RequestContext};
    let site = site().await;
    let s = &site.gw.storage;
    site.gw.set(settings::SAML_AUTO_CREATE, "true").await;
    // An administrator signed in with the break-glass password.
    let hash = jumpgate::auth::password::hash("root-Correct-Horse-42")
        .await
        .unwrap();
    let root = s
        .create_user(&jumpgate::storage::NewUser {
            username: "root",
            email: None,
            display_name: None,
            role: "admin",
            origin: "local",
            password_hash: Some(&hash),
            must_change_password: false,
        })
        .await
        .unwrap();
    let ctx = RequestContext {
        client_ip: "127.0.0.1".parse().unwrap(),
        session_token: None,
        csrf_token: String::new(),
    };
    let (_, cookies) = site
        .panel
        .auth
        .login(&ctx, "root".into(), "root-Correct-Horse-42".into())
        .await
        .unwrap();
    let cookie = cookies
        .iter()
        .filter_map(|c| c.split(';').next())
        .find(|c| c.contains("session"))
        .unwrap()
        .to_string();

    // Not for people without an administrator's session.
    let resp = site
        .http
        .get(site.panel.url("/saml/login?test=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    let test_run = |knobs: &'static [(&'static str, &'static str)]| {
        let cookie = cookie.clone();
        let site = &site;
        async move {
            let resp = site.get_with("/saml/login?test=1", &cookie).await;
            assert_eq!(resp.status(), 303);
            let posted = site
                .idp_answer(&location(&resp), "newcomer@corp.test", knobs)
                .await;
            let resp = site.post(&posted).await;
            assert_eq!(resp.status(), 303);
            assert_eq!(location(&resp), "/admin/settings#saml-test");
            assert!(session_cookie(&resp).is_none(), "a test signs nobody in");
        }
    };

    test_run(&[("groups", "g-1")]).await;
    let (_, json) = s.saml_test_result(root).await.unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["email"], "newcomer@corp.test");
    assert_eq!(v["groups"][0], "g-1");
    assert!(v["account"].as_str().unwrap().contains("no account yet"));
    assert!(
        s.user_by_email("newcomer@corp.test")
            .await
            .unwrap()
            .is_none()
    );

    // A refused answer is shown with its reason.
    test_run(&[("signer", "rogue")]).await;
    let (_, json) = s.saml_test_result(root).await.unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["ok"], false);
    assert!(v["reason"].as_str().unwrap().contains("signature"), "{v}");
}

// ---------------------------------------------------------------------------------------------
// Storage on every backend (several nodes share the requests and the replay cache)

#[tokio::test]
async fn saml_bookkeeping_works_on_every_backend() {
    for db in common::databases().await {
        let s = &db.storage;
        let label = db.label;
        let now = jumpgate::storage::now();

        // SSH approvals: decided once, taken once, never after expiry.
        use jumpgate::storage::ApprovalState;
        for (hash, expires) in [
            ("h-old", now - 1),
            ("h-new", now + 100),
            ("h-no", now + 100),
        ] {
            s.insert_ssh_approval(hash, "bob", Some("web01"), "192.0.2.1", expires)
                .await
                .unwrap();
        }
        let decide = |hash: &'static str, approve: bool| async move {
            s.decide_ssh_approval(hash, approve, 1, "sess")
                .await
                .unwrap()
        };
        let take = |hash: &'static str| async move { s.take_ssh_approval(hash).await.unwrap() };
        let taken = ApprovalState::Taken {
            user_id: 1,
            session_hash: "sess".into(),
        };
        assert!(!decide("h-old", true).await, "{label}");
        assert_eq!(take("h-old").await, ApprovalState::Gone, "{label}");
        assert_eq!(take("h-new").await, ApprovalState::Pending, "{label}");
        assert!(decide("h-new", true).await, "{label}");
        assert!(!decide("h-new", false).await, "{label}");
        assert_eq!(take("h-new").await, taken, "{label}");
        assert_eq!(take("h-new").await, ApprovalState::Gone, "{label}");
        assert!(decide("h-no", false).await, "{label}");
        assert_eq!(take("h-no").await, ApprovalState::Denied, "{label}");
        assert_eq!(take("h-unknown").await, ApprovalState::Gone, "{label}");
        let row = s.ssh_approval("h-new").await.unwrap().unwrap();
        assert_eq!(
            (row.target.as_deref(), row.state.as_str()),
            (Some("web01"), "used"),
            "{label}"
        );
        s.prune_ssh_approvals(now + 10).await.unwrap();
        assert!(s.ssh_approval("h-new").await.unwrap().is_none(), "{label}");

        s.insert_saml_request("_jgA", "/console", None, "hA")
            .await
            .unwrap();
        let open = s
            .open_saml_request("_jgA", now - 600)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(open.return_to, "/console", "{label}");
        assert_eq!(open.test_for_user, None, "{label}");
        assert_eq!(open.browser_hash.as_deref(), Some("hA"), "{label}");
        assert!(
            s.open_saml_request("_jgA", now + 600)
                .await
                .unwrap()
                .is_none()
        );
        assert!(s.consume_saml_request("_jgA").await.unwrap(), "{label}");
        assert!(
            !s.consume_saml_request("_jgA").await.unwrap(),
            "{label}: answered twice"
        );
        assert!(
            s.open_saml_request("_jgA", now - 600)
                .await
                .unwrap()
                .is_none()
        );

        assert!(
            s.remember_assertion("id-1", now + 300).await.unwrap(),
            "{label}"
        );
        assert!(
            !s.remember_assertion("id-1", now + 300).await.unwrap(),
            "{label}: replay"
        );
        s.prune_saml(now + 10, now + 600).await.unwrap();
        assert!(
            s.remember_assertion("id-1", now + 300).await.unwrap(),
            "{label}: pruned"
        );

        s.record_saml_refresh(None).await.unwrap();
        s.record_saml_refresh(Some("HTTP 500")).await.unwrap();
        let (_, ok_at, error) = s.saml_refresh_state().await.unwrap().unwrap();
        assert!(ok_at.is_some(), "{label}: the last success is kept");
        assert_eq!(error.as_deref(), Some("HTTP 500"), "{label}");

        let ops = s.create_user_group("ops", None).await.unwrap();
        assert!(
            s.add_saml_group_mapping("g-1", ops).await.unwrap(),
            "{label}"
        );
        assert!(
            !s.add_saml_group_mapping("g-1", ops).await.unwrap(),
            "{label}"
        );
        let mappings = s.saml_group_mappings().await.unwrap();
        assert_eq!(mappings.len(), 1, "{label}");
        assert_eq!(mappings[0].user_group, "ops", "{label}");
        assert!(s.delete_saml_group_mapping(mappings[0].id).await.unwrap());

        let admin = s
            .create_user(&jumpgate::storage::NewUser {
                username: "root",
                email: Some("Root@Example.Test"),
                display_name: None,
                role: "admin",
                origin: "local",
                password_hash: None,
                must_change_password: false,
            })
            .await
            .unwrap();
        assert_eq!(
            s.user_by_email("root@example.test")
                .await
                .unwrap()
                .unwrap()
                .id,
            admin,
            "{label}: emails match without regard to case"
        );
        s.insert_saml_request("_jgB", "/admin/settings", Some(admin), "hB")
            .await
            .unwrap();
        let open = s
            .open_saml_request("_jgB", now - 600)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(open.test_for_user, Some(admin), "{label}");
        s.save_saml_test_result(admin, "{\"ok\":true}")
            .await
            .unwrap();
        s.save_saml_test_result(admin, "{\"ok\":false}")
            .await
            .unwrap();
        let (_, json) = s.saml_test_result(admin).await.unwrap().unwrap();
        assert_eq!(json, "{\"ok\":false}", "{label}");
        assert!(
            s.newest_live_saml_session(admin, 0)
                .await
                .unwrap()
                .is_none(),
            "{label}"
        );

        // Single logout: sessions found by subject, with or without a session index.
        let subject = |index: Option<&str>| jumpgate::storage::SamlSubject {
            name_id: "root@example.test".into(),
            name_id_format: None,
            session_index: index.map(str::to_string),
        };
        for (hash, index) in [
            ("s-1", Some("idx-1")),
            ("s-2", Some("idx-2")),
            ("s-3", None),
        ] {
            s.insert_session(&jumpgate::storage::SessionRow {
                id_hash: hash.into(),
                user_id: admin,
                stage: "active".into(),
                auth_method: "saml".into(),
                client_ip: "192.0.2.1".into(),
                created_at: now,
                last_seen_at: now,
                expires_at: now + 600,
            })
            .await
            .unwrap();
            s.link_saml_session(hash, &subject(index)).await.unwrap();
        }
        assert_eq!(
            s.saml_subject("s-1").await.unwrap(),
            Some(subject(Some("idx-1")))
        );
        // The index picks its session, and the one whose assertion named none.
        assert_eq!(
            s.end_saml_sessions("root@example.test", Some("idx-1"))
                .await
                .unwrap(),
            2,
            "{label}"
        );
        assert!(s.session("s-2").await.unwrap().is_some(), "{label}");
        assert_eq!(
            s.end_saml_sessions("other@example.test", None)
                .await
                .unwrap(),
            0,
            "{label}"
        );
        assert_eq!(
            s.end_saml_sessions("root@example.test", None)
                .await
                .unwrap(),
            1,
            "{label}"
        );
        assert!(s.saml_subject("s-2").await.unwrap().is_none(), "{label}");
        s.insert_saml_logout_request("_jgL").await.unwrap();
        assert!(
            !s.consume_saml_logout_request("_jgL", now + 600)
                .await
                .unwrap(),
            "{label}"
        );
        assert!(
            s.consume_saml_logout_request("_jgL", now - 600)
                .await
                .unwrap(),
            "{label}"
        );
        assert!(
            !s.consume_saml_logout_request("_jgL", now - 600)
                .await
                .unwrap(),
            "{label}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Signed AuthnRequests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idp_that_wants_signed_requests_gets_them() {
    let site = site().await;
    // The same IdP (keys and entity ID), now insisting on signed requests.
    let strict = Idp::spawn(
        &site.panel.url("/saml/metadata"),
        site.idp._dir.as_ref().unwrap().path(),
        &[
            "--entity-id",
            &site.idp.entity_id(),
            "--want-signed-requests",
        ],
    );
    site.gw
        .set(settings::SAML_IDP_SSO_URL, &strict.url("/sso/redirect"))
        .await;
    let start = || site.redirect_of("/saml/login?return=/account");

    // Unsigned: the IdP refuses to show its sign-in form.
    let unsigned = start().await;
    assert!(!unsigned.contains("Signature="), "{unsigned}");
    let page = site.http.get(&unsigned).send().await.unwrap();
    assert_ne!(page.status(), 200);

    // Signed with Jumpgate's key, whose certificate the SP metadata now carries.
    site.gw.set(settings::SAML_SIGN_REQUESTS, "true").await;
    let md = site.sp_metadata().await;
    assert!(md.contains("AuthnRequestsSigned=\"true\""), "{md}");
    assert!(md.contains("X509Certificate"), "{md}");
    let signed = start().await;
    assert!(
        signed.contains("SigAlg=") && signed.contains("Signature="),
        "{signed}"
    );
    assert!(
        signed.starts_with(&strict.url("/sso/redirect?")),
        "{signed}"
    );
    let posted = site.idp_answer(&signed, "bob@example.test", &[]).await;
    let resp = site.post(&posted).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/account");
    let cookie = session_cookie(&resp).unwrap();

    // A signature that does not match the request is refused by the IdP.
    let tampered = start().await.replacen("Signature=", "Signature=AAAA", 1);
    let page = site.http.get(&tampered).send().await.unwrap();
    assert_ne!(page.status(), 200);

    // Our logout requests are signed the same way, and this IdP checks them too.
    site.gw
        .set(settings::SAML_IDP_SLO_URL, &strict.url("/slo/redirect"))
        .await;
    let resp = site.post_form("/saml/logout", &cookie, &[]).await;
    let to_idp = location(&resp);
    assert!(to_idp.contains("&Signature="), "{to_idp}");
    redirected(&site, &to_idp, &site.panel.url("/saml/slo?SAMLResponse=")).await;

    // The POST binding: an enveloped XML signature (SHA-256) that the IdP verifies.
    site.gw
        .set(settings::SAML_IDP_SSO_URL, &strict.url("/sso/post"))
        .await;
    site.gw.set(settings::SAML_IDP_SSO_BINDING, "post").await;
    let post_form = || async {
        let login = site.panel.url("/saml/login?return=/account");
        let form = get_url(&site, &login).await.text().await.unwrap();
        let request = unescape(&attr_near(&form, "\"SAMLRequest\"", "value").unwrap());
        let relay = unescape(&attr_near(&form, "\"RelayState\"", "value").unwrap());
        (request, relay)
    };
    let (http, strict) = (&site.http, &strict);
    let send = |request: String, relay: String| async move {
        http.post(strict.url("/sso/post"))
            .form(&[("SAMLRequest", request), ("RelayState", relay)])
            .send()
            .await
            .unwrap()
            .status()
    };
    let (request, relay) = post_form().await;
    let xml = String::from_utf8(STANDARD.decode(&request).unwrap()).unwrap();
    assert!(
        xml.contains("SignatureValue") && xml.contains("xmlenc#sha256"),
        "{xml}"
    );
    assert_eq!(
        send(request, relay).await,
        200,
        "the IdP accepts the signed request"
    );
    let (_, relay) = post_form().await;
    let forced =
        STANDARD.encode(xml.replacen("Version=\"2.0\"", "Version=\"2.0\" ForceAuthn=\"true\"", 1));
    assert_ne!(
        send(forced, relay).await,
        200,
        "an edited request fails its signature"
    );
    site.gw.set(settings::SAML_SIGN_REQUESTS, "false").await;
    let (request, relay) = post_form().await;
    let xml = String::from_utf8(STANDARD.decode(&request).unwrap()).unwrap();
    assert!(!xml.contains("SignatureValue"), "{xml}");
    assert_ne!(
        send(request, relay).await,
        200,
        "unsigned requests are refused"
    );
}
