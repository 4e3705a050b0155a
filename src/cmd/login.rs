//! `wbl login`: `wandb login` with the key going to the keychain (through the agent) instead of
//! a plaintext netrc.
//!
//! Follows `wandb login` of wandb 0.31.0 (`login` in `wandb/cli/cli.py`,
//! `wandb/sdk/wandb_login.py` and `wandb/sdk/lib/wbauth/`): the same key sources in the same
//! order (`WANDB_API_KEY`, then — wbl's addition — the keychain, then `api_key` in the settings
//! files, then netrc, then a hidden prompt), the same key and host checks and messages, the
//! same settings-file edits for `--host`/`--cloud`, and `--verify` as the SDK's viewer query.
//! Verification is off by default, as in the SDK; without it there is no network traffic at
//! all.

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use wbl_proto::{
    Account, Credential, DEFAULT_ACCOUNT, Purpose, Secret, account_user, user_account,
};

use super::target_of;
use crate::cli::LoginArgs;
use crate::client::{AgentClient, ClientError, connect_or_start};
use crate::rendezvous::RuntimePaths;
use crate::term;
use crate::wandb::apikey::check_api_key;
use crate::wandb::host::HostUrl;
use crate::wandb::resolver::{self, Lookup, Resolver, Scope, SettingsFiles, Source, WandbEnv};
use crate::wandb::verify::{self, Viewer};

/// The SDK's link for people who want their own server.
const SERVER_HELP_URL: &str = "https://wandb.me/wandb-server";

/// Said whenever the key came on the command line, where every user of the machine can read
/// it (`ps`, `/proc/PID/cmdline`) while wbl runs, and where shells keep it in their history.
const ARGV_KEY_WARNING: &str = "the API key was on the command line, where every user of this \
     machine could see it in the process list (and your shell may keep it in its history); next \
     time let `wbl login` prompt for it, or pipe it to `wbl login -`, which reads it from stdin";

/// The SDK's error when there is no key and no terminal to ask for one.
const NO_KEY: &str = "No API key configured. Use `wbl login` to log in.";

/// Everything a login step needs.
struct Ctx {
    env: WandbEnv,
    host: HostUrl,
    /// `Some` when `--verify`.
    verify: Option<Duration>,
    agent: Option<AgentClient>,
    /// `--account`: the account the key is stored as.
    account: Option<String>,
}

impl Ctx {
    /// What holds the keys, as the user should read it: on a remote machine of `wbl ssh` the
    /// agent is another machine's, reached through a forwarded socket, not a keychain here.
    fn store_name(&self) -> &'static str {
        if self.agent.as_ref().is_some_and(AgentClient::forwarded) {
            "the forwarded agent (`wbl ssh`)"
        } else {
            "the keychain"
        }
    }

    fn agent(&mut self) -> anyhow::Result<&mut AgentClient> {
        if self.agent.is_none() {
            let mut agent = connect_or_start(&RuntimePaths::from_env())
                .context("while connecting to wbl-agent")?;
            // A stored key login finds is only looked at (compared, verified by wbl itself):
            // the access log records no hand-out.
            agent.purpose(Purpose::Check);
            self.agent = Some(agent);
        }
        match self.agent.as_mut() {
            Some(a) => Ok(a),
            None => bail!("wbl-agent is not connected"),
        }
    }

    /// Checks the key with the server when `--verify` was given.
    fn check(&self, key: &Secret) -> anyhow::Result<Option<Viewer>> {
        match self.verify {
            Some(timeout) => Ok(Some(verify::verify(&self.host, key, timeout)?)),
            None => Ok(None),
        }
    }

    /// The account a key is stored as: `--account`, else the W&B user name of a verified key,
    /// else `default`.
    fn account_for(&self, viewer: Option<&Viewer>) -> String {
        if let Some(a) = &self.account {
            return a.clone();
        }
        viewer
            .and_then(|v| v.username.as_deref())
            .filter(|u| wbl_proto::account_name_problem(u).is_none())
            .unwrap_or(DEFAULT_ACCOUNT)
            .to_owned()
    }

    /// Hands the key to the agent as the account `account`; returns once the keychain has it.
    fn store(&mut self, key: Secret, viewer: Option<&Viewer>) -> anyhow::Result<()> {
        let mut account = self.account_for(viewer);
        // A verified key that is already the account `default` (stored before accounts, or
        // unverified) stays that account instead of becoming a second one with the same key.
        if self.account.is_none() && account != DEFAULT_ACCOUNT {
            let query = wbl_proto::Query {
                target: target_of(&self.host),
                username: None,
                account: Account::Named(DEFAULT_ACCOUNT.into()),
            };
            if let Ok(Some(c)) = self.agent()?.get(query)
                && c.password.expose() == key.expose()
            {
                account = DEFAULT_ACCOUNT.to_owned();
            }
        }
        let cred = Credential::new(target_of(&self.host), account_user(&account), key);
        let into = if self.agent()?.forwarded() {
            "through the forwarded agent (`wbl ssh`)"
        } else {
            "in the keychain"
        };
        let stored = match self.agent()?.store(cred.clone()) {
            // The agent closes a connection idle for 30 s: a long prompt outlives it. Once more
            // on a new one (made sealed, so its access-log entry names no program).
            Err(ClientError::Protocol(_)) => {
                self.agent = None;
                self.agent()?.store(cred)
            }
            r => r,
        }
        .with_context(|| format!("while storing the key {into}"))?;
        if account == DEFAULT_ACCOUNT {
            term::log(&format!("Stored the API key for {} {into}.", self.host));
        } else {
            term::log(&format!(
                "Stored the API key for {} {into} as account {account}.",
                self.host
            ));
        }
        self.say_accounts();
        // The agent falls back to the kernel keyring where no Secret Service answers; say so
        // where the user sees it, not only in the agent's log.
        if !stored.persistent {
            term::warn(
                "The key is in the kernel keyring (keyutils), which does not survive a reboot. \
                 Run `wbl doctor` to see why no Secret Service is used.",
            );
        }
        Ok(())
    }
}

impl Ctx {
    /// After a store: with several accounts for the host, which one is used here, or that
    /// none is until the user chooses (a login never makes one the default).
    fn say_accounts(&mut self) {
        let target = target_of(&self.host);
        let Ok(list) = self.agent().and_then(|a| Ok(a.list()?)) else {
            return;
        };
        let names: Vec<&str> = list
            .iter()
            .filter(|c| c.target == target)
            .map(|c| user_account(&c.username))
            .collect();
        if names.len() < 2 {
            return;
        }
        let choice = crate::account::choose(&self.host, None).ok();
        let used = match choice
            .as_ref()
            .and_then(|c| c.name.as_ref().map(|n| (n, c)))
        {
            Some((name, c)) => format!("here `{name}` is used ({})", c.reason()),
            None => "none is the default: choose with `wbl switch NAME` or `wbl bind NAME`".into(),
        };
        term::log(&format!(
            "{} accounts for {} now ({}); {used}.",
            names.len(),
            self.host,
            names.join(", ")
        ));
    }
}

pub fn run(args: LoginArgs) -> anyhow::Result<()> {
    if let Some(a) = &args.account {
        crate::account::checked_name(a)?;
    }
    if args.anonymously {
        term::warn(
            "The --anonymously parameter has no effect and will be removed in a future version.",
        );
    }
    if args.host.is_some() && args.cloud {
        bail!("Cannot use --host and --cloud together.");
    }
    if args.key.len() > 1 {
        term::warn("Only the first KEY argument is used; the others are ignored.");
    }
    let mut resolver = Resolver::from_env()?;
    for w in resolver.warnings() {
        term::warn(w);
    }
    announce_settings(resolver.settings());

    // --cloud and --host are what the SDK records in the settings file; the others only pick.
    let explicit_host = if args.cloud {
        Some(HostUrl::cloud())
    } else {
        match &args.host {
            Some(h) => Some(HostUrl::parse(h)?),
            None => None,
        }
    };
    let host = match &explicit_host {
        Some(h) => h.clone(),
        None => resolver.default_host().map_err(anyhow::Error::msg)?.0,
    };
    let verify = if args.verify {
        Some(
            verify::timeout_from(std::env::var(verify::TIMEOUT_ENV).ok().as_deref())
                .map_err(anyhow::Error::msg)?,
        )
    } else {
        None
    };
    let mut ctx = Ctx {
        env: resolver.env().clone(),
        host,
        verify,
        agent: None,
        account: args.account.clone(),
    };

    let key = match args.key.into_iter().next().map(Secret::new) {
        Some(k) if k.expose() == "-" => {
            // Connected before the key is read, so the access log can name this program (the
            // process is sealed from then on: `client::seal`).
            ctx.agent()?;
            Some(read_key_from_stdin()?)
        }
        Some(k) => {
            term::warn(ARGV_KEY_WARNING);
            Some(k)
        }
        None => None,
    };
    let viewer = match key {
        Some(key) => explicit_key(&mut ctx, key)?,
        None if args.relogin => prompted_key(&mut ctx)?,
        None => match found_key(&mut ctx, &resolver)? {
            Some(viewer) => viewer,
            None => prompted_key(&mut ctx)?,
        },
    };

    update_settings(resolver.settings_mut(), explicit_host.as_ref());
    warn_plaintext(&ctx, &resolver);
    term::log(&verify::banner(viewer.as_ref(), &ctx.host));
    Ok(())
}

/// "Loading settings from …", as the SDK prints it (not with `WANDB_QUIET`).
fn announce_settings(settings: &SettingsFiles) {
    if term::quiet() {
        return;
    }
    match settings.in_use().as_slice() {
        [] => {}
        [one] => term::log(&format!("Loading settings from {}", one.display())),
        many => {
            let mut msg = String::from("Loading settings from");
            for p in many {
                msg.push_str(&format!("\n  {}", p.display()));
            }
            term::log(&msg);
        }
    }
}

/// `wbl login -`: the key is the first line of stdin (for scripts and password managers:
/// `pass show wandb | wbl login -`), so it never appears on a command line.
fn read_key_from_stdin() -> anyhow::Result<Secret> {
    crate::client::seal();
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        bail!(
            "`wbl login -` reads the key from a pipe or file; to type it hidden, run `wbl login --relogin`"
        );
    }
    let mut buf = zeroize::Zeroizing::new(Vec::new());
    stdin
        .lock()
        .take(64 * 1024)
        .read_to_end(&mut buf)
        .context("while reading the key from stdin")?;
    let text = match std::str::from_utf8(&buf) {
        Ok(t) => t,
        Err(_) => bail!("the key read from stdin is not valid UTF-8"),
    };
    let line = text.split(['\n', '\r']).next().unwrap_or("");
    Ok(Secret::new(line.to_owned()))
}

/// `wbl login KEY`: check the format, verify if asked, store. An invalid key is never stored.
fn explicit_key(ctx: &mut Ctx, key: Secret) -> anyhow::Result<Option<Viewer>> {
    if let Some(problem) = check_api_key(key.expose()) {
        bail!("{problem}");
    }
    let viewer = ctx.check(&key)?;
    ctx.store(key, viewer.as_ref())?;
    Ok(viewer)
}

fn is_account_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<ClientError>()
            .is_some_and(|c| c.code() == Some(wbl_proto::ErrorCode::Account))
    })
}

impl Ctx {
    /// The keychain's answer for the resolver: the key stored for this host (or its other
    /// address) and the address it is stored for. With `--account`, that account's key;
    /// without, the host's only one. Several accounts and none named, or a host routed to a
    /// store that does not have the key: none, so the resolver goes on to the next source.
    fn stored_key(&mut self) -> anyhow::Result<Option<(Credential, HostUrl)>> {
        let account = match &self.account {
            Some(a) => Account::Named(a.clone()),
            None => Account::Only,
        };
        let host = self.host.clone();
        match super::stored_key(self.agent()?, &host, &account)
            .context("while looking up the stored key")
        {
            Ok(Lookup::Found(found)) => Ok(Some(found)),
            Ok(Lookup::Missing | Lookup::RoutedMiss(_)) => Ok(None),
            Err(e) if is_account_error(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Steps 1–4 of the resolution, in the resolver's order: environment, keychain, settings
/// files, netrc. `Ok(None)` when none has a key (then the caller prompts).
fn found_key(ctx: &mut Ctx, resolver: &Resolver) -> anyhow::Result<Option<Option<Viewer>>> {
    let host = ctx.host.clone();
    let mut warnings = Vec::new();
    // The agent is asked (and started) only when the environment has no key.
    let stored = match resolver.env_key()? {
        Some(_) => None,
        None => ctx.stored_key()?,
    };
    let found = resolver.resolve(
        &host,
        stored.as_ref().map(|(c, h)| (&c.password, h)),
        &mut warnings,
    )?;
    for w in &warnings {
        term::warn(w);
    }
    let Some(found) = found else {
        return Ok(None);
    };
    match found.into_parts() {
        // 1. The environment. The key is used as it is and not stored, as the SDK does.
        (Source::Env, Some(key)) => {
            if let Some(problem) = check_api_key(key.expose()) {
                bail!("WANDB_API_KEY invalid: {problem}");
            }
            let viewer = ctx.check(&key)?;
            term::log(&format!(
                "Loaded credentials for {host} from WANDB_API_KEY."
            ));
            term::log(
                "The key in WANDB_API_KEY is used as it is and not stored in the keychain; run `wbl login --relogin` to store one.",
            );
            Ok(Some(viewer))
        }
        (Source::IdentityTokenFile(file), _) => {
            term::log(&format!(
                "Using the identity token file {file} (WANDB_IDENTITY_TOKEN_FILE) for {host}; there is no API key to store."
            ));
            Ok(Some(None))
        }
        // 2. The keychain (wbl's own store), for this address or its other one: `--verify`
        // asks the address asked for.
        (Source::Keychain { stored_for }, Some(key)) => {
            let viewer = ctx.check(&key).map_err(|e| {
                match e.downcast_ref::<verify::VerifyError>() {
                    Some(v) if v.is_rejection() => anyhow::anyhow!(
                        "{v} (the key stored in the keychain; run `wbl login --relogin` to replace it)"
                    ),
                    _ => e,
                }
            })?;
            let from = ctx.store_name();
            if stored_for == host {
                term::log(&format!(
                    "Loaded credentials for {host} from {from} (already stored)."
                ));
            } else {
                term::log(&format!(
                    "Loaded credentials for {host} from {from} (already stored for {stored_for}, the same W&B deployment)."
                ));
            }
            Ok(Some(viewer))
        }
        // 3. `api_key` in the settings files; 4. netrc.
        (Source::Settings { path } | Source::Netrc { path, .. }, Some(key)) => {
            adopt_plaintext(ctx, key, &path).map(Some)
        }
        (_, None) => Ok(None),
    }
}

/// A key found in a plaintext file: check it, verify if asked, store it in the keychain. The
/// file itself is left as it is (`wbl migrate` removes it; `warn_plaintext` says so).
fn adopt_plaintext(ctx: &mut Ctx, key: Secret, path: &Path) -> anyhow::Result<Option<Viewer>> {
    let host = ctx.host.clone();
    if let Some(problem) = check_api_key(key.expose()) {
        bail!(
            "{problem} (the API key for {host} in {}; fix that file or run `wbl login --relogin`)",
            path.display()
        );
    }
    let viewer = ctx.check(&key)?;
    term::log(&format!(
        "Loaded credentials for {host} from {}.",
        path.display()
    ));
    ctx.store(key, viewer.as_ref())?;
    Ok(viewer)
}

/// After a login, every plaintext key the SDK could still read for this host (in any netrc
/// file, under either address of a Forge-served deployment, or as `api_key`): wbl leaves the
/// files alone, `wbl migrate` removes them.
fn warn_plaintext(ctx: &Ctx, resolver: &Resolver) {
    let hosts = resolver::with_aliases(std::slice::from_ref(&ctx.host));
    for w in resolver.plaintext_warnings(&hosts) {
        term::warn(&w);
    }
}

/// Step 5: the hidden prompt, looping on a bad key like the SDK.
fn prompted_key(ctx: &mut Ctx) -> anyhow::Result<Option<Viewer>> {
    if !term::can_prompt() {
        bail!(
            "{NO_KEY} There is no terminal to ask for the key on: run `wbl login KEY`, or pipe it in with `wbl login -`."
        );
    }
    // Connected before the key is typed, so the access log can name this program (the
    // process is sealed from then on: `client::seal`).
    ctx.agent()?;
    let host = ctx.host.clone();
    if host.is_wandb_domain() {
        term::log(&format!(
            "Logging into {host}. (Learn how to deploy a W&B server locally: {SERVER_HELP_URL})"
        ));
    }
    term::log(&format!(
        "Create a new API key at: {}",
        host.authorize_url(ctx.env.app_url())
    ));
    term::log("Store your API key securely and do not share it.");
    loop {
        let prompt = format!("{}Paste your API key and hit enter: ", term::PREFIX);
        let Some(key) = term::prompt_hidden(&prompt).context("while reading the key")? else {
            bail!("{NO_KEY}");
        };
        if let Some(problem) = check_api_key(key.expose()) {
            term::error(&format!("Invalid API key: {problem}"));
            continue;
        }
        let viewer = match ctx.check(&key) {
            Ok(v) => v,
            Err(e) => match e.downcast_ref::<verify::VerifyError>() {
                Some(v) if v.is_rejection() => {
                    term::error(&format!("Invalid API key: {v}"));
                    continue;
                }
                _ => return Err(e),
            },
        };
        ctx.store(key, viewer.as_ref())?;
        return Ok(viewer);
    }
}

/// After a successful login, the SDK's `_update_system_settings`: the deprecated `anonymous`
/// key is removed from both files; `--host X` sets `base_url = X` in the global file and
/// removes it from the workspace file; `--cloud` (or `--host https://api.wandb.ai`) removes it
/// from both. Other keys, comments and sections stay. A file that could not be read is never
/// rewritten, and a failed write is a warning, not an error.
fn update_settings(settings: &mut SettingsFiles, explicit_host: Option<&HostUrl>) {
    for file in settings.files_mut() {
        let before = file.file().to_string();
        let workspace = file.scope() == Scope::Workspace;
        let edit = file.file_mut();
        edit.remove("anonymous");
        if let Some(host) = explicit_host {
            if host.is_cloud() || workspace {
                edit.remove("base_url");
            } else if let Err(e) = edit.set("base_url", host.as_str()) {
                term::warn(&e.to_string());
            }
        }
        if file.file().to_string() == before {
            continue;
        }
        if file.broken() {
            term::warn(&format!(
                "Not updating {}: it could not be read; fix it by hand.",
                file.path().display()
            ));
            continue;
        }
        match file.file().save(file.path()) {
            Ok(()) => term::log(&format!("Updated settings file {}", file.path().display())),
            Err(e) => term::warn(&e.to_string()),
        }
    }
}
