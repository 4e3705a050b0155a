//! `wbl scan`: find the copies of the exact keys the agent holds that already sit in files —
//! the key itself, HTTP Basic auth (`base64(user:key)`), base64 inside longer text, and
//! URL-encoded — and say for each where it is, which key it is (never the key) and what to do.
//! The keys come from the agent only for the scan (`Purpose::Check`: no other program
//! receives them), are turned into the search automaton and zeroed.
//!
//! Exit status: 0 nothing found, 1 copies found, 2 an error (no agent, a path that does not
//! exist, a forwarded session).

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde::Serialize;
use wbl_proto::{Credential, ErrorCode, Purpose, Query};
use zeroize::Zeroizing;

use super::{ExitError, WANDB_USER};
use crate::cli::ScanArgs;
use crate::client::{AgentClient, ClientError, connect_or_start};
use crate::rendezvous::RuntimePaths;
use crate::scan::walk::{self, Options, Progress};
use crate::scan::{Form, Hit, MIN_SECRET_LEN, Needle, Needles, forms};
use crate::text::{printable, username};
use crate::wandb::fsutil::same_file;
use crate::wandb::host::HostUrl;
use crate::wandb::resolver::{Lookup, Resolver};

/// Exit status for an error (1 means copies were found).
const EXIT_ERROR: u8 = 2;

/// Which credential a needle belongs to: what is shown of it (never the secret).
struct Owner {
    /// The URL it is stored for (and any other URL storing the same secret).
    urls: Vec<String>,
    username: String,
    /// The secret's last four characters, when it is long enough to show them.
    last4: Option<String>,
    /// Which field of the credential: `key`, `password`, `credential` (a pre-encoded
    /// Authorization value) or `refresh token`.
    field: &'static str,
    /// The W&B host, for a W&B key: where to rotate it.
    wandb: Option<HostUrl>,
}

/// One credential and the secret values to search for.
struct Held {
    cred: Credential,
    wandb: Option<HostUrl>,
}

#[derive(Serialize)]
struct HitJson<'a> {
    path: String,
    line: u64,
    column: u64,
    /// `key`, `basic-auth`, `base64` or `url-encoded`.
    form: &'static str,
    url: &'a str,
    /// Other URLs the same secret is stored for.
    also: &'a [String],
    username: String,
    field: &'static str,
    last4: Option<&'a str>,
    /// `migrate` (a file `wbl migrate` moves keys from) or `remove`.
    action: &'static str,
    advice: String,
}

/// Runs the scan: `Ok(true)` when nothing was found; every error exits with status 2.
pub fn run(args: ScanArgs) -> anyhow::Result<bool> {
    scan(args).map_err(|e| match e.downcast::<ExitError>() {
        Ok(x) => x.into(),
        Err(e) => ExitError {
            code: EXIT_ERROR,
            message: format!("{e:#}"),
        }
        .into(),
    })
}

fn scan(args: ScanArgs) -> anyhow::Result<bool> {
    let resolver = Resolver::from_env()?;
    let roots = roots(&args.paths, resolver.env().home())?;
    let mut agent = connect_or_start(&RuntimePaths::from_env())?;
    if agent.forwarded() {
        return Err(ExitError {
            code: EXIT_ERROR,
            message: "this wbl talks to a forwarded agent (`wbl ssh`): it may only get keys \
                for the hosts granted to the session, for programs to use, and wbl scan \
                cannot search for keys it was not given. Run `wbl scan` on the machine whose \
                keychain holds the keys (scanning this machine's files from there, e.g. over \
                sshfs, or copy the files back)"
                .to_owned(),
        }
        .into());
    }
    agent.purpose(Purpose::Check);
    let mut warnings = Vec::new();
    let held = held_credentials(&mut agent, &resolver, args.all, &mut warnings)?;
    drop(agent);

    // The needles, each tagged with its owner; the credentials are zeroed when `held` goes.
    let mut owners: Vec<Owner> = Vec::new();
    let mut needles: Vec<(usize, Needle)> = Vec::new();
    let mut seen: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    for h in &held {
        let c = &h.cred;
        let url = c.target.to_string();
        let mut secrets: Vec<(&'static str, &str, Option<&str>)> = vec![(
            if h.wandb.is_some() { "key" } else { "password" },
            c.password.expose(),
            Some(c.username.as_str()),
        )];
        if let Some(v) = &c.credential {
            secrets.push(("credential", v.expose(), None));
        }
        if let Some(v) = &c.oauth_refresh_token {
            secrets.push(("refresh token", v.expose(), None));
        }
        for (field, secret, user) in secrets {
            if secret.is_empty() {
                continue;
            }
            if secret.len() < MIN_SECRET_LEN {
                warnings.push(format!(
                    "the {field} of {} (user {}) is shorter than {MIN_SECRET_LEN} characters: \
                     not searched for (it would match ordinary text)",
                    printable(&url),
                    printable(&username(&c.username)),
                ));
                continue;
            }
            // The same secret stored for another URL: one owner naming both.
            if let Some(i) = seen.iter().position(|s| s[..] == *secret.as_bytes()) {
                if !owners[i].urls.contains(&url) {
                    owners[i].urls.push(url.clone());
                }
                continue;
            }
            seen.push(Zeroizing::new(secret.as_bytes().to_vec()));
            let owner = owners.len();
            let chars: Vec<char> = secret.chars().collect();
            owners.push(Owner {
                urls: vec![url.clone()],
                username: c.username.clone(),
                last4: (chars.len() >= 16).then(|| chars[chars.len() - 4..].iter().collect()),
                field,
                wandb: h.wandb.clone(),
            });
            needles.extend(
                forms(secret.as_bytes(), user)
                    .into_iter()
                    .map(|n| (owner, n)),
            );
        }
    }
    drop(held);
    drop(seen);
    for w in &warnings {
        eprintln!("wbl: warning: {w}");
    }
    let Some(automaton) = Needles::new(&needles) else {
        drop(needles);
        let what = if args.all {
            "no credentials"
        } else {
            "no W&B keys (add --all for git, docker and other credentials)"
        };
        return Err(anyhow::anyhow!(
            "the agent holds {what} to search for; nothing was scanned"
        ));
    };
    drop(needles);

    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    let opts = Options {
        binary: args.binary,
        cross_filesystems: args.cross_filesystems,
        threads,
    };
    let progress = Progress::default();
    let report = std::thread::scope(|s| {
        let (done, finished) = std::sync::mpsc::channel::<()>();
        if std::io::stderr().is_terminal() {
            let p = &progress;
            s.spawn(move || show_progress(p, finished));
        }
        let report = walk::scan(&automaton, &roots, &opts, &progress);
        drop(done);
        report
    });
    drop(automaton);

    let advisor = Advisor::new(&resolver);
    let mut stdout = std::io::stdout().lock();
    use std::io::Write;
    for hit in &report.hits {
        let owner = &owners[hit.needle.owner];
        let (action, advice) = advisor.advice(&hit.path, owner);
        if args.json {
            let j = HitJson {
                path: hit.path.to_string_lossy().into_owned(),
                line: hit.line,
                column: hit.column,
                form: hit.needle.form.name(),
                url: &owner.urls[0],
                also: &owner.urls[1..],
                username: username(&owner.username).into_owned(),
                field: owner.field,
                last4: owner.last4.as_deref(),
                action,
                advice,
            };
            writeln!(stdout, "{}", serde_json::to_string(&j)?)?;
        } else {
            writeln!(stdout, "{}", describe(hit, owner))?;
            writeln!(stdout, "    {advice}")?;
        }
    }
    stdout.flush()?;
    drop(stdout);
    summary(&report, args.verbose);
    Ok(report.hits.is_empty())
}

/// A progress line on stderr (a terminal) four times a second, once the scan has taken a
/// second; cleared when `finished` closes.
fn show_progress(progress: &Progress, finished: Receiver<()>) {
    let start = Instant::now();
    let mut shown = false;
    while let Err(RecvTimeoutError::Timeout) = finished.recv_timeout(Duration::from_millis(250)) {
        if start.elapsed() < Duration::from_secs(1) {
            continue;
        }
        shown = true;
        eprint!(
            "\r\x1b[2Kwbl scan: {} files, {:.0} MB searched…",
            progress.files.load(Ordering::Relaxed),
            progress.bytes.load(Ordering::Relaxed) as f64 / 1e6
        );
    }
    if shown {
        eprint!("\r\x1b[2K");
    }
}

/// One hit as a line: `file:line:column: FORM of URL (user NAME, key …abcd)`.
fn describe(hit: &Hit, owner: &Owner) -> String {
    let also = if owner.urls.len() > 1 {
        format!(", also stored for {}", owner.urls[1..].join(", "))
    } else {
        String::new()
    };
    let tail = owner
        .last4
        .as_deref()
        .map(|l| format!(", ending …{l}"))
        .unwrap_or_default();
    let form = match (hit.needle.form, owner.field) {
        (Form::Key, "key") => "the key itself".to_owned(),
        (Form::Key, field) => format!("the {field} itself"),
        (form, _) => form.describe().to_owned(),
    };
    printable(&format!(
        "{}:{}:{}: {form}: {} {} of {} (user {}{tail}{also})",
        hit.path.display(),
        hit.line,
        hit.column,
        if owner.wandb.is_some() { "W&B" } else { "the" },
        owner.field,
        owner.urls[0],
        username(&owner.username),
    ))
    .into_owned()
}

/// The summary on stderr: what was searched, what was skipped and, with `verbose`, each
/// unreadable file and mount point not entered.
fn summary(report: &walk::Report, verbose: bool) {
    let files: BTreeSet<&Path> = report.hits.iter().map(|h| h.path.as_path()).collect();
    let mut skipped = Vec::new();
    if !report.unreadable.is_empty() {
        skipped.push(format!("{} unreadable", report.unreadable.len()));
    }
    if report.binary > 0 {
        skipped.push(format!("{} binary (--binary searches them)", report.binary));
    }
    if report.symlinks > 0 {
        skipped.push(format!("{} symbolic links not followed", report.symlinks));
    }
    if !report.other_fs.is_empty() {
        skipped.push(format!(
            "{} other file systems (--cross-filesystems enters them)",
            report.other_fs.len()
        ));
    }
    eprintln!(
        "wbl scan: {} {} in {} {}; searched {} files ({:.1} MB){}{}",
        report.hits.len(),
        if report.hits.len() == 1 {
            "copy"
        } else {
            "copies"
        },
        files.len(),
        if files.len() == 1 { "file" } else { "files" },
        report.files,
        report.bytes as f64 / 1e6,
        if skipped.is_empty() {
            ""
        } else {
            "; skipped: "
        },
        skipped.join(", "),
    );
    if verbose {
        for (p, why) in &report.unreadable {
            eprintln!(
                "wbl scan: unreadable: {}: {}",
                printable(&p.display().to_string()),
                why
            );
        }
        for p in &report.other_fs {
            eprintln!(
                "wbl scan: not entered (another file system): {}",
                printable(&p.display().to_string())
            );
        }
    } else if !report.unreadable.is_empty() || !report.other_fs.is_empty() {
        eprintln!("wbl scan: --verbose lists what was not searched");
    }
}

/// The directories and files to search: `paths`, or the home and current directories;
/// each made absolute, and those inside another dropped. A named path that does not
/// exist is an error.
fn roots(paths: &[PathBuf], home: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let named: Vec<PathBuf> = if paths.is_empty() {
        let mut v = vec![home.to_path_buf()];
        v.extend(std::env::current_dir().ok());
        v
    } else {
        paths.to_vec()
    };
    let mut out: Vec<PathBuf> = Vec::new();
    for p in named {
        let abs = std::fs::canonicalize(&p).map_err(|e| {
            anyhow::anyhow!("cannot scan {}: {e}", printable(&p.display().to_string()))
        })?;
        out.push(abs);
    }
    out.sort();
    out.dedup();
    let all = out.clone();
    out.retain(|p| !all.iter().any(|q| q != p && p.starts_with(q)));
    Ok(out)
}

/// Every credential to search for: the W&B key of each host wbl knows of (and every W&B key
/// the agent stores); with `all`, every other credential it stores and the hosts the agent
/// serves from a team's store. A routed host whose store cannot answer is a warning.
fn held_credentials(
    agent: &mut AgentClient,
    resolver: &Resolver,
    all: bool,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Vec<Held>> {
    let (mut hosts, _) = resolver.known_hosts();
    let list = agent.list()?;
    for c in &list {
        if c.username == WANDB_USER
            && c.target.path.is_none()
            && let Ok(h) = HostUrl::parse(&c.target.to_string())
        {
            hosts.push(h);
        }
    }
    let mut seen_hosts = BTreeSet::new();
    hosts.retain(|h| seen_hosts.insert(format!("{}://{}", h.scheme(), h.netloc())));
    let mut held: Vec<Held> = Vec::new();
    let have = |held: &mut Vec<Held>, cred: Credential, wandb: Option<HostUrl>| {
        if !held
            .iter()
            .any(|h| h.cred.target == cred.target && h.cred.username == cred.username)
        {
            held.push(Held { cred, wandb });
        }
    };
    for host in &hosts {
        // Every account of the host (the key stored before accounts is `default`).
        let target = super::target_of(host);
        let mut accounts: Vec<&str> = list
            .iter()
            .filter(|c| c.target == target)
            .map(|c| wbl_proto::user_account(&c.username))
            .collect();
        if accounts.is_empty() {
            accounts.push(wbl_proto::DEFAULT_ACCOUNT);
        }
        for account in accounts {
            let account = wbl_proto::Account::Named(account.to_owned());
            match super::stored_key(agent, host, &account) {
                Ok(Lookup::Found((c, h))) => have(&mut held, c, Some(h)),
                Ok(Lookup::Missing | Lookup::RoutedMiss(_)) => {}
                Err(e) => warnings.push(lookup_failure(e, &host.to_string())?),
            }
        }
    }
    if !all {
        return Ok(held);
    }
    let mut queries: Vec<Query> = list
        .iter()
        .map(|c| Query {
            target: c.target.clone(),
            username: Some(c.username.clone()),
            account: Default::default(),
        })
        .collect();
    // The hosts the agent serves from a team's store, as the agent reports them (only it
    // knows its routing).
    match agent.status() {
        Ok(status) => queries.extend(status.served.into_iter().map(|served| Query {
            target: served.target,
            username: None,
            account: Default::default(),
        })),
        Err(e) => warnings.push(lookup_failure(
            e.into(),
            "the hosts routed to a team's store",
        )?),
    }
    for q in queries {
        let what = q.target.to_string();
        match super::lookup(agent.get(q)) {
            Ok(Lookup::Found(c)) => {
                let wandb = (c.username == WANDB_USER && c.target.path.is_none())
                    .then(|| HostUrl::parse(&c.target.to_string()).ok())
                    .flatten();
                have(&mut held, c, wandb);
            }
            Ok(Lookup::Missing | Lookup::RoutedMiss(_)) => {}
            Err(e) => warnings.push(lookup_failure(e, &what)?),
        }
    }
    Ok(held)
}

/// A lookup that failed for one host: a warning when its store (OpenBao, a forward's
/// grant) could not answer; any other failure ends the scan.
fn lookup_failure(e: anyhow::Error, what: &str) -> anyhow::Result<String> {
    match e.downcast_ref::<ClientError>() {
        Some(ClientError::Agent {
            code: ErrorCode::Store | ErrorCode::Config | ErrorCode::Forbidden,
            ..
        }) => Ok(format!(
            "not searching for the key of {}: {e}",
            printable(what)
        )),
        _ => Err(e),
    }
}

/// What to do about a copy, by where it is.
struct Advisor {
    /// Files `wbl migrate` moves keys out of (netrc, W&B settings), and git's store files
    /// (`wbl migrate --git-credentials`).
    migrate: Vec<PathBuf>,
    git_store: Vec<PathBuf>,
    app_url: Option<String>,
}

impl Advisor {
    fn new(resolver: &Resolver) -> Advisor {
        let mut migrate: Vec<PathBuf> = resolver
            .netrc_files()
            .iter()
            .map(|f| f.path().to_path_buf())
            .collect();
        migrate.extend(
            resolver
                .settings()
                .files()
                .iter()
                .map(|f| f.path().to_path_buf()),
        );
        let xdg = std::env::var("XDG_CONFIG_HOME").ok();
        Advisor {
            migrate,
            git_store: crate::git::store_file::default_paths(resolver.env().home(), xdg.as_deref()),
            app_url: resolver.env().app_url().map(str::to_owned),
        }
    }

    /// `migrate` or `remove`, and the advice as a sentence.
    fn advice(&self, path: &Path, owner: &Owner) -> (&'static str, String) {
        let same = |list: &[PathBuf]| list.iter().any(|p| same_file(p, path));
        if owner.wandb.is_some() && same(&self.migrate) {
            return (
                "migrate",
                "run `wbl migrate`: it moves the key from this file into the keychain".to_owned(),
            );
        }
        if same(&self.git_store) {
            return (
                "migrate",
                "run `wbl migrate --git-credentials`: it moves git's credentials from this file \
                 into the keychain"
                    .to_owned(),
            );
        }
        let rotate = match &owner.wandb {
            Some(h) => format!(
                "rotate the key at {}",
                h.authorize_url(self.app_url.as_deref())
            ),
            None => format!("rotate the {} at {}", owner.field, owner.urls[0]),
        };
        let place = where_it_is(path);
        let advice = match place {
            Place::GitMetadata(repo) => format!(
                "remove it from the git repository's own files at {} (e.g. a remote URL: \
                 `git remote set-url`); {rotate} if the repository was copied elsewhere",
                repo.display()
            ),
            Place::GitTree(repo) => format!(
                "remove it; the file is in the git repository at {}: if it was ever committed \
                 and pushed, the key is in the history there, so {rotate}",
                repo.display()
            ),
            Place::WandbRun(run) => format!(
                "remove it; it is in the W&B run directory {}: if the run was synced, the \
                 server has a copy, so {rotate}",
                run.display()
            ),
            Place::Elsewhere => {
                format!(
                    "remove it (or replace it with `wbl exec`); if this file left this machine, {rotate}"
                )
            }
        };
        ("remove", printable(&advice).into_owned())
    }
}

/// Where a file sits, for the advice.
enum Place {
    /// Inside a `.git` directory (the repository's own files).
    GitMetadata(PathBuf),
    /// In a git working tree.
    GitTree(PathBuf),
    /// Inside a W&B run directory (`wandb/run-*`, `wandb/offline-run-*`).
    WandbRun(PathBuf),
    Elsewhere,
}

fn where_it_is(path: &Path) -> Place {
    for dir in path.ancestors().skip(1) {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == ".git" {
            return Place::GitMetadata(dir.parent().unwrap_or(dir).to_path_buf());
        }
        let parent_is_wandb = dir
            .parent()
            .and_then(|p| p.file_name())
            .is_some_and(|n| n == "wandb");
        if parent_is_wandb && (name.starts_with("run-") || name.starts_with("offline-run-")) {
            return Place::WandbRun(dir.to_path_buf());
        }
        if dir.join(".git").exists() {
            return Place::GitTree(dir.to_path_buf());
        }
    }
    Place::Elsewhere
}
