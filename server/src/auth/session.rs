//! Web session tokens and the cookies that carry them.
//!
//! A session token is 32 random bytes; only its SHA-256 is stored. The session cookie is
//! HttpOnly and SameSite=Lax, and Secure when the panel is served over HTTPS. The CSRF cookie
//! holds a separate random token that pages echo in forms (double submit): a foreign site can
//! make the browser send the cookie but can neither read it nor guess the value to echo.

use app::api::AuthMethod;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie::{Cookie, SameSite};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::storage::SessionRow;

pub const SESSION_COOKIE: &str = "jumpgate_session";
pub const CSRF_COOKIE: &str = "jumpgate_csrf";

/// A fresh random token (256 bits, URL-safe base64).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The form under which a session token is stored.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The password was right; the TOTP code is still due.
    AwaitingTotp,
    Active,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::AwaitingTotp => "awaiting_totp",
            Stage::Active => "active",
        }
    }
}

/// A stored session, as the services see it.
#[derive(Debug, Clone)]
pub struct SessionState {
    pub id_hash: String,
    pub user_id: i64,
    pub stage: Stage,
    pub auth_method: AuthMethod,
    pub created_at: i64,
}

impl SessionState {
    pub fn from_row(row: SessionRow) -> Self {
        SessionState {
            stage: if row.stage == "active" {
                Stage::Active
            } else {
                Stage::AwaitingTotp
            },
            auth_method: if row.auth_method == "saml" {
                AuthMethod::Saml
            } else {
                AuthMethod::Password
            },
            id_hash: row.id_hash,
            user_id: row.user_id,
            created_at: row.created_at,
        }
    }

    pub fn is_active(&self) -> bool {
        self.stage == Stage::Active
    }
}

/// Builds the panel's cookies with the right attributes for this deployment.
#[derive(Debug, Clone)]
pub struct CookieNames {
    secure: bool,
}

impl CookieNames {
    pub fn new(secure: bool) -> Self {
        CookieNames { secure }
    }

    fn build(&self, name: &'static str, value: String, same_site: SameSite) -> Cookie<'static> {
        Cookie::build((name, value))
            .path("/")
            .http_only(true)
            .same_site(same_site)
            .secure(self.secure)
            .build()
    }

    /// The session cookie. It has no Max-Age: the server enforces the lifetimes, and the
    /// browser drops it when closed.
    pub fn session_cookie(&self, token: &str) -> String {
        self.build(SESSION_COOKIE, token.to_string(), SameSite::Lax)
            .to_string()
    }

    pub fn expired_session_cookie(&self) -> String {
        let mut c = self.build(SESSION_COOKIE, String::new(), SameSite::Lax);
        c.make_removal();
        c.to_string()
    }

    pub fn csrf_cookie(&self, token: &str) -> String {
        self.build(CSRF_COOKIE, token.to_string(), SameSite::Strict)
            .to_string()
    }

    /// A new CSRF token, set at each change of who is signed in.
    pub fn fresh_csrf_cookie(&self) -> String {
        self.csrf_cookie(&new_token())
    }

    /// Holds the secret that ties SAML sign-in request `request_id` to this browser. Only the
    /// ACS receives it, and it lasts as long as the request may be answered. One cookie per
    /// request, so that sign-ins started in two tabs do not undo each other.
    pub fn saml_request_cookie(&self, request_id: &str, secret: &str, max_age: i64) -> String {
        Cookie::build((
            self.saml_request_cookie_name(request_id),
            secret.to_string(),
        ))
        .path(app::paths::SAML_ACS)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(self.secure)
        .max_age(cookie::time::Duration::seconds(max_age))
        .build()
        .to_string()
    }

    /// The name of the cookie that binds SAML sign-in request `request_id` to its browser. Over
    /// HTTPS it carries the `__Secure-` prefix, so that browsers take it only from a secure
    /// origin: a network attacker cannot plant one through plain HTTP.
    pub fn saml_request_cookie_name(&self, request_id: &str) -> String {
        if self.secure {
            format!("__Secure-jumpgate_saml{request_id}")
        } else {
            format!("jumpgate_saml{request_id}")
        }
    }

    pub fn expired_saml_request_cookie(&self, request_id: &str) -> String {
        let mut c = Cookie::build((self.saml_request_cookie_name(request_id), ""))
            .path(app::paths::SAML_ACS)
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .build();
        c.make_removal();
        c.to_string()
    }
}

/// Reads one cookie from a `Cookie` request header.
pub fn read_cookie(header: &str, name: &str) -> Option<String> {
    Cookie::split_parse(header)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let a = new_token();
        assert_ne!(a, new_token());
        assert_eq!(hash_token(&a).len(), 64);
        assert_ne!(hash_token(&a), a);
    }

    #[test]
    fn saml_binding_cookie_is_scoped_to_the_acs_and_prefixed_on_https() {
        let c = CookieNames::new(true).saml_request_cookie("_jgabc", "secret", 600);
        for part in [
            "__Secure-jumpgate_saml_jgabc=secret",
            "Path=/saml/acs",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Max-Age=600",
        ] {
            assert!(c.contains(part), "{part} missing: {c}");
        }
        let c = CookieNames::new(false).saml_request_cookie("_jgabc", "secret", 600);
        assert!(
            c.starts_with("jumpgate_saml_jgabc=secret;") && !c.contains("Secure"),
            "{c}"
        );
        let gone = CookieNames::new(true).expired_saml_request_cookie("_jgabc");
        assert!(gone.starts_with("__Secure-jumpgate_saml_jgabc=;") && gone.contains("Max-Age=0"));
    }

    #[test]
    fn session_cookie_is_httponly_lax_and_secure_on_https() {
        let c = CookieNames::new(true).session_cookie("tok");
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Secure"),
            "{c}"
        );
        let c = CookieNames::new(false).session_cookie("tok");
        assert!(!c.contains("Secure"), "{c}");
    }

    #[test]
    fn reads_cookie_among_others() {
        assert_eq!(
            read_cookie("a=1; jumpgate_session=xyz; b=2", SESSION_COOKIE).as_deref(),
            Some("xyz")
        );
        assert_eq!(read_cookie("a=1", SESSION_COOKIE), None);
        assert_eq!(read_cookie("jumpgate_session=", SESSION_COOKIE), None);
    }
}
