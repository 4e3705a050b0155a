//! Which of a host's accounts the client uses, first match wins: `--account`, `WBL_ACCOUNT`,
//! the binding of the nearest directory (`[[bind]]` in config.toml, walking up from the working
//! directory), the host's default (`[default_account]`, `wbl switch`), else none chosen: the
//! agent answers with the host's only account, or an error naming them (`Account::Only`).
//! Also the words the commands use about a choice, and the edits `wbl bind`/`unbind`/`switch`
//! make to config.toml (with `toml_edit`, keeping the user's comments and order).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use wbl_proto::Account;

use crate::config::Config;
use crate::wandb::host::HostUrl;

/// The environment variable that chooses an account for every host.
pub const ENV: &str = "WBL_ACCOUNT";

/// Why an account was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    Flag,
    Env,
    /// `[[bind]]` of `dir` in `file` at `line`.
    Bound {
        dir: PathBuf,
        file: PathBuf,
        line: usize,
    },
    /// `[default_account]` in `file` at `line`.
    Default {
        file: PathBuf,
        line: usize,
    },
    /// Nothing chose one.
    Unchosen,
}

/// The account a command uses for a host, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub name: Option<String>,
    pub why: Why,
}

impl Choice {
    /// What the agent is asked for.
    pub fn account(&self) -> Account {
        match &self.name {
            Some(n) => Account::Named(n.clone()),
            None => Account::Only,
        }
    }

    /// Why, in words: "--account", "bound to ~/work in config.toml line 12", ….
    pub fn reason(&self) -> String {
        match &self.why {
            Why::Flag => "chosen with --account".into(),
            Why::Env => format!("chosen by {ENV}"),
            Why::Bound { dir, file, line } => {
                format!("bound to {} in {} line {line}", tilde(dir), tilde(file))
            }
            Why::Default { file, line } => format!(
                "the host's default (`wbl switch`) in {} line {line}",
                tilde(file)
            ),
            Why::Unchosen => "the host's only account (none chosen)".into(),
        }
    }

    /// The error for a named account the host does not have.
    pub fn missing(&self, host: &HostUrl) -> anyhow::Error {
        let name = self.name.as_deref().unwrap_or_default();
        anyhow::anyhow!(
            "there is no account `{name}` for {} ({}); store its key with `wbl login --account \
             {name}{}`, or see `wbl accounts`",
            host.as_str(),
            self.reason(),
            host_flag(host)
        )
    }
}

/// `path` with the home directory written `~`, as people read paths.
pub fn tilde(path: &Path) -> String {
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty())
        && let Ok(rest) = path.strip_prefix(&home)
    {
        if rest.as_os_str().is_empty() {
            return "~".into();
        }
        return format!("~/{}", rest.display());
    }
    path.display().to_string()
}

/// ` --host URL` for a host other than the W&B cloud, for hints.
pub fn host_flag(host: &HostUrl) -> String {
    if host.is_cloud() {
        String::new()
    } else {
        format!(" --host {host}")
    }
}

/// The ways to choose, for the error of several accounts and none chosen.
pub const HOW_TO_CHOOSE: &str = "choose one with `--account NAME`, `WBL_ACCOUNT=NAME`, `wbl \
                                 bind NAME` (for this directory) or `wbl switch NAME` (the \
                                 host's default); `wbl accounts` lists them";

/// Checks an account name given by the user.
pub fn checked_name(name: &str) -> anyhow::Result<&str> {
    match wbl_proto::account_name_problem(name) {
        Some(problem) => anyhow::bail!(problem),
        None => Ok(name),
    }
}

/// The account for `host` in the working directory: see the module doc.
pub fn choose(host: &HostUrl, flag: Option<&str>) -> anyhow::Result<Choice> {
    if let Some(name) = flag {
        checked_name(name)?;
        return Ok(Choice {
            name: Some(name.to_owned()),
            why: Why::Flag,
        });
    }
    if let Some(name) = std::env::var(ENV).ok().filter(|v| !v.is_empty()) {
        checked_name(&name).with_context(|| format!("in {ENV}"))?;
        return Ok(Choice {
            name: Some(name),
            why: Why::Env,
        });
    }
    let config = crate::config::load()?;
    let cwd = std::env::current_dir().ok();
    Ok(choose_in(config.as_ref(), host, cwd.as_deref()))
}

/// The configuration's choice for `host` in `cwd`: the binding of the nearest directory,
/// else the host's default, else none.
pub fn choose_in(config: Option<&Config>, host: &HostUrl, cwd: Option<&Path>) -> Choice {
    let unchosen = Choice {
        name: None,
        why: Why::Unchosen,
    };
    let Some(config) = config else {
        return unchosen;
    };
    if let Some(cwd) = cwd
        && let Some(b) = config
            .binds
            .iter()
            .filter(|b| b.host.as_str() == host.as_str() && cwd.starts_with(&b.dir))
            // The nearest directory; the later line among equals, as a later edit wins.
            .max_by_key(|b| (b.dir.components().count(), b.line))
    {
        return Choice {
            name: Some(b.account.clone()),
            why: Why::Bound {
                dir: b.dir.clone(),
                file: config.file.clone(),
                line: b.line,
            },
        };
    }
    if let Some(d) = config
        .default_accounts
        .iter()
        .find(|d| d.host.as_str() == host.as_str())
    {
        return Choice {
            name: Some(d.account.clone()),
            why: Why::Default {
                file: config.file.clone(),
                line: d.line,
            },
        };
    }
    unchosen
}

/// The configuration file `wbl bind`/`unbind`/`switch` edit, its text ("" when it does not
/// exist yet) and the parsed configuration (checked like every reader checks it).
fn open_for_edit() -> anyhow::Result<(PathBuf, String)> {
    let (file, explicit) = crate::dirs::config_file()
        .ok_or_else(|| anyhow::anyhow!("no configuration directory (set WBL_CONFIG)"))?;
    let text = read_for_edit(&file, explicit)?;
    Ok((file, text))
}

/// The text of `file` to edit, once it passed every reader's checks.
fn read_for_edit(file: &Path, must_exist: bool) -> anyhow::Result<String> {
    // The same rules as every reader: ownership, a regular file, and it must parse.
    crate::config::load_from(file, must_exist)?;
    match std::fs::read_to_string(file) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", file.display())),
    }
}

/// Writes `text` to `file` through a temporary file in the same directory (0600), after
/// checking it parses; the directory is made (0700) when missing.
fn save(file: &Path, text: &str) -> anyhow::Result<()> {
    crate::config::parse(file, text).context("the edited configuration would not parse")?;
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = dir.join(format!(
        ".{}.wbl-{}",
        file.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let written = (|| {
        use std::io::Write;
        let mut f = o.open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, file)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", file.display()));
    }
    Ok(())
}

fn parse_doc(file: &Path, text: &str) -> anyhow::Result<toml_edit::DocumentMut> {
    text.parse()
        .with_context(|| format!("cannot edit {}", file.display()))
}

/// `wbl bind`: under `dir`, use `account` for `host`; replaces a binding of the same directory
/// and host. Returns the file and whether a binding was replaced.
pub fn bind(dir: &Path, host: &HostUrl, account: &str) -> anyhow::Result<(PathBuf, bool)> {
    let (file, text) = open_for_edit()?;
    let (text, replaced) = bound(&file, &text, dir, host, account)?;
    save(&file, &text)?;
    Ok((file, replaced))
}

/// `text` with the binding of `dir` for `host` set to `account`; whether one was replaced.
fn bound(
    file: &Path,
    text: &str,
    dir: &Path,
    host: &HostUrl,
    account: &str,
) -> anyhow::Result<(String, bool)> {
    let mut doc = parse_doc(file, text)?;
    let dir_text = dir
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("{} is not valid UTF-8", dir.display()))?;
    let item = doc
        .entry("bind")
        .or_insert(toml_edit::Item::ArrayOfTables(Default::default()));
    let binds = item
        .as_array_of_tables_mut()
        .ok_or_else(|| anyhow::anyhow!("{}: `bind` is not a [[bind]] list", file.display()))?;
    let mut replaced = false;
    for t in binds.iter_mut() {
        if t.get("dir").and_then(|v| v.as_str()) == Some(dir_text)
            && t.get("host").and_then(|v| v.as_str()) == Some(host.as_str())
        {
            t["account"] = toml_edit::value(account);
            replaced = true;
        }
    }
    if !replaced {
        let mut t = toml_edit::Table::new();
        t["dir"] = toml_edit::value(dir_text);
        t["host"] = toml_edit::value(host.as_str());
        t["account"] = toml_edit::value(account);
        binds.push(t);
    }
    Ok((doc.to_string(), replaced))
}

/// `wbl unbind`: removes the bindings of exactly `dir` (for `host`, or every host); how many.
pub fn unbind(dir: &Path, host: Option<&HostUrl>) -> anyhow::Result<(PathBuf, usize)> {
    let (file, text) = open_for_edit()?;
    let (text, removed) = unbound(&file, &text, dir, host)?;
    if removed > 0 {
        save(&file, &text)?;
    }
    Ok((file, removed))
}

/// `text` without the bindings of exactly `dir` (for `host`, or every host); how many.
fn unbound(
    file: &Path,
    text: &str,
    dir: &Path,
    host: Option<&HostUrl>,
) -> anyhow::Result<(String, usize)> {
    let mut doc = parse_doc(file, text)?;
    let dir_text = dir.to_string_lossy();
    let mut removed = 0;
    if let Some(binds) = doc.get_mut("bind").and_then(|i| i.as_array_of_tables_mut()) {
        let before = binds.len();
        binds.retain(|t| {
            !(t.get("dir").and_then(|v| v.as_str()) == Some(&*dir_text)
                && host.is_none_or(|h| t.get("host").and_then(|v| v.as_str()) == Some(h.as_str())))
        });
        removed = before - binds.len();
        if binds.is_empty() {
            doc.remove("bind");
        }
    }
    Ok((doc.to_string(), removed))
}

/// `wbl switch`: `account` becomes `host`'s default.
pub fn switch(host: &HostUrl, account: &str) -> anyhow::Result<PathBuf> {
    let (file, text) = open_for_edit()?;
    let text = switched(&file, &text, host, account)?;
    save(&file, &text)?;
    Ok(file)
}

/// `text` with `account` as `host`'s default.
fn switched(file: &Path, text: &str, host: &HostUrl, account: &str) -> anyhow::Result<String> {
    let mut doc = parse_doc(file, text)?;
    let table = doc
        .entry("default_account")
        .or_insert(toml_edit::Item::Table(toml_edit::Table::new()))
        .as_table_like_mut()
        .ok_or_else(|| anyhow::anyhow!("{}: `default_account` is not a table", file.display()))?;
    table.insert(host.as_str(), toml_edit::value(account));
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &str) -> HostUrl {
        HostUrl::parse(s).unwrap()
    }

    #[test]
    fn the_nearest_binding_then_the_default() {
        let text = r#"
[default_account]
"https://api.wandb.ai" = "personal"

[[bind]]
dir = "/w"
host = "https://api.wandb.ai"
account = "work"

[[bind]]
dir = "/w/a/b"
host = "https://api.wandb.ai"
account = "team"

[[bind]]
dir = "/w/a/b/c"
host = "https://wandb.example.com"
account = "other"
"#;
        let config = crate::config::parse(Path::new("/c.toml"), text).unwrap();
        let cloud = host("https://api.wandb.ai");
        let at = |cwd: &str| choose_in(Some(&config), &cloud, Some(Path::new(cwd)));
        assert_eq!(at("/w/a/b/c/d").name.as_deref(), Some("team"));
        assert_eq!(
            at("/w/a/b/c/d").why,
            Why::Bound {
                dir: "/w/a/b".into(),
                file: "/c.toml".into(),
                line: 10
            }
        );
        assert_eq!(at("/w/a").name.as_deref(), Some("work"));
        // `/wx` is not under `/w`.
        assert_eq!(at("/wx").name.as_deref(), Some("personal"));
        assert!(matches!(at("/wx").why, Why::Default { line: 3, .. }));
        let other = host("https://wandb.example.com");
        let c = choose_in(Some(&config), &other, Some(Path::new("/w/a")));
        assert_eq!(c.why, Why::Unchosen);
        assert_eq!(c.account(), Account::Only);
    }

    #[test]
    fn edits_keep_the_users_comments_and_order() {
        let file = Path::new("/c.toml");
        let text = "# my wbl settings\n\n[[route]] # team keys\nhost = \"https://wandb.example.com\"\nstore = \"openbao.team\"\npath = \"p\" # the secret\n\n[openbao.team]\naddress = \"https://bao.example.com\"\nauth = \"token\"\n";
        let cloud = host("https://api.wandb.ai");
        let (t, replaced) = bound(file, text, Path::new("/w"), &cloud, "work").unwrap();
        assert!(!replaced);
        let (t, replaced) = bound(file, &t, Path::new("/w"), &cloud, "team").unwrap();
        assert!(replaced);
        let (t, _) = bound(file, &t, Path::new("/p"), &cloud, "personal").unwrap();
        let t = switched(file, &t, &cloud, "personal").unwrap();
        // Everything the user wrote is still there, in its place.
        assert!(t.starts_with(text.trim_end()), "{t}");
        let c = crate::config::parse(file, &t).unwrap();
        let binds: Vec<(&str, &str)> = c
            .binds
            .iter()
            .map(|b| (b.dir.to_str().unwrap(), b.account.as_str()))
            .collect();
        assert_eq!(binds, [("/w", "team"), ("/p", "personal")]);
        assert_eq!(c.default_accounts[0].account, "personal");
        let (t, n) = unbound(file, &t, Path::new("/w"), None).unwrap();
        assert_eq!(n, 1);
        let (t, n) = unbound(file, &t, Path::new("/p"), Some(&cloud)).unwrap();
        assert_eq!(n, 1);
        assert!(!t.contains("[[bind]]"), "{t}");
        assert!(t.starts_with(text.trim_end()), "{t}");
    }

    #[test]
    fn a_bad_account_name_in_the_file_names_the_line() {
        let text = "[[bind]]\ndir = \"/w\"\nhost = \"https://api.wandb.ai\"\naccount = \"a b\"\n";
        let e = crate::config::parse(Path::new("/c.toml"), text).unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        let e = crate::config::parse(
            Path::new("/c.toml"),
            "[[bind]]\ndir = \"rel\"\nhost = \"https://api.wandb.ai\"\naccount = \"a\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("absolute"), "{e}");
    }
}
