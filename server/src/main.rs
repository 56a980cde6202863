//! The `jumpgate` command: runs the gateway (`serve`) and administers it from the host.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use jumpgate::{auth::Auth, config, settings, storage::Storage};

#[derive(Parser)]
#[command(
    name = "jumpgate",
    version,
    about = "Jumpgate: an SSH gateway with a web panel, single sign-on and a browser terminal."
)]
struct Cli {
    /// TOML configuration file. Without it, built-in defaults and JUMPGATE_* variables apply.
    #[arg(long, global = true, env = "JUMPGATE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web panel (and, in later versions, the SSH gateway).
    Serve,
    /// Check the configuration and print every key with its value and where it came from.
    CheckConfig,
    /// Recovery commands run on the gateway host.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Read and change runtime settings stored in the database (take effect without a restart).
    #[command(subcommand)]
    Settings(SettingsCommand),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Give USER a new one-time password (printed once), unlock it and end its sessions.
    ResetPassword {
        /// The user name.
        user: String,
    },
}

#[derive(Subcommand)]
enum SettingsCommand {
    /// List every setting with its current value.
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Print one setting's value.
    Get { key: String },
    /// Change one setting.
    Set { key: String, value: String },
}

fn main() -> ExitCode {
    let matches = Cli::command()
        .after_long_help(config::keys_help())
        .after_help("Run `jumpgate --help` for the configuration keys.")
        .get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("jumpgate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jumpgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => jumpgate::serve::run(config).await,
        Command::CheckConfig => {
            println!("Configuration is valid.");
            for (key, value, source) in &config.resolved {
                println!(
                    "{:<22} = {:<36} ({source})",
                    key.name(),
                    format!("{value:?}")
                );
                println!("    env {}: {}", key.env_var(), key.help);
            }
            Ok(())
        }
        Command::Admin(AdminCommand::ResetPassword { user }) => {
            let storage = open_storage(&config).await?;
            let auth = Auth::new(storage, config.is_https());
            match auth.reset_password(&user).await? {
                Some(otp) => {
                    println!("New one-time password for {user}: {otp}");
                    println!(
                        "It must be changed at the next sign-in. Existing sessions were ended."
                    );
                    Ok(())
                }
                None => anyhow::bail!("there is no user named `{user}`"),
            }
        }
        Command::Settings(cmd) => {
            let storage = open_storage(&config).await?;
            match cmd {
                SettingsCommand::List { json } => {
                    let mut rows = Vec::new();
                    for def in settings::SETTINGS {
                        rows.push((def, settings::get_i64(&storage, def.key).await?));
                    }
                    if json {
                        let map: serde_json::Map<String, serde_json::Value> = rows
                            .iter()
                            .map(|(d, v)| (d.key.to_string(), serde_json::Value::from(*v)))
                            .collect();
                        println!("{}", serde_json::Value::Object(map));
                    } else {
                        for (def, value) in rows {
                            println!("{:<34} {:<8} {}", def.key, value, def.help);
                        }
                    }
                    Ok(())
                }
                SettingsCommand::Get { key } => {
                    println!("{}", settings::get_i64(&storage, &key).await?);
                    Ok(())
                }
                SettingsCommand::Set { key, value } => {
                    let stored = settings::set(&storage, &key, &value).await?;
                    println!("{key} = {stored}");
                    Ok(())
                }
            }
        }
    }
}

async fn open_storage(config: &config::Config) -> anyhow::Result<Storage> {
    Storage::open(&config.database_url)
        .await
        .with_context(|| format!("opening the database ({})", redact(&config.database_url)))
}

/// The database URL without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
