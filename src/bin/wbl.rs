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
    after_help = "Examples:\n  wbl login             # store your W&B API key in the keychain\n  wbl token             # print it, for scripts\n  wbl status            # agent, backend and stored keys\n  wbl agent install     # start the agent with your login session"
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
    /// Run the agent with your login session, start, stop or inspect it.
    #[command(
        after_help = "Examples:\n  wbl agent install --now   # systemd socket activation (Linux) or a LaunchAgent (macOS)\n  wbl agent status\n  wbl agent stop"
    )]
    Agent {
        #[command(subcommand)]
        command: cmd::agent::AgentCommand,
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
        Command::Agent { command } => cmd::agent::run(command),
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
