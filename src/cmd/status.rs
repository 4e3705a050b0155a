//! `wbl status`: is the agent running and with which backend, and for every W&B host wbl
//! knows of: where its key resolves from (`WANDB_API_KEY`, keychain, settings file, netrc — the
//! order `wbl login` and the SDK use), the key masked, and every plaintext copy of a key.
//! Also the settings files in use. Never starts the agent and never prints a key.

use std::path::Path;

use serde::Serialize;
use wbl_proto::{ErrorCode, Secret};

use super::{WANDB_USER, wandb_query};
use crate::cli::StatusArgs;
use crate::client::{AgentClient, ClientError};
use crate::rendezvous::RuntimePaths;
use crate::wandb::apikey::mask;
use crate::wandb::host::HostUrl;
use crate::wandb::sources::{Settings, WandbEnv, default_host, netrc_key};

#[derive(Serialize)]
struct StatusJson {
    agent_running: bool,
    socket: String,
    agent: Option<AgentJson>,
    /// Every credential the agent stores (W&B keys and others), without secrets.
    credentials: Vec<CredJson>,
    /// The host the SDK (and `wbl login`) would use now.
    current_host: String,
    hosts: Vec<HostJson>,
    settings_files: Vec<SettingsJson>,
    netrc: NetrcJson,
    env: EnvJson,
    /// Problems reading the files above.
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct AgentJson {
    pid: u32,
    version: String,
    protocol: u32,
    backend: String,
    backend_persistent: bool,
    uptime_secs: u64,
    cached_entries: u64,
    stored_entries: u64,
}

#[derive(Serialize)]
struct CredJson {
    url: String,
    username: String,
}

#[derive(Serialize)]
struct HostJson {
    url: String,
    /// This is the current host.
    current: bool,
    /// Where the key for this host resolves from: `env`, `keychain`, `openbao` (a host
    /// routed by config.toml), `settings`, `netrc`, or null when there is none.
    source: Option<&'static str>,
    /// The file of a `settings` or `netrc` source, `WANDB_API_KEY`, or the OpenBao server and
    /// secret of a routed host.
    source_detail: Option<String>,
    /// The resolved key, masked (first 4 and last 4 characters).
    key: Option<String>,
    /// Whether the agent has a key for this host (in the keychain, or from OpenBao for a
    /// routed host); null when the agent is not running.
    in_keychain: Option<bool>,
    /// Plaintext copies of a key for this host.
    plaintext: Vec<PlaintextJson>,
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct PlaintextJson {
    /// `netrc` or `settings`.
    kind: &'static str,
    path: String,
    /// The copy holds the same key as the keychain (null when unknown).
    same_as_keychain: Option<bool>,
}

#[derive(Serialize)]
struct SettingsJson {
    /// `global` or `workspace`.
    scope: &'static str,
    path: String,
    exists: bool,
    /// The keys set in its `[default]` section (values are not shown).
    keys: Vec<String>,
}

#[derive(Serialize)]
struct NetrcJson {
    path: String,
    exists: bool,
}

#[derive(Serialize)]
struct EnvJson {
    wandb_api_key_set: bool,
    wandb_base_url: Option<String>,
}

/// Never starts the agent: it reports the agent as it finds it.
pub fn run(args: StatusArgs) -> anyhow::Result<()> {
    let json = args.json;
    let paths = RuntimePaths::from_env();
    let agent = AgentClient::connect_if_running(&paths)?;
    let env = WandbEnv::from_env()?;
    let settings = Settings::load(&env);
    let mut warnings = settings.warnings.clone();
    let current = match default_host(&env, &settings) {
        Ok((h, _)) => h,
        Err(e) => {
            warnings.push(e);
            HostUrl::cloud()
        }
    };
    let netrc_path = env.netrc_path();
    let mut out = StatusJson {
        agent_running: agent.is_some(),
        socket: paths.socket_display(),
        agent: None,
        credentials: Vec::new(),
        current_host: current.to_string(),
        hosts: Vec::new(),
        settings_files: settings
            .files()
            .iter()
            .map(|f| SettingsJson {
                scope: f.scope.name(),
                path: f.path.display().to_string(),
                exists: f.exists,
                keys: f.file.items().iter().map(|(k, _)| k.to_string()).collect(),
            })
            .collect(),
        netrc: NetrcJson {
            path: netrc_path.display().to_string(),
            exists: netrc_path.exists(),
        },
        env: EnvJson {
            wandb_api_key_set: env.api_key.is_some(),
            wandb_base_url: env.base_url.clone(),
        },
        warnings: Vec::new(),
    };

    // The hosts: the current one, the cloud, settings `base_url`s, and every stored W&B key.
    let mut hosts: Vec<HostUrl> = vec![current.clone(), HostUrl::cloud()];
    for f in settings.files() {
        if let Some(h) = f.get("base_url").and_then(|u| HostUrl::parse(u).ok()) {
            hosts.push(h);
        }
    }
    let mut agent = agent;
    if let Some(a) = agent.as_mut() {
        let s = a.status()?;
        let list = a.list()?;
        for c in &list {
            if c.username == WANDB_USER
                && c.target.path.is_none()
                && let Ok(h) = HostUrl::parse(&c.target.to_string())
            {
                hosts.push(h);
            }
        }
        out.credentials = list
            .into_iter()
            .map(|c| CredJson {
                url: c.target.to_string(),
                username: c.username,
            })
            .collect();
        out.agent = Some(AgentJson {
            pid: s.pid,
            version: s.agent_version,
            protocol: s.protocol,
            backend: s.backend,
            backend_persistent: s.backend_persistent,
            uptime_secs: s.uptime_secs,
            cached_entries: s.cached_entries,
            stored_entries: s.stored_entries,
        });
    }
    let mut seen = std::collections::HashSet::new();
    hosts.retain(|h| seen.insert(format!("{}://{}", h.scheme(), h.netloc())));

    for host in &hosts {
        let h = host_status(host, host == &current, &env, &settings, agent.as_mut())?;
        for w in &h.1 {
            if !warnings.contains(w) {
                warnings.push(w.clone());
            }
        }
        out.hosts.push(h.0);
    }
    out.warnings = warnings;

    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_text(&out, &settings);
    }
    Ok(())
}

/// One host's row, plus file-level warnings met on the way.
fn host_status(
    host: &HostUrl,
    current: bool,
    env: &WandbEnv,
    settings: &Settings,
    agent: Option<&mut AgentClient>,
) -> anyhow::Result<(HostJson, Vec<String>)> {
    let mut store_warning = None;
    let stored: Option<Option<Secret>> = match agent {
        Some(a) => match crate::client::not_found_is_none(a.get(wandb_query(host))) {
            Ok(c) => Some(c.map(|c| c.password)),
            // A routed host whose server cannot answer: say so on its row, go on.
            Err(
                e @ ClientError::Agent {
                    code: ErrorCode::OpenBao | ErrorCode::Config,
                    ..
                },
            ) => {
                store_warning = Some(e.to_string());
                None
            }
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let find = netrc_key(env, host.netloc());
    let same = |k: &Secret| {
        stored
            .as_ref()
            .map(|s| s.as_ref().is_some_and(|s| s.expose() == k.expose()))
    };
    let mut row = HostJson {
        url: host.to_string(),
        current,
        source: None,
        source_detail: None,
        key: None,
        in_keychain: stored.as_ref().map(Option::is_some),
        plaintext: Vec::new(),
        warnings: store_warning.into_iter().collect(),
    };
    let settings_key = settings.get("api_key");
    // Resolution, in `wbl login`'s order.
    if let Some(k) = &env.api_key {
        row.source = Some("env");
        row.source_detail = Some("WANDB_API_KEY".into());
        row.key = Some(mask(k.expose()));
    } else if let Some(Some(k)) = &stored {
        // A routed host's key comes from its OpenBao server, through the agent.
        match crate::config::load()
            .ok()
            .flatten()
            .as_ref()
            .and_then(|c| c.route(host.scheme(), host.netloc()))
        {
            Some(route) => {
                row.source = Some("openbao");
                row.source_detail =
                    Some(format!("`{}` {}", route.server.name, route.secret_name()));
            }
            None => row.source = Some("keychain"),
        }
        row.key = Some(mask(k.expose()));
    } else if let Some((v, path)) = settings_key {
        row.source = Some("settings");
        row.source_detail = Some(path.display().to_string());
        row.key = Some(mask(v));
    } else if let Some(k) = &find.key {
        row.source = Some("netrc");
        row.source_detail = Some(find.path.display().to_string());
        row.key = Some(mask(k.expose()));
    }
    // Plaintext copies. A settings `api_key` is not tied to a host: it is listed for the
    // current host and for any host whose key resolves from it.
    let settings_files = if current || row.source == Some("settings") {
        settings.api_key_files()
    } else {
        Vec::new()
    };
    for f in settings_files {
        let v = Secret::new(f.get("api_key").unwrap_or_default().to_owned());
        row.plaintext.push(PlaintextJson {
            kind: "settings",
            path: f.path.display().to_string(),
            same_as_keychain: same(&v),
        });
        row.warnings.push(plaintext_warning("api_key in", &f.path));
    }
    if let Some(k) = &find.key {
        row.plaintext.push(PlaintextJson {
            kind: "netrc",
            path: find.path.display().to_string(),
            same_as_keychain: same(k),
        });
        let what = if find.from_default {
            "the default entry of"
        } else {
            "an entry of"
        };
        row.warnings.push(format!(
            "plaintext copy of the key for {} in {what} {}; run `wbl migrate` to move it into the keychain",
            host.netloc(),
            find.path.display()
        ));
    }
    Ok((row, find.warnings))
}

fn plaintext_warning(what: &str, path: &Path) -> String {
    format!(
        "plaintext API key ({what} {}); run `wbl migrate` to move it into the keychain",
        path.display()
    )
}

fn print_text(out: &StatusJson, settings: &Settings) {
    match &out.agent {
        Some(a) => {
            println!("agent:    running (pid {}, version {})", a.pid, a.version);
            println!("socket:   {}", out.socket);
            println!(
                "backend:  {}{}",
                a.backend,
                if a.backend_persistent {
                    ""
                } else {
                    " (keys do not survive a reboot)"
                }
            );
        }
        None => {
            println!("agent:    not running (socket {})", out.socket);
            println!("          it starts on the next `wbl login` or `wbl token`");
        }
    }
    for (i, f) in settings.files().iter().enumerate() {
        let label = if i == 0 { "settings:" } else { "         " };
        let keys = f.file.items();
        let what = if !f.exists {
            "not present".to_owned()
        } else if keys.is_empty() {
            "empty".to_owned()
        } else {
            keys.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
        };
        println!("{label} {} ({}: {what})", f.path.display(), f.scope.name());
    }
    println!(
        "netrc:    {}{}",
        out.netrc.path,
        if out.netrc.exists {
            ""
        } else {
            " (not present)"
        }
    );
    if out.env.wandb_api_key_set {
        println!("env:      WANDB_API_KEY is set; it takes precedence over the keychain");
    }
    println!("hosts:");
    for h in &out.hosts {
        println!("  {}{}", h.url, if h.current { " (current)" } else { "" });
        let keychain = match h.in_keychain {
            Some(true) if h.source == Some("openbao") => {
                "served by the agent, not kept in the keychain"
            }
            Some(true) => "in the keychain",
            Some(false) => "not in the keychain",
            None => "keychain not checked: the agent is not running",
        };
        match (h.source, &h.key) {
            (Some(src), Some(k)) => {
                let detail = h
                    .source_detail
                    .as_deref()
                    .map(|d| format!(" {d}"))
                    .unwrap_or_default();
                println!("    key:  {k} from {src}{detail} ({keychain})");
            }
            _ => {
                let login = if h.url == crate::wandb::host::DEFAULT_BASE_URL {
                    "wbl login".to_owned()
                } else {
                    format!("wbl login --host {}", h.url)
                };
                println!("    key:  none ({keychain}); run `{login}`");
            }
        }
        for w in &h.warnings {
            println!("    WARNING {w}");
        }
    }
    if !out.credentials.is_empty() {
        println!("keys:");
        for c in &out.credentials {
            println!("  {} (user {})", c.url, c.username);
        }
    }
    for w in &out.warnings {
        println!("WARNING {w}");
    }
}
