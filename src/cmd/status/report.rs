//! `wbl status`'s second step: the rules, applied to what `gather` found — which hosts are
//! shown, where each one's key resolves from, which plaintext copies each row warns about —
//! into [`StatusJson`], the value `--json` prints and `render` words. No I/O but the
//! resolver's file reads.

use serde::Serialize;
use wbl_proto::Secret;

use super::gather::{Facts, HostFacts};
use crate::text::printable;
use crate::wandb::apikey::mask;
use crate::wandb::resolver::{Place, Source};

#[derive(Serialize)]
pub(super) struct StatusJson {
    pub(super) agent_running: bool,
    pub(super) socket: String,
    /// The socket is a forward (`wbl ssh` on another machine): only `get` for its granted
    /// hosts works, so the agent's details and the stored list are not shown.
    pub(super) forwarded: bool,
    pub(super) agent: Option<AgentJson>,
    /// Why wbl's configuration file (config.toml) cannot be used; while it cannot, the agent
    /// serves no key at all. Null when it is fine or absent.
    pub(super) config_error: Option<String>,
    /// The agent's live forwards (`wbl ssh`) and their grants.
    pub(super) forwards: Vec<ForwardJson>,
    /// The agent's proxies (`--proxy`), open or ending; never their placeholders.
    pub(super) proxies: Vec<ProxyJson>,
    /// Every credential the agent stores (W&B keys and others), without secrets.
    pub(super) credentials: Vec<CredJson>,
    /// The host the SDK (and `wbl login`) would use now.
    pub(super) current_host: String,
    pub(super) hosts: Vec<HostJson>,
    pub(super) settings_files: Vec<SettingsJson>,
    pub(super) netrc: NetrcJson,
    pub(super) env: EnvJson,
    /// Problems reading the files above.
    pub(super) warnings: Vec<String>,
}

#[derive(Serialize)]
pub(super) struct AgentJson {
    pub(super) pid: u32,
    pub(super) version: String,
    pub(super) protocol: u32,
    pub(super) backend: String,
    pub(super) backend_persistent: bool,
    pub(super) uptime_secs: u64,
    pub(super) cached_entries: u64,
    pub(super) stored_entries: u64,
}

#[derive(Serialize)]
pub(super) struct ForwardJson {
    pub(super) id: String,
    /// The ssh destination the socket is forwarded to.
    pub(super) destination: String,
    /// The hosts the forward may get keys for.
    pub(super) hosts: Vec<String>,
    pub(super) created_unix: u64,
    /// When the grant ends (Unix time); null: when the `wbl ssh` session ends.
    pub(super) expires_unix: Option<u64>,
    /// Keys handed out over this forward so far.
    pub(super) handed_out: u64,
    pub(super) socket: String,
}

#[derive(Serialize)]
pub(super) struct ProxyJson {
    pub(super) id: String,
    /// Who uses it: `exec:<program>` or `ssh:<destination>`.
    pub(super) destination: String,
    /// `127.0.0.1:PORT`, or the restricted socket `ssh -R` connects to.
    pub(super) address: String,
    pub(super) upstream: String,
    pub(super) account: String,
    pub(super) created_unix: u64,
    /// When the grant ends (Unix time); null: when its command or session ends.
    pub(super) expires_unix: Option<u64>,
    /// The grant ended; the port refuses (and logs) late requests until it closes.
    pub(super) ended: bool,
    /// Requests refused so far.
    pub(super) refused: u64,
}

#[derive(Serialize)]
pub(super) struct CredJson {
    pub(super) url: String,
    pub(super) username: String,
}

#[derive(Serialize)]
pub(super) struct HostJson {
    pub(super) url: String,
    /// This is the current host.
    pub(super) current: bool,
    /// Where the key for this host resolves from: `env`, `identity_token_file`, `keychain`,
    /// the kind of store a host routed by config.toml is served from as the agent reports it
    /// (`openbao`), `settings`, `netrc`, or null when there is none.
    pub(super) source: Option<String>,
    /// The key is served by a store the configuration routes the host to, not the keychain.
    #[serde(skip)]
    pub(super) routed: bool,
    /// Where exactly: `WANDB_API_KEY`, the file (and netrc machine) of a `settings` or
    /// `netrc` source, `stored for URL` for a key stored for the other address of a
    /// Forge-served deployment, or the OpenBao server and secret of a routed host.
    pub(super) source_detail: Option<String>,
    /// The resolved key, masked (first 4 and last 4 characters).
    pub(super) key: Option<String>,
    /// Whether the agent has a key for this host (in the keychain, or from OpenBao for a
    /// routed host); null when the agent is not running.
    pub(super) in_keychain: Option<bool>,
    /// Plaintext copies of a key for this host.
    pub(super) plaintext: Vec<PlaintextJson>,
    pub(super) warnings: Vec<String>,
    /// The account used for this host in the current directory (null: none chosen, so the
    /// host's only one), and why (`bound to ~/work in config.toml line 12`).
    pub(super) account: Option<String>,
    pub(super) account_reason: Option<String>,
    /// Why `in_keychain` is null although an agent answers (text output only).
    #[serde(skip)]
    pub(super) unread: Option<&'static str>,
}

#[derive(Serialize)]
pub(super) struct PlaintextJson {
    /// `netrc` or `settings`.
    pub(super) kind: &'static str,
    pub(super) path: String,
    /// The file and where in it, e.g. `/home/u/.netrc (machine api.wandb.ai, line 3)`.
    pub(super) place: String,
    /// The copy holds the same key as the keychain (null when unknown).
    pub(super) same_as_keychain: Option<bool>,
}

#[derive(Serialize)]
pub(super) struct SettingsJson {
    /// `global` or `workspace`.
    pub(super) scope: &'static str,
    pub(super) path: String,
    pub(super) exists: bool,
    /// The keys set in its `[default]` section (values are not shown).
    pub(super) keys: Vec<String>,
}

#[derive(Serialize)]
pub(super) struct NetrcJson {
    pub(super) path: String,
    pub(super) exists: bool,
}

#[derive(Serialize)]
pub(super) struct EnvJson {
    pub(super) wandb_api_key_set: bool,
    pub(super) wandb_base_url: Option<String>,
}

pub(super) fn report(facts: &Facts) -> StatusJson {
    let resolver = &facts.resolver;
    let env = resolver.env();
    let netrc_path = env.netrc_path();
    let mut out = StatusJson {
        agent_running: facts.running,
        socket: facts.socket.clone(),
        forwarded: facts.forwarded,
        agent: None,
        config_error: facts.config_error.clone(),
        forwards: Vec::new(),
        proxies: Vec::new(),
        credentials: Vec::new(),
        current_host: facts.current.to_string(),
        hosts: Vec::new(),
        settings_files: resolver
            .settings()
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
    if let Some(a) = &facts.agent {
        out.forwards = a
            .forwards
            .iter()
            .map(|f| ForwardJson {
                id: f.id.clone(),
                destination: f.destination.clone(),
                hosts: f.hosts.iter().map(|t| t.to_string()).collect(),
                created_unix: f.created_unix,
                expires_unix: f.expires_unix,
                handed_out: f.handed_out,
                socket: f.socket.clone(),
            })
            .collect();
        out.proxies = a
            .proxies
            .iter()
            .map(|p| ProxyJson {
                id: p.id.clone(),
                destination: p.destination.clone(),
                address: p.address.clone(),
                upstream: p.upstream.clone(),
                account: p.account.clone(),
                created_unix: p.created_unix,
                expires_unix: p.expires_unix,
                ended: p.ended,
                refused: p.refused,
            })
            .collect();
        out.credentials = a
            .list
            .iter()
            .map(|c| CredJson {
                url: c.target.to_string(),
                username: c.username.clone(),
            })
            .collect();
        let s = &a.status;
        out.agent = Some(AgentJson {
            pid: s.pid,
            version: s.agent_version.clone(),
            protocol: s.protocol,
            backend: s.backend.clone(),
            backend_persistent: s.backend_persistent,
            uptime_secs: s.uptime_secs,
            cached_entries: s.cached_entries,
            stored_entries: s.stored_entries,
        });
    }
    let mut warnings = facts.warnings.clone();
    for h in &facts.hosts {
        let (row, file_warnings) = host_row(facts, h);
        if !facts.always.contains(&h.host) && row.source.is_none() && row.plaintext.is_empty() {
            continue;
        }
        for w in file_warnings {
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
        out.hosts.push(row);
    }
    out.warnings = warnings;
    out
}

/// One host's row, plus file-level warnings met on the way.
fn host_row(facts: &Facts, h: &HostFacts) -> (HostJson, Vec<String>) {
    let resolver = &facts.resolver;
    let inventory = &facts.inventory;
    let host = &h.host;
    let current = *host == facts.current;
    let choice = &h.choice;
    let stored = &h.stored;
    // A routed host's key is served by the store the agent names.
    let served = facts
        .agent
        .as_ref()
        .map(|a| a.status.served.as_slice())
        .unwrap_or_default();
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
        warnings: h.store_warning.iter().cloned().collect(),
        account: choice.name.clone(),
        account_reason: choice.name.as_ref().map(|_| choice.reason()),
        unread: h.unread,
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
        row.source = Some(r.source().name().to_owned());
        row.source_detail = match r.source() {
            Source::Keychain { stored_for } if stored_for == host => None,
            s => Some(s.detail()),
        };
        // A routed host's key comes from its store, through the agent, which says which.
        if let Source::Keychain { stored_for } = r.source()
            && let Some(s) = served.iter().find(|s| {
                s.target.protocol == stored_for.scheme() && s.target.host == stored_for.netloc()
            })
        {
            row.source = Some(printable(&s.store).into_owned());
            row.routed = true;
            row.source_detail = s.detail.as_deref().map(|d| printable(d).into_owned());
        }
        row.key = r.key().map(|k| mask(k.expose()));
    }
    // Plaintext copies. A settings `api_key` is not tied to a host: it is listed for the
    // current host and for any host whose key resolves from it.
    let settings_too = current
        || matches!(
            resolved.as_ref().map(|r| r.source()),
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
    }) = resolved.as_ref().map(|r| r.source())
    {
        row.warnings.push(format!(
            "A plaintext API key for {} is in the default entry of the netrc file {}, which applies to every host; move it by hand.",
            host.netloc(),
            path.display()
        ));
    }
    (row, file_warnings)
}
