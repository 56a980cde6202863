//! Jumpgate's server: the web panel's back end, storage and the command line's services.
//!
//! Modules, from the front doors down: `http` (the web panel's router and guard) and `cli` (the
//! administration commands) use the services `auth` (sign-in, sessions, account changes),
//! `inventory` (groups, servers, grants), `access` (who reaches what) and `vault` (sealed
//! credentials), which use `settings` and `storage`. `gateway` is the native SSH front door
//! (russh server, server menu), `webssh` the browser console's WebSocket, and both open target
//! sessions through `onward`, which uses `upstream`, the gateway's own SSH client. `saml` is the
//! web panel's single sign-on (service provider: metadata, sign-in requests, the ACS).
//! `panel` and `settings_panel` are the admin pages' back ends. `config` is read once at start;
//! `assets` serves the built front end; `serve` wires everything together.

pub mod access;
pub mod assets;
pub mod auth;
pub mod cli;
pub mod config;
pub mod gateway;
pub mod http;
pub mod inventory;
pub mod logging;
pub mod notice;
pub mod onward;
pub mod panel;
pub mod saml;
pub mod serve;
pub mod settings;
pub mod settings_panel;
pub mod ssh_approval;
pub mod storage;
pub mod upstream;
pub mod vault;
pub mod webssh;
