//! Jumpgate's web panel: the Leptos components, rendered on the server and hydrated in the
//! browser, and the types both sides share.
//!
//! Nothing in this crate knows how the server stores data: server functions in [`api`] call a
//! [`api::backend::Backend`] that the server crate puts into Leptos's context.

mod admin;
pub mod api;
mod components;
mod console;
pub mod inventory;
pub mod nav;
mod pages;
pub mod paths;
pub mod settings;
#[cfg(feature = "hydrate")]
mod terminal;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    StaticSegment,
    components::{Route, Router, Routes},
};

use crate::api::{ApiError, SessionInfo};

/// The session resource every page reads: who is signed in and the CSRF token.
pub type SessionResource = Resource<Result<SessionInfo, ApiError>>;

/// The HTML document around the app. The server renders it for every page request.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                // The console's terminal: xterm.js from the npm package, served by the panel.
                // The import map must come before the hydration scripts that import it.
                <link rel="stylesheet" href="/vendor/xterm/xterm.css" />
                <script type="importmap">
                    r#"{"imports":{"xterm":"/vendor/xterm/xterm.mjs","xterm-addon-fit":"/vendor/xterm/addon-fit.mjs"}}"#
                </script>
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();

    // One request per page load; pages refetch it after they change the account.
    let session: SessionResource = Resource::new_blocking(|| (), |_| api::get_session());
    provide_context(session);

    view! {
        <Stylesheet id="leptos" href="/pkg/jumpgate.css" />
        <Title text="Jumpgate" />
        <Router>
            <components::Header />
            <main class="page">
                <Routes fallback=|| view! { <pages::NotFound /> }>
                    <Route path=StaticSegment("") view=pages::Home />
                    <Route path=StaticSegment("login") view=pages::Login />
                    // Break-glass password sign-in for administrators while the panel uses SAML.
                    <Route
                        path=(StaticSegment("login"), StaticSegment("local"))
                        view=pages::Login
                    />
                    <Route path=StaticSegment("account") view=pages::Account />
                    <Route path=StaticSegment("console") view=console::Console />
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("users"))
                        view=admin::AdminUsers
                    />
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("servers"))
                        view=admin::AdminServers
                    />
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("access"))
                        view=admin::AdminAccess
                    />
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("settings"))
                        view=settings::AdminSettings
                    />
                </Routes>
            </main>
        </Router>
    }
}
