//! Runtime settings: values an administrator changes while Jumpgate runs, kept in the database
//! so that every node and the `jumpgate settings` command see the same ones. Each is read when
//! it is needed, so a change takes effect without a restart.

use crate::storage::{Storage, StorageError};

/// One runtime setting.
pub struct SettingDef {
    pub key: &'static str,
    pub default: &'static str,
    pub help: &'static str,
    /// Smallest and largest accepted value (all current settings are whole numbers).
    pub range: (i64, i64),
}

pub const SESSION_IDLE_MINUTES: &str = "session.idle_timeout_minutes";
pub const SESSION_ABSOLUTE_HOURS: &str = "session.absolute_timeout_hours";
pub const LOCKOUT_MAX_FAILURES: &str = "lockout.max_failures";
pub const LOCKOUT_MAX_FAILURES_PER_IP: &str = "lockout.max_failures_per_ip";
pub const LOCKOUT_WINDOW_MINUTES: &str = "lockout.window_minutes";
pub const LOCKOUT_DURATION_MINUTES: &str = "lockout.duration_minutes";
pub const SSH_IDLE_MINUTES: &str = "ssh.idle_timeout_minutes";
pub const SSH_MAX_SESSIONS_PER_USER: &str = "ssh.max_sessions_per_user";

pub const SETTINGS: &[SettingDef] = &[
    SettingDef {
        key: SESSION_IDLE_MINUTES,
        default: "60",
        help: "A web session ends after this many minutes without a request.",
        range: (1, 7 * 24 * 60),
    },
    SettingDef {
        key: SESSION_ABSOLUTE_HOURS,
        default: "12",
        help: "A web session ends this many hours after sign-in, however active.",
        range: (1, 30 * 24),
    },
    SettingDef {
        key: LOCKOUT_MAX_FAILURES,
        default: "5",
        help: "Failed sign-ins for one account (within the window) before it is locked.",
        range: (1, 1000),
    },
    SettingDef {
        key: LOCKOUT_MAX_FAILURES_PER_IP,
        default: "30",
        help: "Failed sign-ins from one client address (within the window) before it is locked out.",
        range: (1, 100_000),
    },
    SettingDef {
        key: LOCKOUT_WINDOW_MINUTES,
        default: "15",
        help: "Failures older than this many minutes are forgotten.",
        range: (1, 24 * 60),
    },
    SettingDef {
        key: LOCKOUT_DURATION_MINUTES,
        default: "15",
        help: "How long a lock lasts, in minutes.",
        range: (1, 7 * 24 * 60),
    },
    SettingDef {
        key: SSH_IDLE_MINUTES,
        default: "30",
        help: "An SSH gateway connection ends after this many minutes without input from the person.",
        range: (1, 7 * 24 * 60),
    },
    SettingDef {
        key: SSH_MAX_SESSIONS_PER_USER,
        default: "10",
        help: "Open SSH gateway connections one user may have at once; more are refused at sign-in.",
        range: (1, 1000),
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
    let n: i64 = value.trim().parse().map_err(|_| SettingsError::Invalid {
        key: key.to_string(),
        message: format!("`{value}` is not a whole number"),
    })?;
    let (lo, hi) = def.range;
    if n < lo || n > hi {
        return Err(SettingsError::Invalid {
            key: key.to_string(),
            message: format!("{n} is outside the accepted range {lo}..={hi}"),
        });
    }
    Ok(n.to_string())
}

/// Reads a setting, falling back to its default. A stored value that no longer validates (for
/// example after a range change) also falls back, so a bad row cannot widen a security limit.
pub async fn get_i64(storage: &Storage, key: &str) -> Result<i64, SettingsError> {
    let def = definition(key).ok_or_else(|| SettingsError::Unknown(key.to_string()))?;
    let stored = storage.setting(key).await?;
    let value = stored
        .and_then(|v| validate(key, &v).ok())
        .unwrap_or_else(|| def.default.to_string());
    value.parse().map_err(|_| SettingsError::Invalid {
        key: key.to_string(),
        message: "the built-in default does not parse".into(),
    })
}

pub async fn set(storage: &Storage, key: &str, value: &str) -> Result<String, SettingsError> {
    let value = validate(key, value)?;
    storage.set_setting(key, &value).await?;
    Ok(value)
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
