//! Start-up configuration: built-in defaults, then an optional TOML file, then environment
//! variables `JUMPGATE_<SECTION>_<KEY>`, each layer overriding the one before.
//!
//! Every key is declared once in [`KEYS`], which drives the parser, `jumpgate check-config` and
//! the key list in `jumpgate --help`. An unknown key, or a value that does not parse, stops
//! start-up with a message naming the key and where its value came from.
//!
//! Settings that an administrator changes while Jumpgate runs (session lifetimes, lockout) are not
//! here: they live in the database (see `settings`), so that every node and the CLI share them.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use url::Url;

/// One configuration key.
#[derive(Debug)]
pub struct KeyDef {
    pub section: &'static str,
    pub key: &'static str,
    /// `None` when the default is derived from another key.
    pub default: Option<&'static str>,
    pub help: &'static str,
}

impl KeyDef {
    pub fn name(&self) -> String {
        format!("{}.{}", self.section, self.key)
    }

    pub fn env_var(&self) -> String {
        format!(
            "JUMPGATE_{}_{}",
            self.section.to_ascii_uppercase(),
            self.key.to_ascii_uppercase()
        )
    }
}

pub const KEYS: &[KeyDef] = &[
    KeyDef {
        section: "web",
        key: "listen",
        default: Some("127.0.0.1:3000"),
        help: "Address and port of the web panel (HTTP). Put a TLS-terminating proxy in front for HTTPS.",
    },
    KeyDef {
        section: "web",
        key: "public_url",
        default: None,
        help: "The URL people use to reach the panel, e.g. https://jump.example.com. Defaults to http://<web.listen>. \
               Cookies are marked Secure when it starts with https://, and cross-site requests are checked against it.",
    },
    KeyDef {
        section: "ssh",
        key: "listen",
        default: Some("127.0.0.1:2222"),
        help: "Address and port of the native SSH gateway.",
    },
    KeyDef {
        section: "storage",
        key: "data_dir",
        default: Some("./data"),
        help: "Directory for the database file, host keys and the vault key. Created on first start.",
    },
    KeyDef {
        section: "storage",
        key: "database_url",
        default: Some("sqlite://./data/jumpgate.db"),
        help: "sqlite://PATH for the embedded database (default), or postgres://USER:PASS@HOST/DB for sites with several nodes.",
    },
    KeyDef {
        section: "vault",
        key: "master_key",
        default: None,
        help: "The vault master key (32 bytes, base64) that encrypts stored target credentials. \
               When unset, the key is kept in <storage.data_dir>/vault.key, created with mode 0600 on first start. \
               Best given by environment variable, never in a world-readable file.",
    },
    KeyDef {
        section: "log",
        key: "format",
        default: Some("text"),
        help: "Log format on standard error: text (human-readable) or json (one object per line).",
    },
    KeyDef {
        section: "log",
        key: "level",
        default: Some("info"),
        help: "Log filter: error, warn, info, debug or trace, or a tracing directive such as jumpgate=debug,info.",
    },
];

/// Where a key's value came from, for messages and `check-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::File(p) => write!(f, "file {}", p.display()),
            Source::Env(v) => write!(f, "environment variable {v}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the configuration file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error(
        "unknown configuration key `{key}` in {origin}. Run `jumpgate check-config` for the list of keys."
    )]
    UnknownKey { key: String, origin: Source },
    #[error("invalid value for `{key}` (from {origin}): {message}")]
    Invalid {
        key: String,
        origin: Source,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A configured secret: its `Debug` does not show it.
#[derive(Clone)]
pub struct HiddenString(pub String);

impl fmt::Debug for HiddenString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<hidden>")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub web_listen: SocketAddr,
    pub public_url: Url,
    pub ssh_listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub log_format: LogFormat,
    pub log_level: String,
    /// `vault.master_key`, when set. Never printed.
    pub vault_master_key: Option<HiddenString>,
    /// Every key with its final value and source, for `check-config`.
    pub resolved: Vec<(&'static KeyDef, String, Source)>,
}

impl Config {
    /// Where the vault master key comes from.
    pub fn vault_key_source(&self) -> crate::vault::KeySource {
        match &self.vault_master_key {
            Some(k) => crate::vault::KeySource::Inline(k.0.clone()),
            None => crate::vault::KeySource::File(self.data_dir.join("vault.key")),
        }
    }

    /// True when the panel is reached over HTTPS, so cookies must be `Secure`.
    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// `scheme://host[:port]` of the public URL, as browsers send it in `Origin`.
    pub fn public_origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }
}

/// Loads the configuration from the defaults, `file` and the process environment.
pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    load_from(file, &env)
}

/// Like [`load`], with the environment given explicitly (for tests).
pub fn load_from(file: Option<&Path>, env: &[(String, String)]) -> Result<Config, ConfigError> {
    let mut values: BTreeMap<String, (String, Source)> = BTreeMap::new();
    for k in KEYS {
        if let Some(d) = k.default {
            values.insert(k.name(), (d.to_string(), Source::Default));
        }
    }

    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        for (key, value) in parse_file(path, &text)? {
            values.insert(key, (value, Source::File(path.to_path_buf())));
        }
    }

    for (name, value) in env {
        let Some(rest) = name.strip_prefix("JUMPGATE_") else {
            continue;
        };
        // Only variables that start with a known section are configuration; others (build and
        // test helpers) are left alone. Within a section, an unknown key is an error, since it
        // is almost always a typo that would otherwise be silently ignored.
        let Some(section) = KEYS
            .iter()
            .map(|k| k.section)
            .find(|s| rest.starts_with(&format!("{}_", s.to_ascii_uppercase())))
        else {
            continue;
        };
        let Some(def) = KEYS.iter().find(|k| &k.env_var() == name) else {
            return Err(ConfigError::UnknownKey {
                key: format!(
                    "{section}.{}",
                    rest[section.len() + 1..].to_ascii_lowercase()
                ),
                origin: Source::Env(name.clone()),
            });
        };
        values.insert(def.name(), (value.clone(), Source::Env(name.clone())));
    }

    build(values)
}

fn parse_file(path: &Path, text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let source = Source::File(path.to_path_buf());
    let mut out = Vec::new();
    for (section, inner) in table {
        let toml::Value::Table(inner) = inner else {
            return Err(ConfigError::UnknownKey {
                key: section,
                origin: source,
            });
        };
        for (key, value) in inner {
            let name = format!("{section}.{key}");
            if !KEYS.iter().any(|k| k.name() == name) {
                return Err(ConfigError::UnknownKey {
                    key: name,
                    origin: source,
                });
            }
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(ConfigError::Invalid {
                        key: name,
                        origin: source,
                        message: format!("expected a string, found {}", other.type_str()),
                    });
                }
            };
            out.push((name, text));
        }
    }
    Ok(out)
}

fn build(values: BTreeMap<String, (String, Source)>) -> Result<Config, ConfigError> {
    let get = |key: &str| -> (String, Source) {
        values
            .get(key)
            .cloned()
            .unwrap_or_else(|| (String::new(), Source::Default))
    };
    let invalid = |key: &str, origin: Source, message: String| ConfigError::Invalid {
        key: key.to_string(),
        origin,
        message,
    };
    let addr = |key: &str| -> Result<SocketAddr, ConfigError> {
        let (v, src) = get(key);
        v.trim().parse().map_err(|_| {
            invalid(
                key,
                src,
                format!(
                    "`{v}` is not an address with a port, such as 127.0.0.1:3000 or [::1]:3000"
                ),
            )
        })
    };

    let web_listen = addr("web.listen")?;
    let ssh_listen = addr("ssh.listen")?;

    let public_url = match values.get("web.public_url") {
        Some((v, src)) => {
            let url = Url::parse(v.trim()).map_err(|e| {
                invalid(
                    "web.public_url",
                    src.clone(),
                    format!("`{v}` is not a URL: {e}"),
                )
            })?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(invalid(
                    "web.public_url",
                    src.clone(),
                    format!("`{v}` must be an http:// or https:// URL with a host name"),
                ));
            }
            url
        }
        None => Url::parse(&format!("http://{web_listen}/"))
            .map_err(|e| invalid("web.public_url", Source::Default, e.to_string()))?,
    };

    let (data_dir, data_src) = get("storage.data_dir");
    if data_dir.trim().is_empty() {
        return Err(invalid(
            "storage.data_dir",
            data_src,
            "must not be empty".into(),
        ));
    }

    let (database_url, db_src) = get("storage.database_url");
    let database_url = database_url.trim().to_string();
    if !(database_url.starts_with("sqlite:")
        || database_url.starts_with("postgres://")
        || database_url.starts_with("postgresql://"))
    {
        return Err(invalid(
            "storage.database_url",
            db_src,
            "expected sqlite://PATH or postgres://USER:PASS@HOST/DB".into(),
        ));
    }

    let (format, fmt_src) = get("log.format");
    let log_format = match format.trim() {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            return Err(invalid(
                "log.format",
                fmt_src,
                format!("`{other}` is neither text nor json"),
            ));
        }
    };
    let (log_level, level_src) = get("log.level");
    if tracing_subscriber::EnvFilter::try_new(log_level.trim()).is_err() {
        return Err(invalid(
            "log.level",
            level_src,
            format!("`{log_level}` is not a log level or filter directive"),
        ));
    }

    let vault_master_key = values
        .get("vault.master_key")
        .map(|(v, _)| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .map(HiddenString);

    let mut resolved = Vec::new();
    for k in KEYS {
        let name = k.name();
        let (value, source) = match (name.as_str(), values.get(&name)) {
            ("vault.master_key", Some((_, s))) => ("(set; hidden)".to_string(), s.clone()),
            ("vault.master_key", None) => (
                format!(
                    "(not set: key file {})",
                    Path::new(data_dir.trim()).join("vault.key").display()
                ),
                Source::Default,
            ),
            (_, Some((v, s))) => (v.clone(), s.clone()),
            (_, None) => (public_url.to_string(), Source::Default),
        };
        resolved.push((k, value, source));
    }

    Ok(Config {
        web_listen,
        public_url,
        ssh_listen,
        data_dir: PathBuf::from(data_dir.trim()),
        database_url,
        log_format,
        log_level: log_level.trim().to_string(),
        vault_master_key,
        resolved,
    })
}

/// The key list shown at the end of `jumpgate --help`.
pub fn keys_help() -> String {
    let mut out = String::from(
        "Configuration keys (TOML file given with --config, each also settable as an environment variable):\n",
    );
    for k in KEYS {
        let default = k.default.unwrap_or("(derived)");
        out.push_str(&format!(
            "  {:<22} {:<32} default {}\n      {}\n",
            k.name(),
            k.env_var(),
            default,
            k.help
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults_need_no_file() {
        let c = load_from(None, &[]).unwrap();
        assert_eq!(c.web_listen.to_string(), "127.0.0.1:3000");
        assert_eq!(c.ssh_listen.to_string(), "127.0.0.1:2222");
        assert_eq!(c.public_url.as_str(), "http://127.0.0.1:3000/");
        assert_eq!(c.database_url, "sqlite://./data/jumpgate.db");
        assert!(!c.is_https());
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[web]\nlisten = \"127.0.0.1:4000\"\npublic_url = \"https://jump.example.com\"\n",
        )
        .unwrap();
        let c = load_from(
            Some(&path),
            &env(&[("JUMPGATE_WEB_LISTEN", "127.0.0.1:5000")]),
        )
        .unwrap();
        assert_eq!(c.web_listen.to_string(), "127.0.0.1:5000");
        assert!(c.is_https());
        assert_eq!(c.public_origin(), "https://jump.example.com");
    }

    #[test]
    fn unknown_file_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[web]\nlisen = \"127.0.0.1:4000\"\n").unwrap();
        let err = load_from(Some(&path), &[]).unwrap_err().to_string();
        assert!(err.contains("`web.lisen`"), "{err}");
    }

    #[test]
    fn unknown_environment_key_is_named() {
        let err = load_from(None, &env(&[("JUMPGATE_WEB_LISEN", "x")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("web.lisen") && err.contains("JUMPGATE_WEB_LISEN"),
            "{err}"
        );
    }

    #[test]
    fn unrelated_jumpgate_variables_are_ignored() {
        assert!(load_from(None, &env(&[("JUMPGATE_CACHE_DIR", "/tmp")])).is_ok());
    }

    #[test]
    fn bad_value_names_key_and_source() {
        let err = load_from(None, &env(&[("JUMPGATE_SSH_LISTEN", "nowhere")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`ssh.listen`") && err.contains("JUMPGATE_SSH_LISTEN"),
            "{err}"
        );
        let err = load_from(None, &env(&[("JUMPGATE_LOG_FORMAT", "xml")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`log.format`"), "{err}");
        let err = load_from(
            None,
            &env(&[("JUMPGATE_STORAGE_DATABASE_URL", "mysql://x")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`storage.database_url`"), "{err}");
    }
}
