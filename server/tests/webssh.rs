//! The browser console's WebSocket, driven by a tokio-tungstenite client against the real
//! router on a socket, relaying to a real OpenSSH sshd: refusals (no session, foreign origin,
//! ungranted server), a shell with resize, flow control under a flood, and revocation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use app::api::backend::{Backend, RequestContext};
use common::gateway::{Gateway, Person};
use common::panel::PanelServer;
use common::sshd::Sshd;
use futures_util::{SinkExt, StreamExt};
use jumpgate::inventory::Credential;
use jumpgate::webssh;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

struct Panel {
    gw: Gateway,
    _web: Sshd,
    server: PanelServer,
    bob: Person,
}

async fn panel() -> Panel {
    let gw = Gateway::start().await;
    let web = Sshd::start();
    web.authorize(&gw.gateway_public);
    gw.add_server("web01", "prod", web.port, Credential::GatewayKey)
        .await;
    gw.add_server("other01", "other", web.port, Credential::GatewayKey)
        .await;
    let bob = gw.add_user("bob", false).await;
    gw.grant_group("bob", "prod").await;
    let server = PanelServer::start(&gw).await;
    Panel {
        gw,
        _web: web,
        server,
        bob,
    }
}

impl Panel {
    /// A web session cookie for `person` (no TOTP on these accounts).
    async fn session_cookie(&self, person: &Person) -> String {
        let ctx = RequestContext {
            client_ip: "127.0.0.1".parse().unwrap(),
            session_token: None,
            csrf_token: String::new(),
        };
        let (_, cookies) = self
            .server
            .auth
            .login(&ctx, person.login.clone(), person.password.clone())
            .await
            .unwrap();
        cookies
            .iter()
            .filter_map(|c| c.split(';').next())
            .find(|c| c.contains("session"))
            .expect("a session cookie")
            .to_string()
    }

    async fn connect(
        &self,
        server: &str,
        cookie: Option<&str>,
        origin: &str,
    ) -> Result<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        WsError,
    > {
        let url = format!(
            "ws://{}/api/console/ws?server={server}&cols=80&rows=24",
            self.server.addr
        );
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        if let Some(c) = cookie {
            request.headers_mut().insert("cookie", c.parse().unwrap());
        }
        tokio_tungstenite::connect_async(request)
            .await
            .map(|(ws, _)| ws)
    }

    fn origin(&self) -> String {
        format!("http://{}", self.server.addr)
    }
}

fn status_of(result: Result<impl Sized, WsError>) -> u16 {
    match result {
        Err(WsError::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("the WebSocket was accepted"),
    }
}

/// Reads until the accumulated terminal output contains `needle`; returns all text frames too.
async fn read_until<S>(ws: &mut S, needle: &str, ack: bool) -> (String, Vec<String>)
where
    S: StreamExt<Item = Result<Message, WsError>> + SinkExt<Message> + Unpin,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut out = String::new();
    let mut control = Vec::new();
    while !out.contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, ws.next())
            .await
            .unwrap_or_else(|_| panic!("never saw {needle:?}; output so far:\n{out}\n{control:?}"));
        match msg {
            Some(Ok(Message::Binary(b))) => {
                out.push_str(&String::from_utf8_lossy(&b));
                if ack {
                    let _ = ws
                        .send(Message::text(format!(
                            "{{\"type\":\"ack\",\"bytes\":{}}}",
                            b.len()
                        )))
                        .await;
                }
            }
            Some(Ok(Message::Text(t))) => {
                let t = t.to_string();
                if t.contains(needle) {
                    control.push(t);
                    break;
                }
                control.push(t);
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("socket error {e}; output so far:\n{out}"),
            None => panic!("socket closed before {needle:?}; output:\n{out}\n{control:?}"),
        }
    }
    (out, control)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_come_before_the_socket() {
    let p = panel().await;
    let cookie = p.session_cookie(&p.bob).await;
    assert_eq!(status_of(p.connect("web01", None, &p.origin()).await), 401);
    assert_eq!(
        status_of(p.connect("web01", Some(&cookie), "http://evil.test").await),
        403
    );
    assert_eq!(
        status_of(p.connect("other01", Some(&cookie), &p.origin()).await),
        403
    );
    assert_eq!(
        status_of(p.connect("nosuch", Some(&cookie), &p.origin()).await),
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_with_resize_flow_control_and_revocation() {
    let p = panel().await;
    let cookie = p.session_cookie(&p.bob).await;
    let mut ws = p
        .connect("web01", Some(&cookie), &p.origin())
        .await
        .unwrap();
    read_until(&mut ws, "\"connected\"", true).await;

    ws.send(Message::binary(b"echo $((6*7))-ok\n".to_vec()))
        .await
        .unwrap();
    read_until(&mut ws, "42-ok", true).await;

    ws.send(Message::text(r#"{"type":"resize","cols":100,"rows":33}"#))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    ws.send(Message::binary(b"stty size\n".to_vec()))
        .await
        .unwrap();
    read_until(&mut ws, "33 100", true).await;

    // A flood without acknowledgements: the server stops after its window.
    ws.send(Message::binary(b"yes flood-line\n".to_vec()))
        .await
        .unwrap();
    let mut received = 0usize;
    let quiet_since = loop {
        match tokio::time::timeout(Duration::from_secs(2), ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => received += b.len(),
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!("socket ended during the flood: {other:?}"),
            Err(_) => break received,
        }
        assert!(
            received < (webssh::WINDOW as usize) * 2,
            "the server kept sending {received} bytes without acknowledgements"
        );
    };
    assert!(quiet_since >= webssh::WINDOW as usize / 2, "{quiet_since}");
    // Acknowledging lets output flow again; Ctrl-C reaches the target and stops `yes`.
    ws.send(Message::text(format!(
        "{{\"type\":\"ack\",\"bytes\":{received}}}"
    )))
    .await
    .unwrap();
    ws.send(Message::binary(vec![3u8])).await.unwrap();
    ws.send(Message::binary(b"\necho after-$((1+2))\n".to_vec()))
        .await
        .unwrap();
    read_until(&mut ws, "after-3", true).await;

    // Revoking the grant ends the console within the re-check interval.
    let grants = p.gw.storage.grants().await.unwrap();
    for g in grants {
        p.gw.storage.remove_grant(g.id).await.unwrap();
    }
    let (_, control) = read_until(&mut ws, "revoked", true).await;
    assert!(control.iter().any(|c| c.contains("\"closed\"")));
}
