//! The administration commands of the `jumpgate` binary. They work on the same database as a
//! running server, so changes take effect there at once. Secrets are read from standard input or
//! a file, never from the command line, where other users could see them in the process list.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use zeroize::Zeroizing;

use crate::auth::{Auth, password, totp};
use crate::config::Config;
use crate::inventory::{self, Credential, ServerSpec};
use crate::storage::{GrantTarget, Grantee, NewUser, Storage};
use crate::{settings, vault};

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a local user. Without --password-stdin a one-time password is printed, which the
    /// user must change at first sign-in.
    Add {
        name: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long, default_value = "user", value_parser = ["admin", "user"])]
        role: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password, read from standard input.
    SetPassword {
        name: String,
        /// Make the user choose a new password at the next sign-in.
        #[arg(long)]
        must_change: bool,
    },
    /// Change a user's email, display name or role (an empty value clears email and name).
    Edit {
        name: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long, value_parser = ["admin", "user"])]
        role: Option<String>,
    },
    /// Set a user's security code (asked by SSH sign-in), read from standard input.
    SetSecurityCode { name: String },
    /// Clear a user's security code; they set a new one under Account in the web panel.
    ClearSecurityCode { name: String },
    /// Turn TOTP on for a user with a new secret and print the otpauth:// URI for provisioning.
    TotpEnroll { name: String },
    /// Turn TOTP off for a user (for a lost authenticator).
    TotpReset { name: String },
    /// List users.
    List,
    /// Disable a user: sign-in is refused and open web sessions end.
    Disable { name: String },
    /// Enable a disabled user.
    Enable { name: String },
    /// Delete a user and their grants and sessions.
    Delete { name: String },
}

#[derive(Subcommand)]
pub enum UserGroupCommand {
    /// Create a user group.
    Add {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// Add a user to a user group.
    AddMember { group: String, user: String },
    /// Remove a user from a user group.
    RemoveMember { group: String, user: String },
    /// List user groups.
    List,
    /// Delete a user group with its memberships and grants.
    Delete { name: String },
}

#[derive(Subcommand)]
pub enum GroupCommand {
    /// Create a server group; nest with '/', e.g. prod/web (missing parents are created).
    Add { path: String },
    /// List server groups.
    List,
    /// Delete an empty server group.
    Delete { path: String },
}

#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct CredentialArgs {
    /// Read the target password from standard input.
    #[arg(long)]
    password_stdin: bool,
    /// A private key file (OpenSSH or PEM format).
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Use the gateway's own key; add its public half to the target's authorized_keys.
    #[arg(long)]
    gateway_key: bool,
}

#[derive(Subcommand)]
pub enum ServerCommand {
    /// Add a server to a server group.
    Add {
        name: String,
        #[arg(long, value_name = "PATH")]
        group: String,
        #[arg(long)]
        host: String,
        #[arg(long, default_value_t = 22)]
        port: u16,
        /// The login name on the target.
        #[arg(long)]
        login: String,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        credential: CredentialArgs,
        /// With --key-file: read the key's passphrase from standard input.
        #[arg(long, requires = "key_file")]
        passphrase_stdin: bool,
    },
    /// Read the server's SSH host key and pin it. A key different from the pinned one is
    /// refused unless --accept is given.
    Scan {
        name: String,
        /// Accept a changed host key (after checking its fingerprint with the server's owner).
        #[arg(long)]
        accept: bool,
    },
    /// Print the public half of the gateway's own key, for targets' authorized_keys
    /// (servers added with --gateway-key log in with it).
    GatewayKey,
    /// Replace the credential the gateway uses for a server (the old one is not shown).
    SetCredential {
        name: String,
        #[command(flatten)]
        credential: CredentialArgs,
        /// With --key-file: read the key's passphrase from standard input.
        #[arg(long, requires = "key_file")]
        passphrase_stdin: bool,
    },
    /// List servers (credentials are never shown).
    List,
    /// Delete a server and the grants on it.
    Delete { name: String },
}

#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct GranteeArgs {
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    user_group: Option<String>,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct TargetArgs {
    /// A server group path: the grant covers every server in it and below it.
    #[arg(long, value_name = "PATH")]
    group: Option<String>,
    #[arg(long)]
    server: Option<String>,
}

#[derive(Subcommand)]
pub enum GrantCommand {
    /// Grant a user or user group a server group or a single server.
    Add {
        #[command(flatten)]
        grantee: GranteeArgs,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// List grants.
    List,
    /// Remove a grant by its id (see `grant list`).
    Remove { id: i64 },
}

#[derive(Subcommand)]
pub enum VaultCommand {
    /// Re-encrypt every stored secret under a new master key.
    Rotate,
}

#[derive(Subcommand)]
pub enum SamlCommand {
    /// Download the identity provider's metadata from URL and store its entity ID, single
    /// sign-on and logout URLs and signing certificates (what the Fetch button does).
    Fetch {
        url: String,
        /// Show what the metadata says without storing it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print Jumpgate's own entity ID, ACS URL, metadata URL and single logout URL, for the
    /// identity provider.
    Info,
    /// Map group values the identity provider sends to Jumpgate user groups (applied at each
    /// SAML sign-in).
    #[command(subcommand)]
    Map(SamlMapCommand),
}

#[derive(Subcommand)]
pub enum SamlMapCommand {
    /// List the mappings.
    List,
    /// Map IDP_VALUE (as the IdP sends it; AWS IAM Identity Center sends group IDs) to the
    /// user group USER_GROUP.
    Add {
        idp_value: String,
        user_group: String,
    },
    /// Remove the mapping from IDP_VALUE to USER_GROUP.
    Remove {
        idp_value: String,
        user_group: String,
    },
}

#[derive(Subcommand)]
pub enum SettingsCommand {
    /// List every setting with its current value.
    List,
    /// Print one setting's value.
    Get { key: String },
    /// Change one setting.
    Set { key: String, value: String },
}

/// Reads one secret from standard input: the whole input, less one trailing newline.
fn read_secret(what: &str) -> anyhow::Result<Zeroizing<String>> {
    let mut text = Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut text)
        .with_context(|| format!("reading the {what} from standard input"))?;
    let trimmed = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if trimmed.is_empty() {
        bail!("no {what} on standard input");
    }
    Ok(Zeroizing::new(trimmed.to_string()))
}

async fn user(storage: &Storage, name: &str) -> anyhow::Result<crate::storage::UserRow> {
    storage
        .user_by_username(name)
        .await?
        .with_context(|| format!("there is no user named `{name}`"))
}

fn print(json_out: bool, value: serde_json::Value, text: impl FnOnce() -> String) {
    if json_out {
        println!("{value}");
    } else {
        println!("{}", text());
    }
}

pub async fn users(
    storage: &Storage,
    config: &Config,
    cmd: UserCommand,
    json_out: bool,
) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add {
            name,
            email,
            display_name,
            role,
            password_stdin,
        } => {
            if let Some(problem) = crate::auth::username_problem(&name) {
                bail!("{problem}");
            }
            let (secret, generated) = if password_stdin {
                let p = read_secret("password")?;
                if let Some(problem) = password::password_problem(&p, &name, None) {
                    bail!("{problem}");
                }
                (p, false)
            } else {
                (Zeroizing::new(password::one_time_password()), true)
            };
            let hash = password::hash(&secret).await?;
            let id = storage
                .create_user(&NewUser {
                    username: &name,
                    email: email.as_deref(),
                    display_name: display_name.as_deref(),
                    role: &role,
                    origin: "local",
                    password_hash: Some(&hash),
                    must_change_password: generated,
                })
                .await?;
            let otp = generated.then(|| secret.to_string());
            print(
                json_out,
                json!({ "id": id, "username": name, "role": role, "one_time_password": otp }),
                || match &otp {
                    Some(p) => format!(
                        "Created user {name} ({role}). One-time password (to be changed at first sign-in): {p}"
                    ),
                    None => format!("Created user {name} ({role})."),
                },
            );
        }
        UserCommand::SetPassword { name, must_change } => {
            let u = user(storage, &name).await?;
            let p = read_secret("password")?;
            if let Some(problem) = password::password_problem(&p, &u.username, None) {
                bail!("{problem}");
            }
            storage
                .set_password_hash(u.id, &password::hash(&p).await?, must_change)
                .await?;
            storage.delete_user_sessions(u.id, None).await?;
            print(
                json_out,
                json!({ "username": name, "changed": "password" }),
                || format!("Password of {name} changed; their web sessions were ended."),
            );
        }
        UserCommand::SetSecurityCode { name } => {
            let u = user(storage, &name).await?;
            let code = read_secret("security code")?;
            if code.chars().count() < password::MIN_SECURITY_CODE_LEN {
                bail!(
                    "the security code is too short: use at least {} characters",
                    password::MIN_SECURITY_CODE_LEN
                );
            }
            storage
                .set_security_code_hash(u.id, &password::hash(&code).await?)
                .await?;
            print(
                json_out,
                json!({ "username": name, "changed": "security_code" }),
                || format!("Security code of {name} set."),
            );
        }
        UserCommand::TotpEnroll { name } => {
            let u = user(storage, &name).await?;
            let secret = totp::new_secret();
            let (uri, _) = totp::enrollment(&secret, &u.username)?;
            // The current step counts as used, so a code shown before enrolment cannot be replayed.
            let step = (totp::unix_time() / 30) as i64;
            let vault = vault::open_at_start(storage, &config.vault_key_source()).await?;
            let sealed = vault.seal(&vault::totp_context(u.id), secret.as_bytes())?;
            storage.enable_totp(u.id, &sealed, step).await?;
            print(
                json_out,
                json!({ "username": name, "otpauth_uri": uri }),
                || uri.clone(),
            );
        }
        UserCommand::Edit {
            name,
            email,
            display_name,
            role,
        } => {
            let u = user(storage, &name).await?;
            let email = match email {
                Some(e) => Some(e.trim().to_string()).filter(|e| !e.is_empty()),
                None => u.email.clone(),
            };
            if let Some(e) = &email
                && (!e.contains('@') || e.contains(char::is_whitespace))
            {
                bail!("`{e}` is not an email address");
            }
            let display_name = match display_name {
                Some(d) => Some(d.trim().to_string()).filter(|d| !d.is_empty()),
                None => u.display_name.clone(),
            };
            let role = role.unwrap_or_else(|| u.role.clone());
            storage
                .update_user_profile(u.id, email.as_deref(), display_name.as_deref(), &role)
                .await?;
            print(
                json_out,
                json!({ "username": name, "email": email, "display_name": display_name, "role": role }),
                || format!("{name} updated."),
            );
        }
        UserCommand::ClearSecurityCode { name } => {
            let u = user(storage, &name).await?;
            storage.clear_security_code(u.id).await?;
            print(
                json_out,
                json!({ "username": name, "security_code": false }),
                || format!("Security code of {name} cleared."),
            );
        }
        UserCommand::TotpReset { name } => {
            let u = user(storage, &name).await?;
            storage.disable_totp(u.id).await?;
            print(json_out, json!({ "username": name, "totp": false }), || {
                format!("TOTP turned off for {name}.")
            });
        }
        UserCommand::List => {
            let rows = storage.users().await?;
            if json_out {
                let list: Vec<_> = rows
                    .iter()
                    .map(|u| {
                        json!({
                            "id": u.id, "username": u.username, "email": u.email,
                            "display_name": u.display_name, "role": u.role, "status": u.status,
                            "origin": u.origin, "totp_enabled": u.totp_secret.is_some(),
                            "has_security_code": u.security_code_hash.is_some(),
                            "last_login_at": u.last_login_at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                println!(
                    "{:<20} {:<28} {:<6} {:<9} {:<6} TOTP",
                    "USER", "EMAIL", "ROLE", "STATUS", "ORIGIN"
                );
                for u in rows {
                    println!(
                        "{:<20} {:<28} {:<6} {:<9} {:<6} {}",
                        u.username,
                        u.email.as_deref().unwrap_or("-"),
                        u.role,
                        u.status,
                        u.origin,
                        if u.totp_secret.is_some() { "on" } else { "off" }
                    );
                }
            }
        }
        UserCommand::Disable { name } => {
            let u = user(storage, &name).await?;
            storage.set_user_status(u.id, "disabled").await?;
            print(
                json_out,
                json!({ "username": name, "status": "disabled" }),
                || format!("{name} is disabled; their web sessions were ended."),
            );
        }
        UserCommand::Enable { name } => {
            let u = user(storage, &name).await?;
            storage.set_user_status(u.id, "active").await?;
            print(
                json_out,
                json!({ "username": name, "status": "active" }),
                || format!("{name} is enabled."),
            );
        }
        UserCommand::Delete { name } => {
            let u = user(storage, &name).await?;
            storage.delete_user(u.id).await?;
            print(
                json_out,
                json!({ "username": name, "deleted": true }),
                || format!("{name} was deleted."),
            );
        }
    }
    Ok(())
}

pub async fn user_groups(
    storage: &Storage,
    cmd: UserGroupCommand,
    json_out: bool,
) -> anyhow::Result<()> {
    let group = |name: String| async move {
        storage
            .user_group_by_name(&name)
            .await?
            .with_context(|| format!("there is no user group named `{name}`"))
    };
    match cmd {
        UserGroupCommand::Add { name, description } => {
            crate::inventory::check_user_group_name(&name)?;
            let id = storage
                .create_user_group(&name, description.as_deref())
                .await?;
            print(json_out, json!({ "id": id, "name": name }), || {
                format!("Created user group {name}.")
            });
        }
        UserGroupCommand::AddMember { group: g, user: u } => {
            let g = group(g).await?;
            let u = user(storage, &u).await?;
            storage.add_group_member(g.id, u.id).await?;
            print(
                json_out,
                json!({ "group": g.name, "user": u.username }),
                || format!("{} is now in {}.", u.username, g.name),
            );
        }
        UserGroupCommand::RemoveMember { group: g, user: u } => {
            let g = group(g).await?;
            let u = user(storage, &u).await?;
            if !storage.remove_group_member(g.id, u.id).await? {
                bail!("{} is not in {}", u.username, g.name);
            }
            print(
                json_out,
                json!({ "group": g.name, "removed": u.username }),
                || format!("{} left {}.", u.username, g.name),
            );
        }
        UserGroupCommand::Delete { name } => {
            let g = group(name.clone()).await?;
            storage.delete_user_group(g.id).await?;
            print(json_out, json!({ "name": name, "deleted": true }), || {
                format!("User group {name} was deleted.")
            });
        }
        UserGroupCommand::List => {
            let rows = storage.user_groups().await?;
            let list: Vec<_> = rows
                .iter()
                .map(|g| json!({ "id": g.id, "name": g.name, "description": g.description }))
                .collect();
            print(json_out, serde_json::Value::Array(list), || {
                rows.iter()
                    .map(|g| g.name.clone())
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
    }
    Ok(())
}

pub async fn groups(storage: &Storage, cmd: GroupCommand, json_out: bool) -> anyhow::Result<()> {
    match cmd {
        GroupCommand::Add { path } => {
            let g = inventory::ensure_group(storage, &path).await?;
            print(json_out, json!({ "id": g.id, "path": g.path }), || {
                format!("Server group {} is ready.", g.path)
            });
        }
        GroupCommand::Delete { path } => {
            inventory::delete_group(storage, &path).await?;
            print(json_out, json!({ "path": path, "deleted": true }), || {
                format!("Server group {path} was deleted.")
            });
        }
        GroupCommand::List => {
            let rows = storage.server_groups().await?;
            let list: Vec<_> = rows
                .iter()
                .map(|g| json!({ "id": g.id, "path": g.path, "parent_id": g.parent_id }))
                .collect();
            print(json_out, serde_json::Value::Array(list), || {
                rows.iter()
                    .map(|g| g.path.clone())
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
    }
    Ok(())
}

fn read_key_file(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the key file {}", path.display()))?;
    Ok(Zeroizing::new(text))
}

/// Reads a credential named on the command line; secrets come from stdin or a file.
fn read_credential(args: CredentialArgs, passphrase_stdin: bool) -> anyhow::Result<Credential> {
    Ok(if args.password_stdin {
        Credential::Password(read_secret("target password")?)
    } else if let Some(file) = args.key_file {
        Credential::PrivateKey {
            key: read_key_file(&file)?,
            passphrase: if passphrase_stdin {
                Some(read_secret("key passphrase")?)
            } else {
                None
            },
        }
    } else {
        Credential::GatewayKey
    })
}

pub async fn servers(
    storage: &Storage,
    config: &Config,
    cmd: ServerCommand,
    json_out: bool,
) -> anyhow::Result<()> {
    match cmd {
        ServerCommand::Add {
            name,
            group,
            host,
            port,
            login,
            description,
            credential,
            passphrase_stdin,
        } => {
            let credential = read_credential(credential, passphrase_stdin)?;
            let vault = vault::open_at_start(storage, &config.vault_key_source()).await?;
            let s = inventory::add_server(
                storage,
                &vault,
                ServerSpec {
                    name: &name,
                    group_path: &group,
                    host: &host,
                    port,
                    login: &login,
                    description: description.as_deref(),
                    credential,
                },
            )
            .await?;
            // For the gateway's own key, say what the target's owner must install.
            let gateway_line = if s.auth_kind == "gateway_key" {
                std::fs::create_dir_all(&config.data_dir)
                    .with_context(|| format!("creating {}", config.data_dir.display()))?;
                let key = crate::upstream::gateway_key(&config.data_dir)?;
                Some(crate::upstream::gateway_public_line(&key))
            } else {
                None
            };
            print(
                json_out,
                json!({ "id": s.id, "name": s.name, "host": s.host, "port": s.port, "login": s.login, "auth": s.auth_kind, "gateway_public_key": gateway_line }),
                || {
                    let mut text = format!(
                        "Added server {} ({}@{}:{}, {}).",
                        s.name, s.login, s.host, s.port, s.auth_kind
                    );
                    if let Some(line) = &gateway_line {
                        text.push_str(&format!(
                            "\nAdd this line to ~{}/.ssh/authorized_keys on {}:\n{line}",
                            s.login, s.host
                        ));
                    }
                    text
                },
            );
        }
        ServerCommand::List => {
            let groups = storage.server_groups().await?;
            let path_of = |id: i64| {
                groups
                    .iter()
                    .find(|g| g.id == id)
                    .map(|g| g.path.clone())
                    .unwrap_or_default()
            };
            let rows = storage.servers().await?;
            if json_out {
                let list: Vec<_> = rows
                    .iter()
                    .map(|s| {
                        json!({
                            "id": s.id, "name": s.name, "group": path_of(s.group_id),
                            "host": s.host, "port": s.port, "login": s.login,
                            "description": s.description, "auth": s.auth_kind,
                            "host_key_pinned": s.host_key.is_some(),
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                println!(
                    "{:<20} {:<20} {:<32} {:<12} AUTH",
                    "SERVER", "GROUP", "ADDRESS", "LOGIN"
                );
                for s in rows {
                    println!(
                        "{:<20} {:<20} {:<32} {:<12} {}",
                        s.name,
                        path_of(s.group_id),
                        format!("{}:{}", s.host, s.port),
                        s.login,
                        s.auth_kind
                    );
                }
            }
        }
        ServerCommand::GatewayKey => {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("creating {}", config.data_dir.display()))?;
            let key = crate::upstream::gateway_key(&config.data_dir)?;
            let line = crate::upstream::gateway_public_line(&key);
            let fp = crate::upstream::fingerprint(key.public_key());
            print(
                json_out,
                json!({ "public_key": line, "fingerprint": fp }),
                || line.clone(),
            );
        }
        ServerCommand::Scan { name, accept } => {
            let outcome = inventory::scan_host_key(storage, &name, accept).await?;
            let (state, text) = match &outcome {
                inventory::ScanOutcome::Pinned { fingerprint } => (
                    json!({ "server": name, "state": "pinned", "fingerprint": fingerprint }),
                    format!("Pinned the host key of {name}: {fingerprint}"),
                ),
                inventory::ScanOutcome::Unchanged { fingerprint } => (
                    json!({ "server": name, "state": "unchanged", "fingerprint": fingerprint }),
                    format!("The host key of {name} is unchanged: {fingerprint}"),
                ),
                inventory::ScanOutcome::Replaced { old, new } => (
                    json!({ "server": name, "state": "replaced", "old": old, "fingerprint": new }),
                    format!("Accepted the new host key of {name}: {new} (was {old})"),
                ),
            };
            print(json_out, state, || text);
        }
        ServerCommand::SetCredential {
            name,
            credential,
            passphrase_stdin,
        } => {
            let credential = read_credential(credential, passphrase_stdin)?;
            let s = storage
                .server_by_name(&name)
                .await?
                .with_context(|| format!("there is no server named `{name}`"))?;
            let group = storage
                .server_groups()
                .await?
                .into_iter()
                .find(|g| g.id == s.group_id)
                .map(|g| g.path)
                .unwrap_or_default();
            let vault = vault::open_at_start(storage, &config.vault_key_source()).await?;
            let port = u16::try_from(s.port).unwrap_or(22);
            let spec = ServerSpec {
                name: &s.name,
                group_path: &group,
                host: &s.host,
                port,
                login: &s.login,
                description: s.description.as_deref(),
                credential,
            };
            let s = inventory::update_server(storage, &vault, &name, spec, true).await?;
            print(
                json_out,
                json!({ "name": name, "auth": s.auth_kind }),
                || format!("Credential of {name} replaced ({}).", s.auth_kind),
            );
        }
        ServerCommand::Delete { name } => {
            let s = storage
                .server_by_name(&name)
                .await?
                .with_context(|| format!("there is no server named `{name}`"))?;
            storage.delete_server(s.id).await?;
            print(json_out, json!({ "name": name, "deleted": true }), || {
                format!("Server {name} was deleted.")
            });
        }
    }
    Ok(())
}

pub async fn grants(storage: &Storage, cmd: GrantCommand, json_out: bool) -> anyhow::Result<()> {
    match cmd {
        GrantCommand::Add { grantee, target } => {
            let (who, what) = inventory::resolve_grant(
                storage,
                grantee.user.as_deref(),
                grantee.user_group.as_deref(),
                target.group.as_deref(),
                target.server.as_deref(),
            )
            .await?;
            let id = storage.add_grant(who, what).await?;
            print(json_out, json!({ "id": id }), || {
                format!("Grant {id} is in place.")
            });
        }
        GrantCommand::List => {
            let users = storage.users().await?;
            let ugroups = storage.user_groups().await?;
            let sgroups = storage.server_groups().await?;
            let servers = storage.servers().await?;
            let mut list = Vec::new();
            for g in storage.grants().await? {
                let who = match (g.user_id, g.user_group_id) {
                    (Some(id), _) => Grantee::User(id),
                    (_, Some(id)) => Grantee::UserGroup(id),
                    _ => continue,
                };
                let what = match (g.server_group_id, g.server_id) {
                    (Some(id), _) => GrantTarget::ServerGroup(id),
                    (_, Some(id)) => GrantTarget::Server(id),
                    _ => continue,
                };
                let who = match who {
                    Grantee::User(id) => {
                        json!({ "user": users.iter().find(|u| u.id == id).map(|u| u.username.clone()) })
                    }
                    Grantee::UserGroup(id) => {
                        json!({ "user_group": ugroups.iter().find(|u| u.id == id).map(|u| u.name.clone()) })
                    }
                };
                let what = match what {
                    GrantTarget::ServerGroup(id) => {
                        json!({ "group": sgroups.iter().find(|s| s.id == id).map(|s| s.path.clone()) })
                    }
                    GrantTarget::Server(id) => {
                        json!({ "server": servers.iter().find(|s| s.id == id).map(|s| s.name.clone()) })
                    }
                };
                list.push(json!({ "id": g.id, "grantee": who, "target": what }));
            }
            print(json_out, serde_json::Value::Array(list.clone()), || {
                list.iter()
                    .map(|g| format!("{}  {} -> {}", g["id"], g["grantee"], g["target"]))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        GrantCommand::Remove { id } => {
            if !storage.remove_grant(id).await? {
                bail!("there is no grant with id {id}");
            }
            print(json_out, json!({ "id": id, "removed": true }), || {
                format!("Grant {id} was removed.")
            });
        }
    }
    Ok(())
}

pub async fn vault_command(
    storage: &Storage,
    config: &Config,
    cmd: VaultCommand,
) -> anyhow::Result<()> {
    match cmd {
        VaultCommand::Rotate => {
            let source = config.vault_key_source();
            let current = vault::open_at_start(storage, &source).await?;
            let next = vault::rotate(storage, &source, &current).await?;
            match source {
                vault::KeySource::File(path) => {
                    println!(
                        "Every stored secret is now sealed under a new master key in {}.",
                        path.display()
                    );
                    println!(
                        "Back up that file: without it the stored credentials cannot be opened."
                    );
                    println!(
                        "Restart Jumpgate now (every node): a running server still holds the old key."
                    );
                }
                vault::KeySource::Inline(_) => {
                    println!("Every stored secret is now sealed under this new master key:");
                    println!("{}", next.encode().as_str());
                    println!(
                        "Set it as vault.master_key (JUMPGATE_VAULT_MASTER_KEY) before the next start."
                    );
                }
            }
        }
    }
    Ok(())
}

pub async fn settings_command(
    storage: &Storage,
    cmd: SettingsCommand,
    json_out: bool,
) -> anyhow::Result<()> {
    match cmd {
        SettingsCommand::List => {
            let mut rows = Vec::new();
            for def in settings::SETTINGS {
                rows.push((def, settings::get(storage, def.key).await?));
            }
            if json_out {
                let map: serde_json::Map<String, serde_json::Value> = rows
                    .iter()
                    .map(|(d, v)| (d.key.to_string(), setting_json(d, v)))
                    .collect();
                println!("{}", serde_json::Value::Object(map));
            } else {
                for (def, value) in rows {
                    println!("{:<34} {:<10} {}", def.key, one_line(&value), def.help);
                }
            }
        }
        SettingsCommand::Get { key } => {
            let v = settings::get(storage, &key).await?;
            let def = settings::definition(&key);
            let j = def.map_or(serde_json::Value::from(v.clone()), |d| setting_json(d, &v));
            print(json_out, json!({ key.clone(): j }), || v.clone());
        }
        SettingsCommand::Set { key, value } => {
            let stored = settings::set(storage, &key, &value).await?;
            print(json_out, json!({ key.clone(): stored }), || {
                format!("{key} = {}", one_line(&stored))
            });
        }
    }
    Ok(())
}

/// A setting as JSON: numbers and booleans as such, everything else as text.
fn setting_json(def: &settings::SettingDef, value: &str) -> serde_json::Value {
    match def.kind {
        settings::Kind::Int(..) => value
            .parse::<i64>()
            .map_or_else(|_| value.into(), serde_json::Value::from),
        settings::Kind::Bool => serde_json::Value::from(value == "true"),
        _ => value.into(),
    }
}

/// Long values (certificates) shortened for the table; `settings get` prints them whole.
fn one_line(value: &str) -> String {
    if value.is_empty() {
        return "(empty)".into();
    }
    if value.contains('\n') {
        let n = value.matches("-----BEGIN").count();
        return format!("({n} certificate(s))");
    }
    value.to_string()
}

/// `jumpgate saml ...`.
pub async fn saml_command(
    storage: &Storage,
    config: &Config,
    cmd: SamlCommand,
    json_out: bool,
) -> anyhow::Result<()> {
    match cmd {
        SamlCommand::Fetch { url, dry_run } => {
            let md = crate::saml::fetch_metadata(&url).await?;
            if !dry_run {
                crate::saml::apply_metadata(storage, &md, Some(&url)).await?;
            }
            let certs: Vec<_> = md
                .certificates
                .iter()
                .map(|c| {
                    json!({ "subject": c.subject, "not_after": c.not_after, "sha256": c.sha256 })
                })
                .collect();
            print(
                json_out,
                json!({
                    "entity_id": md.entity_id, "sso_url": md.sso_url,
                    "sso_binding": md.sso_binding.as_str(), "slo_url": md.slo_url,
                    "certificates": certs, "saved": !dry_run,
                }),
                || {
                    let mut out = format!(
                        "Identity provider: {}\nSingle sign-on URL: {} ({} binding)\nSingle logout URL: {}\n",
                        md.entity_id,
                        md.sso_url,
                        md.sso_binding.as_str(),
                        md.slo_url.as_deref().unwrap_or("(none)")
                    );
                    for c in &md.certificates {
                        out.push_str(&format!(
                            "Signing certificate: {} (expires {}, SHA-256 {})\n",
                            c.subject,
                            crate::saml::certs::date(c.not_after),
                            c.sha256
                        ));
                    }
                    out.push_str(if dry_run {
                        "Not saved (--dry-run)."
                    } else {
                        "Saved. Switch the panel to SAML with `jumpgate settings set web_auth saml`."
                    });
                    out
                },
            );
        }
        SamlCommand::Info => {
            let sp = crate::saml::SpUrls::from_public_url(&config.public_url);
            print(
                json_out,
                json!({
                    "entity_id": sp.entity_id, "acs_url": sp.acs, "metadata_url": sp.metadata,
                    "slo_url": sp.slo,
                }),
                || {
                    let mut out = format!(
                        "Entity ID (audience): {}\nACS URL: {}\nMetadata URL: {}\nSingle logout URL: {}",
                        sp.entity_id, sp.acs, sp.metadata, sp.slo
                    );
                    if sp.host_is_ip {
                        out.push_str("\nWarning: web.public_url is an IP address; use a domain name for single sign-on.");
                    }
                    out
                },
            );
        }
        SamlCommand::Map(cmd) => saml_map_command(storage, cmd, json_out).await?,
    }
    Ok(())
}

/// `jumpgate saml map ...`.
async fn saml_map_command(
    storage: &Storage,
    cmd: SamlMapCommand,
    json_out: bool,
) -> anyhow::Result<()> {
    match cmd {
        SamlMapCommand::List => {
            let rows = storage.saml_group_mappings().await?;
            let list: Vec<_> = rows
                .iter()
                .map(|m| json!({ "idp_value": m.idp_value, "user_group": m.user_group }))
                .collect();
            print(json_out, json!(list), || {
                if rows.is_empty() {
                    return "No group mappings.".into();
                }
                rows.iter()
                    .map(|m| format!("{} -> {}", m.idp_value, m.user_group))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        SamlMapCommand::Add {
            idp_value,
            user_group,
        } => {
            crate::saml::users::add_group_mapping(storage, &idp_value, &user_group).await?;
            println!(
                "Mapped {} to {user_group}; it applies from each person's next SAML sign-in.",
                idp_value.trim()
            );
        }
        SamlMapCommand::Remove {
            idp_value,
            user_group,
        } => {
            let found = storage
                .saml_group_mappings()
                .await?
                .into_iter()
                .find(|m| m.idp_value == idp_value.trim() && m.user_group == user_group);
            let Some(mapping) = found else {
                bail!("{} is not mapped to {user_group}", idp_value.trim());
            };
            storage.delete_saml_group_mapping(mapping.id).await?;
            println!(
                "Removed the mapping from {} to {user_group}.",
                mapping.idp_value
            );
        }
    }
    Ok(())
}

/// `jumpgate admin reset-password USER`.
pub async fn reset_password(storage: Storage, config: &Config, name: &str) -> anyhow::Result<()> {
    let vault = vault::open_at_start(&storage, &config.vault_key_source()).await?;
    let auth = Auth::new(storage, config.is_https(), std::sync::Arc::new(vault));
    match auth.reset_password(name).await? {
        Some(otp) => {
            println!("New one-time password for {name}: {otp}");
            println!("It must be changed at the next sign-in. Existing sessions were ended.");
            Ok(())
        }
        None => bail!("there is no user named `{name}`"),
    }
}
