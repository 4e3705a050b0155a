//! `wbl openbao login NAME`: log the agent in to a configured OpenBao server. The token
//! (`auth = "token"`) or password (`userpass`) is read at a hidden prompt, or from stdin when
//! stdin is not a terminal, and sent to the agent only; `jwt` servers need nothing typed (the
//! agent reads `jwt_file`). The agent keeps the resulting token in memory and, for `token`
//! and `userpass`, in the OS keychain — never in `~/.vault-token`.

use std::io::{IsTerminal, Read};

use anyhow::{Context, bail};
use wbl_proto::Secret;

use crate::cli::{OpenBaoArgs, OpenBaoCommand};
use crate::client::connect_or_start;
use crate::config::Auth;
use crate::rendezvous::RuntimePaths;
use crate::term;

pub fn run(args: OpenBaoArgs) -> anyhow::Result<bool> {
    match args.command {
        OpenBaoCommand::Login { name } => login(&name).map(|()| true),
    }
}

fn login(name: &str) -> anyhow::Result<()> {
    let config = crate::config::load()?;
    let Some(config) = config else {
        let file = crate::dirs::config_file()
            .map(|(p, _)| p.display().to_string())
            .unwrap_or_else(|| "config.toml".to_owned());
        bail!(
            "there is no configuration file ({file}); add an [openbao.{name}] section to it \
             (see docs/openbao.md)"
        );
    };
    let Some(server) = config.servers.get(name) else {
        let known: Vec<&str> = config.servers.keys().map(String::as_str).collect();
        bail!(
            "{} has no [openbao.{name}] section{}",
            config.file.display(),
            if known.is_empty() {
                String::new()
            } else {
                format!(" (servers: {})", known.join(", "))
            }
        );
    };
    let what = match &server.auth {
        Auth::Token => Some(format!("OpenBao token for `{name}` ({})", server.address)),
        Auth::Userpass { username } => Some(format!(
            "Password of {username} on OpenBao `{name}` ({})",
            server.address
        )),
        Auth::Jwt { .. } => None,
    };
    let secret = match what {
        None => None,
        Some(what) => Some(read_secret(&what)?),
    };
    let mut agent = connect_or_start(&RuntimePaths::from_env())?;
    let session = agent
        .store_login(&format!("{}.{name}", crate::config::OPENBAO), secret)
        .with_context(|| format!("while logging in to OpenBao server `{name}`"))?;
    let expiry = match session.ttl_secs {
        None => "it does not expire".to_owned(),
        Some(s) if session.renewable => {
            format!("valid for {}, renewed by the agent", term::human_span(s))
        }
        Some(s) => format!("valid for {}, not renewable", term::human_span(s)),
    };
    let kept = if session.kept_in_keychain {
        "; kept in the agent and the OS keychain"
    } else {
        "; kept in the agent's memory only"
    };
    term::log(&format!(
        "logged in to OpenBao `{name}` ({}), policies: {}; token {expiry}{kept}",
        session.address,
        if session.policies.is_empty() {
            "none".to_owned()
        } else {
            session.policies.join(", ")
        }
    ));
    Ok(())
}

/// The token or password: a hidden prompt on a terminal, else the first line of stdin.
fn read_secret(what: &str) -> anyhow::Result<Secret> {
    crate::client::seal();
    let stdin = std::io::stdin();
    let secret = if stdin.is_terminal() {
        if !term::can_prompt() {
            bail!("cannot prompt for the {what}; pipe it on stdin");
        }
        term::prompt_hidden(&format!("{}{what}: ", term::PREFIX))
            .context("while reading it")?
            .unwrap_or_default()
    } else {
        let mut buf = zeroize::Zeroizing::new(Vec::new());
        stdin
            .lock()
            .take(64 * 1024)
            .read_to_end(&mut buf)
            .with_context(|| format!("while reading the {what} from stdin"))?;
        let Ok(text) = std::str::from_utf8(&buf) else {
            bail!("the {what} read from stdin is not valid UTF-8");
        };
        Secret::new(text.split(['\n', '\r']).next().unwrap_or("").to_owned())
    };
    if secret.is_empty() {
        bail!("no {what} was given");
    }
    Ok(secret)
}
