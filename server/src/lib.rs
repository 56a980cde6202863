//! Jumpgate's server: the web panel's back end, storage and the command line's services.
//!
//! Modules, from the front doors down: `http` (the web panel's router and guard) uses `auth`
//! (sign-in, sessions, account changes) which uses `settings` and `storage`. `config` is read
//! once at start; `assets` serves the built front end; `serve` wires everything together.

pub mod assets;
pub mod auth;
pub mod config;
pub mod http;
pub mod logging;
pub mod serve;
pub mod settings;
pub mod storage;
