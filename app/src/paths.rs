//! URL paths that the server, the panel and outside clients (scripts, monitors, the end-to-end
//! tests) rely on. Changing one breaks those clients.

/// The sign-in page.
pub const LOGIN: &str = "/login";
/// The password sign-in kept for administrators while the panel signs in through SAML.
pub const LOCAL_LOGIN: &str = "/login/local";
/// Jumpgate's SAML service-provider metadata; also its entity ID.
pub const SAML_METADATA: &str = "/saml/metadata";
/// Where the identity provider posts its answer (assertion consumer service).
pub const SAML_ACS: &str = "/saml/acs";
/// Starts a sign-in at the identity provider; `?return=/path` picks the page to come back to.
pub const SAML_LOGIN: &str = "/saml/login";
/// Single logout at the identity provider: its logout requests and its answers to ours arrive
/// here (HTTP-Redirect binding).
pub const SAML_SLO: &str = "/saml/slo";
/// Signing out of a panel session that came through SAML (a form POST): ends the session here
/// and, when the IdP offers single logout, at the IdP too.
pub const SAML_LOGOUT: &str = "/saml/logout";
/// Where a person approves an SSH sign-in in the browser; `/ssh/approve/CODE` opens one code.
pub const SSH_APPROVE: &str = "/ssh/approve";
/// The account page (password, security code, TOTP).
pub const ACCOUNT: &str = "/account";
/// The browser console: server navigator and terminal tabs.
pub const CONSOLE: &str = "/console";
/// Administrators' user list.
pub const ADMIN_USERS: &str = "/admin/users";
/// Administrators' server groups, servers and gateway key.
pub const ADMIN_SERVERS: &str = "/admin/servers";
/// Administrators' user groups and access grants.
pub const ADMIN_ACCESS: &str = "/admin/access";
/// Settings: sign-in rules, two-factor authentication, SAML.
pub const ADMIN_SETTINGS: &str = "/admin/settings";
/// Liveness and database check for monitors.
pub const HEALTHZ: &str = "/healthz";
/// JSON description of the signed-in user.
pub const API_ME: &str = "/api/me";
/// The browser console's WebSocket (see the server's `webssh` module for the protocol).
pub const CONSOLE_WS: &str = "/api/console/ws";
/// Prefix of the WASM, JS and CSS bundle.
pub const PKG_PREFIX: &str = "/pkg/";
/// Third-party browser files the panel serves itself (xterm.js).
pub const VENDOR_PREFIX: &str = "/vendor/";

/// Paths a visitor without a session may open. Everything else needs a signed-in session.
pub fn is_public(path: &str) -> bool {
    path == LOGIN
        || path == LOCAL_LOGIN
        || path == SAML_METADATA
        || path == SAML_ACS
        || path == SAML_LOGIN
        || path == SAML_SLO
        || path == HEALTHZ
        // The approval pages send visitors through the identity provider themselves: a password
        // session cannot approve, so the panel's own sign-in page is the wrong detour.
        || path == SSH_APPROVE
        || path.starts_with("/ssh/approve/")
        || path == "/favicon.svg"
        || path == "/favicon.ico"
        || path.starts_with(PKG_PREFIX)
        // The terminal's JavaScript: every page's WebAssembly imports it, the sign-in page too.
        || path.starts_with(VENDOR_PREFIX)
        // Server functions and machine endpoints answer for themselves, with JSON errors.
        || path.starts_with("/api/")
}
