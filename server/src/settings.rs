//! Runtime settings: values an administrator changes while Jumpgate runs, kept in the database
//! so that every node and the `jumpgate settings` command see the same ones. Each is read when
//! it is needed, so a change takes effect without a restart.

use crate::storage::{Storage, StorageError};

/// What values a setting takes.
pub enum Kind {
    /// A whole number within the inclusive range.
    Int(i64, i64),
    /// `true` or `false` (`on`/`off`, `yes`/`no` and `1`/`0` are accepted and stored as
    /// `true`/`false`).
    Bool,
    /// One of the listed words.
    Choice(&'static [&'static str]),
    /// Free text up to this many bytes; empty means "not set".
    Text(usize),
    /// An `http` or `https` URL, or empty.
    Url,
    /// A check of its own: returns the canonical form or says what is wrong.
    Custom(fn(&str) -> Result<String, String>),
}

/// One runtime setting.
pub struct SettingDef {
    pub key: &'static str,
    pub default: &'static str,
    pub help: &'static str,
    pub kind: Kind,
}

pub const SESSION_IDLE_MINUTES: &str = "session.idle_timeout_minutes";
pub const SESSION_ABSOLUTE_HOURS: &str = "session.absolute_timeout_hours";
pub const LOCKOUT_MAX_FAILURES: &str = "lockout.max_failures";
pub const LOCKOUT_MAX_FAILURES_PER_IP: &str = "lockout.max_failures_per_ip";
pub const LOCKOUT_WINDOW_MINUTES: &str = "lockout.window_minutes";
pub const LOCKOUT_DURATION_MINUTES: &str = "lockout.duration_minutes";
pub const SSH_IDLE_MINUTES: &str = "ssh.idle_timeout_minutes";
pub const SSH_MAX_SESSIONS_PER_USER: &str = "ssh.max_sessions_per_user";
pub const WEB_AUTH: &str = "web_auth";
pub const SAML_METADATA_URL: &str = "saml.metadata_url";
pub const SAML_METADATA_REFRESH_HOURS: &str = "saml.metadata_refresh_hours";
pub const SAML_AUTO_CREATE: &str = "saml.auto_create_users";
pub const SAML_ALLOW_IDP_INITIATED: &str = "saml.allow_idp_initiated";
pub const SAML_SKIP_2FA: &str = "saml.skip_2fa";
pub const SAML_EMAIL_ATTRIBUTE: &str = "saml.email_attribute";
pub const SAML_USERNAME_ATTRIBUTE: &str = "saml.username_attribute";
pub const SAML_DISPLAY_NAME_ATTRIBUTE: &str = "saml.display_name_attribute";
pub const SAML_GROUPS_ATTRIBUTE: &str = "saml.groups_attribute";
pub const SAML_SSH_BROWSER_APPROVAL: &str = "saml.ssh_browser_approval";
pub const SAML_CLOCK_SKEW_SECONDS: &str = "saml.clock_skew_seconds";
pub const SAML_SIGN_REQUESTS: &str = "saml.sign_requests";
pub const SAML_SINGLE_LOGOUT: &str = "saml.single_logout";
pub const SAML_IDP_ENTITY_ID: &str = "saml.idp_entity_id";
pub const SAML_IDP_SSO_URL: &str = "saml.idp_sso_url";
pub const SAML_IDP_SSO_BINDING: &str = "saml.idp_sso_binding";
pub const SAML_IDP_SLO_URL: &str = "saml.idp_slo_url";
pub const SAML_IDP_CERTIFICATES: &str = "saml.idp_certificates";

pub const SETTINGS: &[SettingDef] = &[
    SettingDef {
        key: SESSION_IDLE_MINUTES,
        default: "60",
        help: "A web session ends after this many minutes without a request.",
        kind: Kind::Int(1, 7 * 24 * 60),
    },
    SettingDef {
        key: SESSION_ABSOLUTE_HOURS,
        default: "12",
        help: "A web session ends this many hours after sign-in, however active.",
        kind: Kind::Int(1, 30 * 24),
    },
    SettingDef {
        key: LOCKOUT_MAX_FAILURES,
        default: "5",
        help: "Failed sign-ins for one account (within the window) before it is locked.",
        kind: Kind::Int(1, 1000),
    },
    SettingDef {
        key: LOCKOUT_MAX_FAILURES_PER_IP,
        default: "30",
        help: "Failed sign-ins from one client address (within the window) before it is locked out.",
        kind: Kind::Int(1, 100_000),
    },
    SettingDef {
        key: LOCKOUT_WINDOW_MINUTES,
        default: "15",
        help: "Failures older than this many minutes are forgotten.",
        kind: Kind::Int(1, 24 * 60),
    },
    SettingDef {
        key: LOCKOUT_DURATION_MINUTES,
        default: "15",
        help: "How long a lock lasts, in minutes.",
        kind: Kind::Int(1, 7 * 24 * 60),
    },
    SettingDef {
        key: SSH_IDLE_MINUTES,
        default: "30",
        help: "An SSH gateway connection ends after this many minutes without input from the person.",
        kind: Kind::Int(1, 7 * 24 * 60),
    },
    SettingDef {
        key: SSH_MAX_SESSIONS_PER_USER,
        default: "10",
        help: "Open SSH gateway connections one user may have at once; more are refused at sign-in.",
        kind: Kind::Int(1, 1000),
    },
    SettingDef {
        key: WEB_AUTH,
        default: "password",
        help: "How people sign in to the web panel: `password` or `saml` (the identity provider).",
        kind: Kind::Choice(&["password", "saml"]),
    },
    SettingDef {
        key: SAML_METADATA_URL,
        default: "",
        help: "The identity provider's metadata URL; fetched again on a schedule when set.",
        kind: Kind::Url,
    },
    SettingDef {
        key: SAML_METADATA_REFRESH_HOURS,
        default: "24",
        help: "Hours between automatic fetches of the metadata URL (0: never). A failed fetch \
               keeps the last good metadata.",
        kind: Kind::Int(0, 720),
    },
    SettingDef {
        key: SAML_AUTO_CREATE,
        default: "false",
        help: "Create a user account at the first SAML sign-in of an email Jumpgate does not know.",
        kind: Kind::Bool,
    },
    SettingDef {
        key: SAML_ALLOW_IDP_INITIATED,
        default: "false",
        help: "Accept sign-ins started at the identity provider (for example the AWS access portal).",
        kind: Kind::Bool,
    },
    SettingDef {
        key: SAML_SKIP_2FA,
        default: "false",
        help: "Native SSH skips the verification code while the user has a live SAML web session.",
        kind: Kind::Bool,
    },
    SettingDef {
        key: SAML_EMAIL_ATTRIBUTE,
        default: "email",
        help: "The SAML attribute that carries the email (a NameID in emailAddress format also works).",
        kind: Kind::Text(256),
    },
    SettingDef {
        key: SAML_USERNAME_ATTRIBUTE,
        default: "",
        help: "The SAML attribute that names new users; empty uses the email's local part.",
        kind: Kind::Text(256),
    },
    SettingDef {
        key: SAML_DISPLAY_NAME_ATTRIBUTE,
        default: "",
        help: "The SAML attribute that carries a new user's display name; empty for none.",
        kind: Kind::Text(256),
    },
    SettingDef {
        key: SAML_GROUPS_ATTRIBUTE,
        default: "groups",
        help: "The SAML attribute whose values the group mappings match; empty for none.",
        kind: Kind::Text(256),
    },
    SettingDef {
        key: SAML_SSH_BROWSER_APPROVAL,
        default: "false",
        help: "Native SSH sign-in approved in a browser signed in through SAML, instead of \
               password and security code: the SSH client shows a link and a code to approve. \
               Needs the identity provider configured.",
        kind: Kind::Bool,
    },
    SettingDef {
        key: SAML_SIGN_REQUESTS,
        default: "false",
        help: "Sign AuthnRequests (HTTP-Redirect: RSA-SHA256 over the query; HTTP-POST: an \
               enveloped XML signature), logout requests and logout answers with Jumpgate's \
               key, whose certificate the SP metadata carries.",
        kind: Kind::Bool,
    },
    SettingDef {
        key: SAML_SINGLE_LOGOUT,
        default: "true",
        help: "When the identity provider has a single logout URL: signing out of the panel \
               signs out at the IdP too, and the IdP's signed logout requests end panel \
               sessions (HTTP-Redirect binding).",
        kind: Kind::Bool,
    },
    SettingDef {
        key: SAML_CLOCK_SKEW_SECONDS,
        default: "120",
        help: "Clock difference tolerated between the identity provider and Jumpgate, in seconds.",
        kind: Kind::Int(0, 600),
    },
    SettingDef {
        key: SAML_IDP_ENTITY_ID,
        default: "",
        help: "The identity provider's entity ID (the Issuer of its responses).",
        kind: Kind::Text(1024),
    },
    SettingDef {
        key: SAML_IDP_SSO_URL,
        default: "",
        help: "Where sign-in requests go (the identity provider's single sign-on URL).",
        kind: Kind::Url,
    },
    SettingDef {
        key: SAML_IDP_SSO_BINDING,
        default: "redirect",
        help: "How sign-in requests reach the single sign-on URL: `redirect` or `post`.",
        kind: Kind::Choice(&["redirect", "post"]),
    },
    SettingDef {
        key: SAML_IDP_SLO_URL,
        default: "",
        help: "The identity provider's single logout URL; empty when it has none.",
        kind: Kind::Url,
    },
    SettingDef {
        key: SAML_IDP_CERTIFICATES,
        default: "",
        help: "The identity provider's signing certificates (PEM, one or more; all are trusted).",
        kind: Kind::Custom(crate::saml::certs::canonical_pem_bundle),
    },
];

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("unknown setting `{0}`. Run `jumpgate settings list` for the settings there are.")]
    Unknown(String),
    #[error("invalid value for `{key}`: {message}")]
    Invalid { key: String, message: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub fn definition(key: &str) -> Option<&'static SettingDef> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// Checks a value for `key` and returns it in canonical form.
pub fn validate(key: &str, value: &str) -> Result<String, SettingsError> {
    let def = definition(key).ok_or_else(|| SettingsError::Unknown(key.to_string()))?;
    check(&def.kind, value).map_err(|message| SettingsError::Invalid {
        key: key.to_string(),
        message,
    })
}

fn check(kind: &Kind, value: &str) -> Result<String, String> {
    let trimmed = value.trim();
    match kind {
        Kind::Int(lo, hi) => {
            let n: i64 = trimmed
                .parse()
                .map_err(|_| format!("`{value}` is not a whole number"))?;
            if n < *lo || n > *hi {
                return Err(format!("{n} is outside the accepted range {lo}..={hi}"));
            }
            Ok(n.to_string())
        }
        Kind::Bool => match trimmed.to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" | "1" => Ok("true".into()),
            "false" | "off" | "no" | "0" => Ok("false".into()),
            _ => Err(format!("`{value}` is not true or false")),
        },
        Kind::Choice(words) => {
            let lower = trimmed.to_ascii_lowercase();
            if words.contains(&lower.as_str()) {
                Ok(lower)
            } else {
                Err(format!("`{value}` is not one of: {}", words.join(", ")))
            }
        }
        Kind::Text(max) => {
            if trimmed.len() > *max {
                return Err(format!("longer than {max} bytes"));
            }
            if trimmed.chars().any(char::is_control) {
                return Err("control characters are not allowed".into());
            }
            Ok(trimmed.to_string())
        }
        Kind::Url => {
            if trimmed.is_empty() {
                return Ok(String::new());
            }
            let url = url::Url::parse(trimmed).map_err(|e| format!("not a URL ({e})"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err("must be an http:// or https:// URL with a host".into());
            }
            if trimmed.len() > 2048 {
                return Err("longer than 2048 bytes".into());
            }
            Ok(trimmed.to_string())
        }
        Kind::Custom(f) => f(value),
    }
}

/// The stored value of a setting, or its default. A stored value that no longer validates
/// (for example after a range change) also falls back, so a bad row cannot widen a limit.
pub async fn get(storage: &Storage, key: &str) -> Result<String, SettingsError> {
    let def = definition(key).ok_or_else(|| SettingsError::Unknown(key.to_string()))?;
    let stored = storage.setting(key).await?;
    Ok(stored
        .and_then(|v| validate(key, &v).ok())
        .unwrap_or_else(|| def.default.to_string()))
}

/// Reads a whole-number setting.
pub async fn get_i64(storage: &Storage, key: &str) -> Result<i64, SettingsError> {
    get(storage, key)
        .await?
        .parse()
        .map_err(|_| SettingsError::Invalid {
            key: key.to_string(),
            message: "not a whole-number setting".into(),
        })
}

/// Reads a true/false setting.
pub async fn get_bool(storage: &Storage, key: &str) -> Result<bool, SettingsError> {
    Ok(get(storage, key).await? == "true")
}

/// Checks and stores one setting. See [`set_many`].
pub async fn set(storage: &Storage, key: &str, value: &str) -> Result<String, SettingsError> {
    let mut stored = set_many(storage, &[(key, value)]).await?;
    Ok(stored.pop().unwrap_or_default())
}

/// The settings that must all be filled in while the web panel signs in through SAML or SSH
/// sign-ins are approved through it.
const NEEDED_FOR_SAML: [(&str, &str); 3] = [
    (SAML_IDP_ENTITY_ID, "the identity provider's entity ID"),
    (SAML_IDP_SSO_URL, "its single sign-on URL"),
    (SAML_IDP_CERTIFICATES, "at least one signing certificate"),
];

/// Checks every value first and stores them only when all are good, so that a form with one
/// bad field changes nothing. Returns the stored (canonical) values in order.
///
/// Switching the web panel to SAML, or SSH sign-in to browser approval, is refused until the
/// identity provider is configured, certificates included, and so is removing any of that while
/// either is on: nobody gets locked out, and no response is ever accepted unsigned.
pub async fn set_many(
    storage: &Storage,
    changes: &[(&str, &str)],
) -> Result<Vec<String>, SettingsError> {
    let mut canonical = Vec::with_capacity(changes.len());
    for (key, value) in changes {
        canonical.push(validate(key, value)?);
    }
    let touches_saml_rule = changes.iter().any(|(k, _)| {
        *k == WEB_AUTH
            || *k == SAML_SSH_BROWSER_APPROVAL
            || NEEDED_FOR_SAML.iter().any(|(n, _)| n == k)
    });
    if touches_saml_rule {
        // The value each key will have once this change is stored.
        let after = |key: &str| -> Option<String> {
            changes
                .iter()
                .zip(&canonical)
                .rev()
                .find(|((k, _), _)| *k == key)
                .map(|(_, v)| v.clone())
        };
        let mut users = Vec::new();
        for (key, on) in [(WEB_AUTH, "saml"), (SAML_SSH_BROWSER_APPROVAL, "true")] {
            let value = match after(key) {
                Some(v) => v,
                None => get(storage, key).await?,
            };
            if value == on {
                users.push(key);
            }
        }
        if let Some(first_user) = users.first() {
            for (needed, what) in NEEDED_FOR_SAML {
                let value = match after(needed) {
                    Some(v) => v,
                    None => get(storage, needed).await?,
                };
                if !value.is_empty() {
                    continue;
                }
                // Blame the switch being turned on in this change, if any; otherwise the
                // identity provider field being emptied.
                let switching = users.iter().find(|k| after(k).is_some());
                let (key, message) = match switching {
                    Some(key) => (
                        *key,
                        format!(
                            "SAML is not configured yet: {what} is missing (`{needed}`). \
                             Fetch the identity provider's metadata first \
                             (`jumpgate saml fetch URL`)."
                        ),
                    ),
                    None => (
                        needed,
                        format!(
                            "`{first_user}` relies on SAML, which needs {what}. Turn that \
                             off first."
                        ),
                    ),
                };
                return Err(SettingsError::Invalid {
                    key: key.to_string(),
                    message,
                });
            }
        }
    }
    for ((key, _), value) in changes.iter().zip(&canonical) {
        storage.set_setting(key, value).await?;
    }
    Ok(canonical)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn validates_numbers_and_ranges() {
        assert_eq!(validate(SESSION_IDLE_MINUTES, " 30 ").unwrap(), "30");
        assert!(validate(SESSION_IDLE_MINUTES, "0").is_err());
        assert!(validate(SESSION_IDLE_MINUTES, "soon").is_err());
        assert_eq!(validate(SAML_SKIP_2FA, "On").unwrap(), "true");
        assert!(validate(SAML_SKIP_2FA, "maybe").is_err());
        assert_eq!(validate(SAML_SSH_BROWSER_APPROVAL, "off").unwrap(), "false");
        assert_eq!(validate(SAML_SSH_BROWSER_APPROVAL, "on").unwrap(), "true");
        assert_eq!(validate(WEB_AUTH, "SAML").unwrap(), "saml");
        assert!(validate(WEB_AUTH, "ldap").is_err());
        assert!(validate(SAML_METADATA_URL, "ftp://x/").is_err());
        assert!(validate(SAML_IDP_CERTIFICATES, "not a certificate").is_err());
        assert!(matches!(
            validate("no.such", "1"),
            Err(SettingsError::Unknown(_))
        ));
    }

    #[test]
    fn every_default_validates() {
        for s in SETTINGS {
            assert!(validate(s.key, s.default).is_ok(), "{}", s.key);
        }
    }
}
