//! `wbl status`: is the agent running and with which backend, and for every W&B host wbl
//! knows of: where its key resolves from (`WANDB_API_KEY`, keychain, settings file, netrc — the
//! order `wbl login` and the SDK use), the key masked, and every plaintext copy of a key.
//! Also the settings files in use. Never starts the agent and never prints a key.

use serde::Serialize;
use wbl_proto::{ErrorCode, Purpose, Secret, ServedHost};

use super::WANDB_USER;
use crate::cli::StatusArgs;
use crate::client::{AgentClient, ClientError};
use crate::rendezvous::RuntimePaths;
use crate::text::printable;
use crate::wandb::apikey::mask;
use crate::wandb::host::HostUrl;
use crate::wandb::resolver::{Inventory, Lookup, Place, Resolver, SettingsFiles, Source};

#[derive(Serialize)]
struct StatusJson {
    agent_running: bool,
    socket: String,
    /// The socket is a forward (`wbl ssh` on another machine): only `get` for its granted
    /// hosts works, so the agent's details and the stored list are not shown.
    forwarded: bool,
    agent: Option<AgentJson>,
    /// Why wbl's configuration file (config.toml) cannot be used; while it cannot, the agent
    /// serves no key at all. Null when it is fine or absent.
    config_error: Option<String>,
    /// The agent's live forwards (`wbl ssh`) and their grants.
    forwards: Vec<ForwardJson>,
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
struct ForwardJson {
    id: String,
    /// The ssh destination the socket is forwarded to.
    destination: String,
    /// The hosts the forward may get keys for.
    hosts: Vec<String>,
    created_unix: u64,
    /// When the grant ends (Unix time); null: when the `wbl ssh` session ends.
    expires_unix: Option<u64>,
    /// Keys handed out over this forward so far.
    handed_out: u64,
    socket: String,
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
    /// Where the key for this host resolves from: `env`, `identity_token_file`, `keychain`,
    /// the kind of store a host routed by config.toml is served from as the agent reports it
    /// (`openbao`), `settings`, `netrc`, or null when there is none.
    source: Option<String>,
    /// The key is served by a store the configuration routes the host to, not the keychain.
    #[serde(skip)]
    routed: bool,
    /// Where exactly: `WANDB_API_KEY`, the file (and netrc machine) of a `settings` or
    /// `netrc` source, `stored for URL` for a key stored for the other address of a
    /// Forge-served deployment, or the OpenBao server and secret of a routed host.
    source_detail: Option<String>,
    /// The resolved key, masked (first 4 and last 4 characters).
    key: Option<String>,
    /// Whether the agent has a key for this host (in the keychain, or from OpenBao for a
    /// routed host); null when the agent is not running.
    in_keychain: Option<bool>,
    /// Plaintext copies of a key for this host.
    plaintext: Vec<PlaintextJson>,
    warnings: Vec<String>,
    /// The account used for this host in the current directory (null: none chosen, so the
    /// host's only one), and why (`bound to ~/work in config.toml line 12`).
    account: Option<String>,
    account_reason: Option<String>,
    /// Why `in_keychain` is null although an agent answers (text output only).
    #[serde(skip)]
    unread: Option<&'static str>,
}

#[derive(Serialize)]
struct PlaintextJson {
    /// `netrc` or `settings`.
    kind: &'static str,
    path: String,
    /// The file and where in it, e.g. `/home/u/.netrc (machine api.wandb.ai, line 3)`.
    place: String,
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
    if args.all {
        return super::accounts::run(crate::cli::AccountsArgs {
            names: false,
            host: None,
        });
    }
    let json = args.json;
    let paths = RuntimePaths::from_env();
    let agent = AgentClient::connect_if_running(&paths)?;
    let resolver = Resolver::from_env()?;
    let env = resolver.env();
    let settings = resolver.settings();
    let mut warnings = settings.warnings().to_vec();
    let current = match resolver.default_host() {
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
        forwarded: agent.as_ref().is_some_and(AgentClient::forwarded),
        agent: None,
        config_error: crate::config::load().err().map(|e| e.to_string()),
        forwards: Vec::new(),
        credentials: Vec::new(),
        current_host: current.to_string(),
        hosts: Vec::new(),
        settings_files: settings
            .files()
            .iter()
            .map(|f| SettingsJson {
                scope: f.scope().name(),
                path: f.path().display().to_string(),
                exists: f.exists(),
                keys: f
                    .file()
                    .items()
                    .iter()
                    .map(|(k, _)| k.to_string())
                    .collect(),
            })
            .collect(),
        netrc: NetrcJson {
            path: netrc_path.display().to_string(),
            exists: netrc_path.exists(),
        },
        env: EnvJson {
            wandb_api_key_set: env.api_key().is_some(),
            wandb_base_url: env.base_url().map(str::to_owned),
        },
        warnings: Vec::new(),
    };

    // The hosts: the resolver's (current, cloud, Forge, base_urls, aliases), and every stored
    // W&B key.
    let (mut hosts, notes) = resolver.known_hosts();
    // Always shown: the current host, the cloud, and the hosts named by WANDB_BASE_URL or a
    // base_url; the others (Forge addresses, aliases) only when a key is somewhere for them.
    let mut always: Vec<HostUrl> = vec![current.clone(), HostUrl::cloud()];
    always.extend(resolver.named_hosts());
    for n in notes {
        if !warnings.iter().any(|w| w == n.text()) {
            warnings.push(n.text().to_owned());
        }
    }
    let mut agent = agent;
    // Where the agent serves routed hosts from, as it reports it.
    let mut served: Vec<ServedHost> = Vec::new();
    if let Some(a) = agent.as_mut().filter(|a| !a.forwarded()) {
        let s = a.status()?;
        served = s.served;
        // An agent from before forwards answers BadRequest: it has none.
        out.forwards = a
            .forwards()
            .unwrap_or_default()
            .into_iter()
            .map(|f| ForwardJson {
                id: f.id,
                destination: f.destination,
                hosts: f.hosts.iter().map(|t| t.to_string()).collect(),
                created_unix: f.created_unix,
                expires_unix: f.expires_unix,
                handed_out: f.handed_out,
                socket: f.socket,
            })
            .collect();
        let list = a.list()?;
        for c in &list {
            if c.username == WANDB_USER
                && c.target.path.is_none()
                && let Ok(h) = HostUrl::parse(&c.target.to_string())
            {
                always.push(h.clone());
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
    // Every plaintext copy the SDK could read, for any of these hosts.
    let inventory = resolver.inventory(&hosts);
    for n in inventory.notes() {
        if !warnings.contains(&n.text().to_owned()) {
            warnings.push(n.text().to_owned());
        }
    }

    for host in &hosts {
        let h = host_status(
            host,
            host == &current,
            &resolver,
            &inventory,
            agent.as_mut(),
            &served,
        )?;
        if !always.contains(host) && h.0.source.is_none() && h.0.plaintext.is_empty() {
            continue;
        }
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
        print_text(&out, settings, crate::term::Style::stdout());
    }
    Ok(())
}

/// One host's row, plus file-level warnings met on the way.
fn host_status(
    host: &HostUrl,
    current: bool,
    resolver: &Resolver,
    inventory: &Inventory,
    agent: Option<&mut AgentClient>,
    served: &[ServedHost],
) -> anyhow::Result<(HostJson, Vec<String>)> {
    let mut store_warning = None;
    let choice = match crate::account::choose(host, None) {
        Ok(c) => c,
        Err(e) => {
            store_warning = Some(format!("{e:#}"));
            crate::account::Choice {
                name: None,
                why: crate::account::Why::Unchosen,
            }
        }
    };
    let account = choice.account();
    let mut unread = None;
    // The keychain as the resolver sees it (this address or its other one); a key routed to a
    // store that does not have it counts as none, and the row says why.
    let stored: Option<Option<(Secret, HostUrl)>> = match agent {
        // The key is only shown masked: no program receives it (the access log says so).
        Some(a) => match super::stored_key(a.purpose(Purpose::Check), host, &account) {
            Ok(Lookup::Found((c, h))) => Some(Some((c.password, h))),
            Ok(Lookup::Missing) if choice.name.is_some() => {
                store_warning = Some(choice.missing(host).to_string());
                Some(None)
            }
            Ok(Lookup::Missing) => Some(None),
            Ok(Lookup::RoutedMiss(why)) => {
                store_warning = Some(why);
                Some(None)
            }
            Err(e) => match e.downcast_ref::<ClientError>() {
                // A routed host whose server cannot answer: say so on its row, go on.
                Some(
                    ce @ ClientError::Agent {
                        code: ErrorCode::Store,
                        ..
                    },
                ) => {
                    store_warning = Some(ce.to_string());
                    unread = Some("not read: the store serving it did not answer, see below");
                    None
                }
                // A broken config.toml: said once, on the `config:` line.
                Some(ClientError::Agent {
                    code: ErrorCode::Config,
                    ..
                }) => {
                    unread = Some("not read: the agent serves no key until config.toml is fixed");
                    None
                }
                // Several accounts and none chosen: the row says how to choose.
                Some(
                    ce @ ClientError::Agent {
                        code: ErrorCode::Account,
                        ..
                    },
                ) => {
                    store_warning = Some(format!("{ce}: {}", crate::account::HOW_TO_CHOOSE));
                    unread = Some("in the keychain, several accounts and none chosen, see below");
                    None
                }
                // A forward answers only for its granted hosts: unknown for the others.
                Some(ClientError::Agent {
                    code: ErrorCode::Forbidden,
                    ..
                }) if a.forwarded() => {
                    unread = Some("not granted to this forward");
                    None
                }
                _ => return Err(e),
            },
        },
        None => None,
    };
    let same = |k: &Secret| {
        stored
            .as_ref()
            .map(|s| s.as_ref().is_some_and(|(s, _)| s.expose() == k.expose()))
    };
    let mut row = HostJson {
        url: host.to_string(),
        current,
        source: None,
        routed: false,
        source_detail: None,
        key: None,
        in_keychain: stored.as_ref().map(Option::is_some),
        plaintext: Vec::new(),
        warnings: store_warning.into_iter().collect(),
        account: choice.name.clone(),
        account_reason: choice.name.as_ref().map(|_| choice.reason()),
        unread,
    };
    // Resolution, in the resolver's (and `wbl login`'s) order, with the keychain's answer
    // above (the agent is asked once).
    let mut file_warnings = Vec::new();
    let from_keychain = stored
        .as_ref()
        .and_then(|s| s.as_ref().map(|(k, h)| (k, h)));
    let resolved = match resolver.resolve(host, from_keychain, &mut file_warnings) {
        Ok(r) => r,
        Err(e) => {
            file_warnings.push(e.to_string());
            None
        }
    };
    if let Some(r) = &resolved {
        row.source = Some(r.source.name().to_owned());
        row.source_detail = match &r.source {
            Source::Keychain { stored_for } if stored_for == host => None,
            s => Some(s.detail()),
        };
        // A routed host's key comes from its store, through the agent, which says which.
        if let Source::Keychain { stored_for } = &r.source
            && let Some(s) = served.iter().find(|s| {
                s.target.protocol == stored_for.scheme() && s.target.host == stored_for.netloc()
            })
        {
            row.source = Some(printable(&s.store).into_owned());
            row.routed = true;
            row.source_detail = s.detail.as_deref().map(|d| printable(d).into_owned());
        }
        row.key = r.key.as_ref().map(|k| mask(k.expose()));
    }
    // Plaintext copies. A settings `api_key` is not tied to a host: it is listed for the
    // current host and for any host whose key resolves from it.
    let settings_too = current
        || matches!(
            resolved.as_ref().map(|r| &r.source),
            Some(Source::Settings { .. })
        );
    let sdk_netrc = resolver.env().netrc_path();
    for k in inventory.keys() {
        let listed = match k.place() {
            Place::Settings { .. } => settings_too,
            Place::Netrc { .. } => k.host().netloc() == host.netloc(),
        };
        if !listed {
            continue;
        }
        let kind = match k.place() {
            Place::Settings { .. } => "settings",
            Place::Netrc { .. } => "netrc",
        };
        row.plaintext.push(PlaintextJson {
            kind,
            path: k.place().path().display().to_string(),
            place: k.place().to_string(),
            same_as_keychain: same(k.key()),
        });
        row.warnings.push(k.warning(&sdk_netrc));
    }
    // A `default` entry the SDK would read for this host.
    if let Some(Source::Netrc {
        path,
        machine: None,
    }) = resolved.as_ref().map(|r| &r.source)
    {
        row.warnings.push(format!(
            "plaintext copy of the key for {} in the default entry of {}; move it by hand (it applies to every host)",
            host.netloc(),
            path.display()
        ));
    }
    Ok((row, file_warnings))
}

/// The report for people; with a fancy style (a terminal), verdicts coloured and marked ✓/✗/!
/// and warnings wrapped at the terminal's width.
fn print_text(out: &StatusJson, settings: &SettingsFiles, style: crate::term::Style) {
    match &out.agent {
        None if out.forwarded => {
            println!(
                "agent:    {} from another machine (keys for granted hosts only)",
                style.good("forwarded by `wbl ssh`")
            );
            println!("socket:   {}", out.socket);
        }
        Some(a) => {
            println!(
                "agent:    {} (pid {}, version {})",
                style.good("running"),
                a.pid,
                a.version
            );
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
            println!(
                "agent:    {} (socket {})",
                style.skipped("not running"),
                out.socket
            );
            println!("          it starts on the next `wbl login` or `wbl token`");
        }
    }
    if let Some(e) = &out.config_error {
        println!(
            "config:   {} {}",
            style.bad("PROBLEM"),
            style.wrap(e, 18 + style.mark_width())
        );
        println!("          the agent serves no key until the file is fixed (`wbl doctor`)");
    }
    for (i, f) in settings.files().iter().enumerate() {
        let label = if i == 0 { "settings:" } else { "         " };
        let keys = f.file().items();
        let what = if !f.exists() {
            "not present".to_owned()
        } else if keys.is_empty() {
            "empty".to_owned()
        } else {
            keys.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
        };
        println!(
            "{label} {} ({}: {what})",
            f.path().display(),
            f.scope().name()
        );
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
            Some(true) if h.routed => "served by the agent, not kept in the keychain",
            Some(true) if out.forwarded => "served by the forwarded agent",
            Some(false) if out.forwarded => "the forwarded agent has none",
            Some(true) => "in the keychain",
            Some(false) => "not in the keychain",
            None => h
                .unread
                .unwrap_or("keychain not checked: the agent is not running"),
        };
        match (&h.source, &h.key) {
            (Some(src), Some(k)) => {
                let detail = h
                    .source_detail
                    .as_deref()
                    .map(|d| format!(" {d}"))
                    .unwrap_or_default();
                // Through a forward the key is another machine's: no keychain here.
                let src = match src.as_str() {
                    "keychain" if out.forwarded => "the forwarded agent",
                    s => s,
                };
                println!(
                    "    key:  {} from {src}{detail} ({keychain})",
                    style.good(k)
                );
            }
            _ => {
                let login = if h.url == crate::wandb::host::DEFAULT_BASE_URL {
                    "wbl login".to_owned()
                } else {
                    format!("wbl login --host {}", h.url)
                };
                if h.unread.is_some() {
                    println!("    key:  {} ({keychain})", style.warning("none known"));
                } else {
                    println!(
                        "    key:  {} ({keychain}); run `{login}`",
                        style.bad("none")
                    );
                }
            }
        }
        if let (Some(a), Some(why)) = (&h.account, &h.account_reason) {
            println!("    account {}: {}", printable(a), printable(why));
        }
        for w in &h.warnings {
            println!(
                "    {} {}",
                style.warning("WARNING"),
                style.wrap(&printable(w), 12 + style.mark_width())
            );
        }
    }
    if !out.forwards.is_empty() {
        println!("forwards:");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        for f in &out.forwards {
            let until = match f.expires_unix {
                Some(t) => format!(
                    "for {} more",
                    crate::term::human_duration(t.saturating_sub(now))
                ),
                None => "until the session ends".to_owned(),
            };
            println!(
                "  {} (forward {}): {}; {until}; {} key{} handed out",
                printable(&f.destination),
                f.id,
                printable(&f.hosts.join(", ")),
                f.handed_out,
                if f.handed_out == 1 { "" } else { "s" }
            );
        }
    }
    if !out.credentials.is_empty() {
        println!("keys:");
        for c in &out.credentials {
            // Stored by git or Docker for any URL: escaped, and a token as user name masked.
            println!(
                "  {} (user {})",
                printable(&c.url),
                printable(&crate::text::username(&c.username))
            );
        }
    }
    for w in &out.warnings {
        println!(
            "{} {}",
            style.warning("WARNING"),
            style.wrap(&printable(w), 8 + style.mark_width())
        );
    }
}
