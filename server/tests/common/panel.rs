//! The web panel's real router on a free port of 127.0.0.1, over a test gateway's storage, with
//! `public_url` set to that address (so SAML's Entity ID and ACS URL point at it).

use std::net::SocketAddr;
use std::sync::Arc;

use jumpgate::assets::Assets;
use jumpgate::auth::Auth;
use jumpgate::http::{HttpState, router};
use jumpgate::onward::Onward;
use jumpgate::panel::InventoryPanel;
use jumpgate::saml::SpUrls;
use jumpgate::upstream;
use leptos::prelude::LeptosOptions;

use super::gateway::Gateway;

pub struct PanelServer {
    pub addr: SocketAddr,
    pub auth: Auth,
    pub sp: Arc<SpUrls>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PanelServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PanelServer {
    pub async fn start(gw: &Gateway) -> PanelServer {
        let auth = Auth::new(gw.storage.clone(), false, gw.vault.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let origin = format!("http://{addr}");
        let key = jumpgate::saml::sp_key::load_or_create(gw.dir.path(), "127.0.0.1").unwrap();
        let sp = Arc::new(SpUrls::from_public_url(&origin.parse().unwrap()).with_signing_key(key));
        let state = HttpState {
            auth: auth.clone(),
            inventory: Arc::new(InventoryPanel::new(
                auth.clone(),
                gw.vault.clone(),
                gw.gateway_public.clone(),
            )),
            onward: Onward {
                storage: gw.storage.clone(),
                vault: gw.vault.clone(),
                gateway_key: Arc::new(upstream::gateway_key(gw.dir.path()).unwrap()),
            },
            leptos: LeptosOptions::builder().output_name("jumpgate").build(),
            public_origin: origin,
            assets: Arc::new(Assets::discover()),
            sp: sp.clone(),
        };
        let app = router(state);
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        PanelServer {
            addr,
            auth,
            sp,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}
