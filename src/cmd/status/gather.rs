//! `wbl status`'s first step: everything it reports on, read once — the agent's state, the
//! resolver's view of the environment and files, the hosts in play, the keychain's answer
//! for each and every plaintext copy. The only part that talks to the agent.

use wbl_proto::{AgentStatus, CredentialInfo, ErrorCode, ForwardInfo, Purpose, Secret};

use crate::account::Choice;
use crate::client::{AgentClient, ClientError};
use crate::cmd::WANDB_USER;
use crate::rendezvous::RuntimePaths;
use crate::wandb::host::HostUrl;
use crate::wandb::resolver::{Inventory, Lookup, Resolver};

/// What `wbl status` found.
pub(super) struct Facts {
    pub(super) socket: String,
    pub(super) running: bool,
    /// The socket is a forward (`wbl ssh` on another machine).
    pub(super) forwarded: bool,
    pub(super) config_error: Option<String>,
    pub(super) resolver: Resolver,
    /// The host the SDK would use now (the cloud when the configured one is bad).
    pub(super) current: HostUrl,
    /// Hosts shown even without a key: the current one, the cloud, those the environment
    /// and settings name, those the agent stores a W&B key for.
    pub(super) always: Vec<HostUrl>,
    /// The agent's own state; `None` when it is not running or is a forward.
    pub(super) agent: Option<AgentFacts>,
    /// Every host in play, each once, with the keychain's answer.
    pub(super) hosts: Vec<HostFacts>,
    pub(super) inventory: Inventory,
    /// Problems with the files and the environment, in the order met.
    pub(super) warnings: Vec<String>,
}

pub(super) struct AgentFacts {
    pub(super) status: AgentStatus,
    pub(super) forwards: Vec<ForwardInfo>,
    pub(super) proxies: Vec<wbl_proto::ProxyStatus>,
    pub(super) list: Vec<CredentialInfo>,
}

/// One host and what the keychain said for it.
pub(super) struct HostFacts {
    pub(super) host: HostUrl,
    /// The account used for it here.
    pub(super) choice: Choice,
    /// The key stored for it (or its other address) and that address; `Some(None)`: none;
    /// `None`: not read (no agent, or see `unread`).
    pub(super) stored: Option<Option<(Secret, HostUrl)>>,
    /// Why there is no key although one may be meant (a routed store's miss, a named account
    /// missing, a store that does not answer, several accounts).
    pub(super) store_warning: Option<String>,
    /// Why `stored` is `None` although an agent answers.
    pub(super) unread: Option<&'static str>,
}

fn add_once(warnings: &mut Vec<String>, w: &str) {
    if !warnings.iter().any(|x| x == w) {
        warnings.push(w.to_owned());
    }
}

pub(super) fn gather() -> anyhow::Result<Facts> {
    let paths = RuntimePaths::from_env();
    let mut agent = AgentClient::connect_if_running(&paths)?;
    let resolver = Resolver::from_env()?;
    let mut warnings = resolver.warnings().to_vec();
    let current = match resolver.default_host() {
        Ok((h, _)) => h,
        Err(e) => {
            warnings.push(e);
            HostUrl::cloud()
        }
    };
    // The hosts: the resolver's (current, cloud, Forge, base_urls, aliases), and every stored
    // W&B key.
    let (mut hosts, notes) = resolver.known_hosts();
    // Always shown: the current host, the cloud, and the hosts named by WANDB_BASE_URL or a
    // base_url; the others (Forge addresses, aliases) only when a key is somewhere for them.
    let mut always: Vec<HostUrl> = vec![current.clone(), HostUrl::cloud()];
    always.extend(resolver.named_hosts());
    for n in &notes {
        add_once(&mut warnings, n.text());
    }
    let mut facts_of_agent = None;
    if let Some(a) = agent.as_mut().filter(|a| !a.forwarded()) {
        let status = a.status()?;
        // An agent from before forwards answers BadRequest: it has none.
        let forwards = a.forwards().unwrap_or_default();
        // Nor one from before proxies were listed (protocol 10).
        let proxies = a.proxies().unwrap_or_default();
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
        facts_of_agent = Some(AgentFacts {
            status,
            forwards,
            proxies,
            list,
        });
    }
    let mut seen = std::collections::HashSet::new();
    hosts.retain(|h| seen.insert(format!("{}://{}", h.scheme(), h.netloc())));
    // Every plaintext copy the SDK could read, for any of these hosts.
    let inventory = resolver.inventory(&hosts);
    for n in inventory.notes() {
        add_once(&mut warnings, n.text());
    }
    let mut host_facts = Vec::with_capacity(hosts.len());
    for host in hosts {
        host_facts.push(ask(host, agent.as_mut())?);
    }
    Ok(Facts {
        socket: paths.socket_display(),
        running: agent.is_some(),
        forwarded: agent.as_ref().is_some_and(AgentClient::forwarded),
        config_error: crate::config::load().err().map(|e| e.to_string()),
        resolver,
        current,
        always,
        agent: facts_of_agent,
        hosts: host_facts,
        inventory,
        warnings,
    })
}

/// The account used for `host` here and the keychain's answer for it. An answer that is an
/// error for the row (a store that does not answer, a broken config.toml, several accounts, a
/// host not granted to a forward) is said on the row; any other error ends `wbl status`.
fn ask(host: HostUrl, agent: Option<&mut AgentClient>) -> anyhow::Result<HostFacts> {
    let mut store_warning = None;
    let choice = match crate::account::choose(&host, None) {
        Ok(c) => c,
        Err(e) => {
            store_warning = Some(format!("{e:#}"));
            Choice {
                name: None,
                why: crate::account::Why::Unchosen,
            }
        }
    };
    let account = choice.account();
    let mut unread = None;
    // The keychain as the resolver sees it (this address or its other one); a key routed to a
    // store that does not have it counts as none, and the row says why.
    let stored = match agent {
        // The key is only shown masked: no program receives it (the access log says so).
        Some(a) => match crate::cmd::stored_key(a.purpose(Purpose::Check), &host, &account) {
            Ok(Lookup::Found((c, h))) => Some(Some((c.password, h))),
            Ok(Lookup::Missing) if choice.name.is_some() => {
                store_warning = Some(choice.missing(&host).to_string());
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
    Ok(HostFacts {
        host,
        choice,
        stored,
        store_warning,
        unread,
    })
}
