//! The `jumpgate` command: runs the gateway (`serve`) and administers it from the host.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use jumpgate::cli::{
    GrantCommand, GroupCommand, SamlCommand, ServerCommand, SettingsCommand, UserCommand,
    UserGroupCommand, VaultCommand,
};
use jumpgate::{cli, config, storage::Storage};

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

    /// Print results as JSON, for scripts.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web panel.
    Serve,
    /// Check the configuration and print every key with its value and where it came from.
    CheckConfig,
    /// Recovery commands run on the gateway host.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage user groups (grant access to many users at once).
    #[command(subcommand)]
    UserGroup(UserGroupCommand),
    /// Manage server groups.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Manage servers and their stored credentials.
    #[command(subcommand)]
    Server(ServerCommand),
    /// Manage access grants.
    #[command(subcommand)]
    Grant(GrantCommand),
    /// Manage the credential vault.
    #[command(subcommand)]
    Vault(VaultCommand),
    /// Read and change runtime settings stored in the database (take effect without a restart).
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// Single sign-on: fetch the identity provider's metadata, show Jumpgate's SAML addresses.
    #[command(subcommand)]
    Saml(SamlCommand),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Give USER a new one-time password (printed once), unlock it and end its sessions.
    ResetPassword {
        /// The user name.
        user: String,
    },
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
    let json = cli.json;
    match cli.command {
        Command::Serve => return jumpgate::serve::run(config).await,
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
            return Ok(());
        }
        _ => {}
    }

    let storage = Storage::open(&config.database_url)
        .await
        .with_context(|| format!("opening the database ({})", redact(&config.database_url)))?;
    match cli.command {
        Command::Serve | Command::CheckConfig => Ok(()),
        Command::Admin(AdminCommand::ResetPassword { user }) => {
            cli::reset_password(storage, &config, &user).await
        }
        Command::User(cmd) => cli::users(&storage, &config, cmd, json).await,
        Command::UserGroup(cmd) => cli::user_groups(&storage, cmd, json).await,
        Command::Group(cmd) => cli::groups(&storage, cmd, json).await,
        Command::Server(cmd) => cli::servers(&storage, &config, cmd, json).await,
        Command::Grant(cmd) => cli::grants(&storage, cmd, json).await,
        Command::Vault(cmd) => cli::vault_command(&storage, &config, cmd).await,
        Command::Settings(cmd) => cli::settings_command(&storage, cmd, json).await,
        Command::Saml(cmd) => cli::saml_command(&storage, &config, cmd, json).await,
    }
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
