//! `wbl`: the thin client. Parses arguments and hands each subcommand to `wbl::cmd`.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wbl::cmd;
use wbl_proto::Secret;

#[derive(Parser)]
#[command(
    name = "wbl",
    version,
    about = "Keep W&B API keys in the OS keychain instead of ~/.netrc",
    after_help = "Examples:\n  wbl login             # store your W&B API key in the keychain\n  wbl token             # print it, for scripts\n  wbl status            # agent, backend and stored keys"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Store a W&B API key in the keychain (through the agent).
    #[command(
        after_help = "Example:\n  wbl login $KEY\n  wbl login --host https://wandb.example.com $KEY"
    )]
    Login {
        /// The API key. Prefer the prompt or stdin: arguments are visible to other processes.
        key: Option<String>,
        /// The W&B server (default: WANDB_BASE_URL or https://api.wandb.ai).
        #[arg(long, visible_alias = "base-url")]
        host: Option<String>,
    },
    /// Print the stored key for a host on stdout (exit 1 when there is none).
    #[command(after_help = "Example:\n  export WANDB_API_KEY=$(wbl token)")]
    Token {
        #[arg(long, visible_alias = "base-url")]
        host: Option<String>,
    },
    /// Remove a host's key from the keychain.
    #[command(after_help = "Example:\n  wbl logout --host https://wandb.example.com")]
    Logout {
        #[arg(long, visible_alias = "base-url")]
        host: Option<String>,
    },
    /// Act as a git credential helper (get, store, erase), backed by the keychain.
    #[command(
        after_help = "Example:\n  printf 'protocol=https\\nhost=api.wandb.ai\\n' | wbl credential get\n\ngit runs it by itself once `wbl setup-git` has configured it."
    )]
    Credential {
        /// get, store or erase (other operations are ignored, as git asks of helpers).
        operation: String,
    },
    /// Configure git to get and store credentials for a URL through wbl.
    #[command(
        name = "setup-git",
        after_help = "Example:\n  wbl setup-git --host https://git.example.com\n  wbl setup-git --host https://git.example.com --remove"
    )]
    SetupGit {
        /// The URL git should ask wbl about (default: WANDB_BASE_URL or https://api.wandb.ai).
        #[arg(long, visible_alias = "base-url")]
        host: Option<String>,
        /// Edit your global git config (~/.gitconfig); the default.
        #[arg(long, conflicts_with = "local")]
        global: bool,
        /// Edit the current repository's git config instead.
        #[arg(long)]
        local: bool,
        /// Remove wbl's helper entry instead of adding it.
        #[arg(long)]
        remove: bool,
    },
    /// Move keys from plaintext files (netrc, W&B settings, ~/.git-credentials) to the keychain.
    #[command(after_help = "Example:\n  wbl migrate --dry-run\n  wbl migrate --git-credentials")]
    Migrate {
        /// A W&B host whose key to move (repeatable; default: the cloud, WANDB_BASE_URL and
        /// the base_url of the W&B settings files).
        #[arg(long = "host", visible_alias = "base-url", value_name = "URL")]
        hosts: Vec<String>,
        /// Import into the keychain but leave the plaintext copies where they are.
        #[arg(long)]
        keep: bool,
        /// Only print what would be moved.
        #[arg(long)]
        dry_run: bool,
        /// Also move the credentials of git's `store` helper (~/.git-credentials).
        #[arg(long)]
        git_credentials: bool,
    },
    /// Show the agent, its keychain backend and the hosts with stored keys.
    #[command(after_help = "Example:\n  wbl status --json | jq .agent.pid")]
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    if std::env::var_os(wbl::logging::LOG_ENV).is_some() {
        wbl::logging::init("warn");
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Login { key, host } => cmd::login::run(cmd::login::LoginArgs {
            key: key.map(Secret::new),
            host,
        })
        .map(|()| true),
        Command::Token { host } => cmd::token::run(host.as_deref()),
        Command::Logout { host } => cmd::logout::run(host.as_deref()).map(|()| true),
        Command::Status { json } => cmd::status::run(json, false).map(|()| true),
        Command::Credential { operation } => cmd::credential::run(&operation).map(|()| true),
        Command::SetupGit {
            host,
            global: _,
            local,
            remove,
        } => cmd::setup_git::run(cmd::setup_git::SetupGitArgs {
            host,
            scope: if local {
                cmd::setup_git::Scope::Local
            } else {
                cmd::setup_git::Scope::Global
            },
            remove,
        })
        .map(|()| true),
        Command::Migrate {
            hosts,
            keep,
            dry_run,
            git_credentials,
        } => cmd::migrate::run(cmd::migrate::MigrateArgs {
            hosts,
            keep,
            dry_run,
            git_credentials,
        })
        .map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            let _ = std::io::stderr().is_terminal();
            eprintln!("wbl: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
