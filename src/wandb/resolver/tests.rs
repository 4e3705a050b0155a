//! Tests of the resolver: the resolution table, the host rule, netrc discovery and the inventory.

use super::*;
use std::collections::HashMap;
use std::path::Path;

use wbl_proto::{Account, Credential, Query, Target};

#[test]
fn a_stored_target_has_the_same_alias_as_its_host_url() {
    let alias = |t: Target| keychain_alias(&t).map(|a| a.to_string());
    for url in [
        "https://api.wandb.ai",
        "https://api.forge.coreweave.com",
        "https://api.qa.wandb.ai",
        "https://API.forge.coreweave.com",
        "https://api.wandb.ai:443",
        "https://example.com",
    ] {
        let host = HostUrl::parse(url).unwrap();
        let by_url = keychain_hosts(&host)
            .get(1)
            .map(|h| keychain_target(h).to_string());
        let target = keychain_target(&host);
        assert_eq!(alias(target), by_url, "{url}");
    }
    assert_eq!(
        alias(Target::new("https", "api.wandb.ai")).as_deref(),
        Some("https://api.forge.coreweave.com")
    );
    assert_eq!(alias(Target::new("http", "api.wandb.ai")), None);
    let mut with_path = Target::new("https", "api.wandb.ai");
    with_path.path = Some("repo.git".into());
    assert_eq!(alias(with_path), None);
}

fn env_in(dir: &Path) -> WandbEnv {
    WandbEnv {
        home: dir.join("home"),
        api_key: None,
        identity_token_file: None,
        base_url: None,
        app_url: None,
        config_dir: None,
        root_dir: dir.join("work"),
        netrc: None,
    }
}

fn tmp() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    }
}

fn write(p: &Path, text: &str) {
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).ok();
    }
    std::fs::write(p, text).ok();
}

fn host(s: &str) -> HostUrl {
    match HostUrl::parse(s) {
        Ok(h) => h,
        Err(e) => panic!("{s}: {e}"),
    }
}

/// The keychain as a map from `scheme://netloc` to key.
#[derive(Default)]
struct MapKeychain(HashMap<String, String>);

impl MapKeychain {
    fn get(&self, q: Query) -> anyhow::Result<Lookup> {
        Ok(match self.0.get(&q.target.to_string()) {
            Some(k) if k == ROUTED_MISS => Lookup::RoutedMiss(format!("{} routed", q.target)),
            Some(k) => Lookup::Found(Credential::new(
                q.target.clone(),
                WANDB_USER,
                Secret::new(k.clone()),
            )),
            None => Lookup::Missing,
        })
    }
}

/// A [`MapKeychain`] value: the host is routed to a store that has no key for it.
const ROUTED_MISS: &str = "<routed miss>";

#[test]
fn a_routed_host_is_never_answered_under_its_other_address() {
    let mut kc = MapKeychain::default();
    kc.0.insert("https://api.forge.coreweave.com".into(), K1.into());
    kc.0.insert("https://api.wandb.ai".into(), ROUTED_MISS.into());
    let cloud = host("https://api.wandb.ai");
    assert_eq!(
        keychain_key(&cloud, &Account::Any, |q| kc.get(q)).unwrap(),
        Lookup::RoutedMiss("https://api.wandb.ai routed".into())
    );
    // Not routed: the other address answers, as before.
    kc.0.remove("https://api.wandb.ai");
    assert!(matches!(
        keychain_key(&cloud, &Account::Any, |q| kc.get(q)).unwrap(),
        Lookup::Found((c, h)) if c.password.expose() == K1 && h.netloc() == "api.forge.coreweave.com"
    ));
    // The other address routed and missing: a plain miss for this one.
    let mut kc = MapKeychain::default();
    kc.0.insert("https://api.wandb.ai".into(), ROUTED_MISS.into());
    let forge = host("https://api.forge.coreweave.com");
    assert_eq!(
        keychain_key(&forge, &Account::Any, |q| kc.get(q)).unwrap(),
        Lookup::Missing
    );
}

const K1: &str = "1111111111111111111111111111111111111111";
const K2: &str = "2222222222222222222222222222222222222222";
const K3: &str = "3333333333333333333333333333333333333333";

fn entry(machine: &str, key: &str) -> String {
    format!("machine {machine}\n  login user\n  password {key}\n")
}

#[derive(Default)]
/// One world: files relative to the temp dir (`home/.netrc`, `work/wandb/settings`, …),
/// environment, keychain; the host asked for; the expected source detail and key.
struct Case {
    name: &'static str,
    files: Vec<(&'static str, String)>,
    netrc_env: Option<&'static str>,
    api_key_env: Option<&'static str>,
    base_url_env: Option<&'static str>,
    keychain: Vec<(&'static str, &'static str)>,
    host: Option<&'static str>,
    /// (source name, detail relative to the temp dir, key)
    want: Option<(&'static str, String, &'static str)>,
}

#[test]
fn resolution_table() {
    let forge = "api.forge.coreweave.com";
    let cases = vec![
        Case {
            name: "nothing anywhere",
            ..Case::default()
        },
        Case {
            name: "env wins over everything",
            files: vec![("home/.netrc", entry("api.wandb.ai", K2))],
            api_key_env: Some(K1),
            keychain: vec![("https://api.wandb.ai", K3)],
            want: Some(("env", "WANDB_API_KEY".into(), K1)),
            ..Case::default()
        },
        Case {
            name: "keychain before settings and netrc",
            files: vec![
                ("home/.netrc", entry("api.wandb.ai", K2)),
                (
                    "home/.config/wandb/settings",
                    format!("[default]\napi_key = {K1}\n"),
                ),
            ],
            keychain: vec![("https://api.wandb.ai", K3)],
            want: Some(("keychain", "stored for https://api.wandb.ai".into(), K3)),
            ..Case::default()
        },
        Case {
            name: "a key stored for Forge answers for the W&B host",
            keychain: vec![("https://api.forge.coreweave.com", K3)],
            want: Some((
                "keychain",
                "stored for https://api.forge.coreweave.com".into(),
                K3,
            )),
            ..Case::default()
        },
        Case {
            name: "a key stored for the W&B host answers for Forge",
            keychain: vec![("https://api.wandb.ai", K3)],
            host: Some("https://forge.coreweave.com/api/wandb"),
            want: Some(("keychain", "stored for https://api.wandb.ai".into(), K3)),
            ..Case::default()
        },
        Case {
            name: "the host's own key before its alias",
            keychain: vec![
                ("https://api.wandb.ai", K1),
                ("https://api.forge.coreweave.com", K2),
            ],
            host: Some("https://api.forge.coreweave.com"),
            want: Some((
                "keychain",
                "stored for https://api.forge.coreweave.com".into(),
                K2,
            )),
            ..Case::default()
        },
        Case {
            name: "no alias for another host",
            keychain: vec![("https://api.wandb.ai", K1)],
            host: Some("https://wandb.example"),
            ..Case::default()
        },
        Case {
            name: "workspace settings over global, before netrc",
            files: vec![
                ("home/.netrc", entry("api.wandb.ai", K3)),
                (
                    "home/.config/wandb/settings",
                    format!("[default]\napi_key = {K1}\n"),
                ),
                (
                    "work/wandb/settings",
                    format!("[default]\napi_key = {K2}\n"),
                ),
            ],
            want: Some(("settings", "work/wandb/settings (api_key)".into(), K2)),
            ..Case::default()
        },
        Case {
            name: "netrc: the last of repeated entries, as Python reads it",
            files: vec![(
                "home/.netrc",
                format!("{}{}", entry("api.wandb.ai", K1), entry("api.wandb.ai", K2)),
            )],
            want: Some(("netrc", "home/.netrc (machine api.wandb.ai)".into(), K2)),
            ..Case::default()
        },
        Case {
            name: "netrc written by SDK 0.31 (Forge) answers for wbl's default host",
            files: vec![("home/.netrc", entry(forge, K1))],
            want: Some(("netrc", format!("home/.netrc (machine {forge})"), K1)),
            ..Case::default()
        },
        Case {
            name: "the host's own entry before its alias's",
            files: vec![(
                "home/.netrc",
                format!("{}{}", entry(forge, K1), entry("api.wandb.ai", K2)),
            )],
            want: Some(("netrc", "home/.netrc (machine api.wandb.ai)".into(), K2)),
            ..Case::default()
        },
        Case {
            name: "Forge host reads its own entry",
            files: vec![("home/.netrc", entry(forge, K1))],
            host: Some("https://api.forge.coreweave.com"),
            want: Some(("netrc", format!("home/.netrc (machine {forge})"), K1)),
            ..Case::default()
        },
        Case {
            name: "Forge host falls back to the W&B host's entry",
            files: vec![("home/.netrc", entry("api.wandb.ai", K1))],
            host: Some("https://api.forge.coreweave.com"),
            want: Some(("netrc", "home/.netrc (machine api.wandb.ai)".into(), K1)),
            ..Case::default()
        },
        Case {
            name: "default entry before the Forge fallback, as Python's authenticators",
            files: vec![(
                "home/.netrc",
                format!(
                    "{}default login d password {K2}\n",
                    entry("api.wandb.ai", K1)
                ),
            )],
            host: Some("https://api.forge.coreweave.com"),
            want: Some(("netrc", "home/.netrc (default entry)".into(), K2)),
            ..Case::default()
        },
        Case {
            name: "~/_netrc when ~/.netrc does not exist",
            files: vec![("home/_netrc", entry("api.wandb.ai", K1))],
            want: Some(("netrc", "home/_netrc (machine api.wandb.ai)".into(), K1)),
            ..Case::default()
        },
        Case {
            name: "$NETRC wins over ~/.netrc",
            files: vec![
                ("home/.netrc", entry("api.wandb.ai", K1)),
                ("n", entry("api.wandb.ai", K2)),
            ],
            netrc_env: Some("n"),
            want: Some(("netrc", "n (machine api.wandb.ai)".into(), K2)),
            ..Case::default()
        },
        Case {
            name: "WANDB_BASE_URL picks the host",
            files: vec![(
                "home/.netrc",
                format!(
                    "{}{}",
                    entry("api.wandb.ai", K1),
                    entry("h.example:8080", K2)
                ),
            )],
            base_url_env: Some("http://h.example:8080/"),
            want: Some(("netrc", "home/.netrc (machine h.example:8080)".into(), K2)),
            ..Case::default()
        },
        Case {
            name: "settings base_url picks the host",
            files: vec![
                (
                    "home/.netrc",
                    format!("{}{}", entry("api.wandb.ai", K1), entry(forge, K2)),
                ),
                (
                    "home/.config/wandb/settings",
                    "[default]\nbase_url = https://forge.coreweave.com/api/wandb\n".into(),
                ),
            ],
            want: Some(("netrc", format!("home/.netrc (machine {forge})"), K2)),
            ..Case::default()
        },
    ];
    for c in cases {
        let d = tmp();
        let mut env = env_in(d.path());
        for (rel, text) in &c.files {
            write(&d.path().join(rel), text);
        }
        env.netrc = c.netrc_env.map(|n| d.path().join(n).display().to_string());
        env.api_key = c.api_key_env.map(Secret::from);
        env.base_url = c.base_url_env.map(str::to_owned);
        let r = Resolver::load(env);
        let h = match r.pick_host(c.host) {
            Ok(h) => h,
            Err(e) => panic!("{}: {e}", c.name),
        };
        let mut kc = MapKeychain::default();
        for (t, k) in &c.keychain {
            kc.0.insert((*t).to_owned(), (*k).to_owned());
        }
        let mut warnings = Vec::new();
        let stored = match keychain_key(&h, &Account::Any, |q| kc.get(q)) {
            Ok(Lookup::Found(found)) => Some(found),
            Ok(_) => None,
            Err(e) => panic!("{}: {e}", c.name),
        };
        let stored = stored.as_ref().map(|(c, h)| (&c.password, h));
        let got = match r.resolve(&h, stored, &mut warnings) {
            Ok(g) => g,
            Err(e) => panic!("{}: {e}", c.name),
        };
        let prefix = format!("{}/", d.path().display());
        let got = got.map(|g| {
            (
                g.source.name(),
                g.source.detail().replace(&prefix, ""),
                g.key.map(|k| k.expose().to_owned()).unwrap_or_default(),
            )
        });
        let want = c.want.map(|(s, d, k)| (s, d, k.to_owned()));
        assert_eq!(got, want, "{}", c.name);
        assert!(warnings.is_empty(), "{}: {warnings:?}", c.name);
    }
}

#[test]
fn host_rule_is_one_and_strict() {
    let d = tmp();
    let mut env = env_in(d.path());
    write(
        &env.home.join(".config/wandb/settings"),
        "[default]\nbase_url = https://global.example\n",
    );
    let r = Resolver::load(env.clone());
    assert_eq!(
        r.default_host().map(|(h, _)| h.to_string()),
        Ok("https://global.example".to_owned())
    );
    write(
        &env.root_dir.join("wandb/settings"),
        "[default]\nbase_url = https://local.example/\n",
    );
    let r = Resolver::load(env.clone());
    assert_eq!(
        r.default_host().map(|(h, _)| h.to_string()),
        Ok("https://local.example".to_owned())
    );
    env.base_url = Some("https://env.example".into());
    let r = Resolver::load(env.clone());
    assert_eq!(
        r.default_host().map(|(h, o)| (h.to_string(), o)),
        Ok(("https://env.example".to_owned(), HostOrigin::Env))
    );
    env.base_url = Some("https://wandb.ai".into());
    let r = Resolver::load(env.clone());
    assert_eq!(
            r.default_host().map(|(h, _)| h.to_string()),
            Err("WANDB_BASE_URL: 'https://wandb.ai' is not a valid server address, did you mean https://api.wandb.ai?".to_owned())
        );
    // The inventory ties a settings api_key to a host by the same rule: a bad one leaves
    // it alone (with a note) instead of guessing another host.
    write(
        &env.home.join(".config/wandb/settings"),
        &format!("[default]\napi_key = {K1}\n"),
    );
    let r = Resolver::load(env.clone());
    let (hosts, notes) = r.known_hosts();
    assert!(
        notes
            .iter()
            .any(|n| n.text.starts_with("WANDB_BASE_URL is not a valid host"))
    );
    let inv = r.inventory(&hosts);
    assert!(inv.keys().is_empty());
    assert!(
        inv.notes()
            .iter()
            .any(|n| n.text.contains("the host it is for is unclear")),
        "{:?}",
        inv.notes()
    );
}

#[test]
fn defaults_to_cloud_and_broken_files_warn() {
    let d = tmp();
    let env = env_in(d.path());
    write(&env.home.join(".config/wandb/settings"), "no section\n");
    let r = Resolver::load(env);
    assert!(r.settings().global().broken());
    assert_eq!(r.warnings().len(), 1);
    assert!(r.warnings()[0].starts_with("Error reading settings at "));
    assert_eq!(
        r.default_host().map(|(h, o)| (h.to_string(), o)),
        Ok(("https://api.wandb.ai".to_owned(), HostOrigin::Default))
    );
    assert!(r.settings().in_use().is_empty());
}

#[test]
fn known_hosts_include_forge_aliases() {
    let d = tmp();
    let mut env = env_in(d.path());
    env.base_url = Some("https://wandb.example".into());
    let r = Resolver::load(env);
    let (hosts, notes) = r.known_hosts();
    assert!(notes.is_empty());
    let names: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    assert_eq!(
        names,
        [
            "https://wandb.example",
            "https://api.wandb.ai",
            "https://api.forge.coreweave.com"
        ]
    );
}

#[test]
fn netrc_files_every_path_the_sdk_reads() {
    let d = tmp();
    let mut env = env_in(d.path());
    let r = Resolver::load(env.clone());
    let files: Vec<(PathBuf, bool)> = r
        .netrc_files()
        .into_iter()
        .map(|f| (f.path, f.sdk_reads))
        .collect();
    assert_eq!(
        files,
        [
            (env.home.join(".netrc"), true),
            (env.home.join("_netrc"), false)
        ]
    );
    env.netrc = Some(d.path().join("n").display().to_string());
    let r = Resolver::load(env.clone());
    let files: Vec<(PathBuf, bool)> = r
        .netrc_files()
        .into_iter()
        .map(|f| (f.path, f.sdk_reads))
        .collect();
    assert_eq!(
        files,
        [
            (d.path().join("n"), true),
            (env.home.join(".netrc"), false),
            (env.home.join("_netrc"), false)
        ]
    );
}

#[test]
fn inventory_finds_every_plaintext_key() {
    let d = tmp();
    let mut env = env_in(d.path());
    env.netrc = Some(d.path().join("n").display().to_string());
    write(
        &env.home.join(".netrc"),
        &format!(
            "{}{}{}machine other.example login u password p\ndefault login d password {K3}\n",
            entry("api.wandb.ai", K1),
            entry("api.forge.coreweave.com", K2),
            entry("api.wandb.ai", K3)
        ),
    );
    write(
        &env.home.join("_netrc"),
        &entry("api.forge.coreweave.com", "short"),
    );
    write(&d.path().join("n"), "machine x\nbogus\n");
    write(
        &env.root_dir.join("wandb/settings"),
        &format!("[default]\napi_key = {K1}\n"),
    );
    let r = Resolver::load(env.clone());
    let (hosts, _) = r.known_hosts();
    let inv = r.inventory(&hosts);
    let prefix = format!("{}/", d.path().display());
    let got: Vec<(String, String, bool, bool)> = inv
        .keys()
        .iter()
        .map(|k| {
            (
                k.place.to_string().replace(&prefix, ""),
                k.host.to_string(),
                k.shadowed,
                k.valid,
            )
        })
        .collect();
    let s = |x: &str| x.to_owned();
    assert_eq!(
        got,
        [
            (
                s("work/wandb/settings (api_key)"),
                s("https://api.wandb.ai"),
                false,
                true
            ),
            (
                s("home/.netrc (machine api.wandb.ai, line 1)"),
                s("https://api.wandb.ai"),
                true,
                true
            ),
            (
                s("home/.netrc (machine api.forge.coreweave.com, line 4)"),
                s("https://api.forge.coreweave.com"),
                false,
                true
            ),
            (
                s("home/.netrc (machine api.wandb.ai, line 7)"),
                s("https://api.wandb.ai"),
                false,
                true
            ),
            (
                s("home/_netrc (machine api.forge.coreweave.com, line 1)"),
                s("https://api.forge.coreweave.com"),
                false,
                false
            ),
        ]
    );
    assert!(inv.keys().iter().all(|k| k.links == 1));
    // $NETRC is the file the SDK reads; ~/.netrc and ~/_netrc only without it.
    assert!(
        inv.keys()
            .iter()
            .all(|k| k.read_now == matches!(k.place, Place::Settings { .. }))
    );
    let notes: Vec<String> = inv
        .notes()
        .iter()
        .map(|n| n.text.replace(&prefix, ""))
        .collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[0].starts_with("cannot read n: error on line 2"),
        "{notes:?}"
    );
    assert!(
        notes[1].starts_with("home/.netrc has a `default` entry (line 11)"),
        "{notes:?}"
    );
    // Hard links are counted.
    #[cfg(unix)]
    {
        std::fs::hard_link(env.home.join("_netrc"), d.path().join("link")).ok();
        let inv = Resolver::load(env).inventory(&hosts);
        assert_eq!(inv.keys().last().map(|k| k.links), Some(2));
    }
}

#[test]
fn api_key_in_settings() {
    let d = tmp();
    let env = env_in(d.path());
    write(
        &env.home.join(".config/wandb/settings"),
        "[default]\napi_key = G\n",
    );
    write(
        &env.root_dir.join("wandb/settings"),
        "[default]\napi_key =\n",
    );
    let r = Resolver::load(env);
    // An empty workspace value does not hide the global one.
    assert_eq!(r.settings().get("api_key").map(|(v, _)| v), Some("G"));
    assert_eq!(r.settings().api_key_files().len(), 1);
    assert_eq!(r.settings().in_use().len(), 2);
}

#[test]
fn netrc_warnings_like_the_sdk() {
    let d = tmp();
    let mut env = env_in(d.path());
    write(
        &env.home.join(".netrc"),
        "machine a login u password \"\"\n",
    );
    let r = Resolver::load(env.clone());
    let f = r.netrc_key(&host("https://a"));
    assert!(f.key.is_none());
    assert_eq!(
        f.warnings,
        vec![format!(
            "Found entry for machine 'a' with no API key at {}",
            env.home.join(".netrc").display()
        )]
    );
    // NETRC wins, even when missing.
    env.netrc = Some(d.path().join("n").display().to_string());
    let r = Resolver::load(env.clone());
    let f = r.netrc_key(&HostUrl::cloud());
    assert!(f.key.is_none() && f.warnings.is_empty());
    assert_eq!(f.path, d.path().join("n"));
    // A malformed file: warning with the line, counted as absent.
    write(
        &d.path().join("n"),
        "machine y login u password p\nbogus x\n",
    );
    let f = r.netrc_key(&host("https://x"));
    assert!(f.key.is_none());
    assert_eq!(f.warnings.len(), 1);
    assert!(
        f.warnings[0].starts_with(&format!(
            "Failed to read netrc file at {}, error on line 2: ",
            d.path().join("n").display()
        )),
        "{:?}",
        f.warnings
    );
}
