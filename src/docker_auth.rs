//! Plaintext registry logins in container tools' auth files: `docker login` (without a
//! credential helper) and `podman login` write `"auths": {"REGISTRY": {"auth": base64("user:
//! password")}}` into `~/.docker/config.json` or podman's `auth.json`. This finds those files
//! and the logins in them, and rewrites a file without the moved logins and with `wbl` as the
//! credential helper of their registries (`credHelpers`), keeping every other field as it was.
//! `wbl doctor` reports them; `wbl migrate --docker` moves them into the keychain.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{Map, Value};
use wbl_proto::Secret;
use zeroize::Zeroizing;

/// The helper name tools turn into `docker-credential-wbl`.
pub const HELPER: &str = "wbl";

/// The auth files docker, podman, skopeo and buildah read, existing or not, without
/// duplicates: `$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`),
/// `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json` and
/// `$XDG_CONFIG_HOME/containers/auth.json` (else `~/.config/containers/auth.json`).
pub fn auth_files(home: &Path) -> Vec<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let mut files = vec![
        var("DOCKER_CONFIG")
            .unwrap_or_else(|| home.join(".docker"))
            .join("config.json"),
    ];
    files.extend(var("REGISTRY_AUTH_FILE"));
    files.extend(var("XDG_RUNTIME_DIR").map(|d| d.join("containers/auth.json")));
    files.push(
        var("XDG_CONFIG_HOME")
            .unwrap_or_else(|| home.join(".config"))
            .join("containers/auth.json"),
    );
    let mut out: Vec<PathBuf> = Vec::new();
    for f in files {
        if !out
            .iter()
            .any(|o| *o == f || crate::wandb::fsutil::same_file(o, &f))
        {
            out.push(f);
        }
    }
    out
}

/// One plaintext login: the `auths` key as the tool wrote it, the user and the password.
pub struct Login {
    pub registry: String,
    pub username: String,
    pub secret: Secret,
}

/// What an auth file holds in plaintext, and the entries that cannot be moved (with why).
#[derive(Default)]
pub struct Found {
    pub logins: Vec<Login>,
    pub left: Vec<String>,
}

/// The plaintext logins of an auth file's text. An error (never quoting the text, which holds
/// secrets) when it is not a JSON object.
pub fn plaintext_logins(text: &str) -> Result<Found, String> {
    let root = parse(text)?;
    let mut found = Found::default();
    let Some(Value::Object(auths)) = root.get("auths") else {
        return Ok(found);
    };
    for (registry, entry) in auths {
        let Some(encoded) = entry.get("auth").and_then(Value::as_str) else {
            continue;
        };
        if encoded.is_empty() {
            continue;
        }
        let decoded = match base64::engine::general_purpose::STANDARD.decode(encoded.trim()) {
            Ok(d) => Zeroizing::new(d),
            Err(_) => {
                found
                    .left
                    .push(format!("{registry}: its `auth` is not base64 (left alone)"));
                continue;
            }
        };
        let Ok(text) = std::str::from_utf8(&decoded) else {
            found.left.push(format!(
                "{registry}: its `auth` is not UTF-8 text (left alone)"
            ));
            continue;
        };
        let Some((user, password)) = text.split_once(':') else {
            found.left.push(format!(
                "{registry}: its `auth` is not user:password (left alone)"
            ));
            continue;
        };
        // A namespaced login (podman's `quay.io/team`): tools ask a helper per registry, so
        // it cannot move to one without standing for the whole registry.
        match crate::docker::target(registry) {
            Ok(t) if t.path.is_none() => {}
            Ok(_) => {
                found.left.push(format!(
                    "{registry}: a login for one namespace; credential helpers are asked per \
                     registry, so it stays (log in again with `podman login {registry}` once \
                     `wbl` is the registry's helper)"
                ));
                continue;
            }
            Err(e) => {
                found.left.push(format!("{registry}: {e} (left alone)"));
                continue;
            }
        }
        found.logins.push(Login {
            registry: registry.clone(),
            username: user.to_owned(),
            secret: Secret::new(password.to_owned()),
        });
    }
    Ok(found)
}

/// `text` without the `auth` (and any plaintext `username`/`password` beside it) of the
/// registries in `moved`, and with `"credHelpers": {REGISTRY: "wbl"}` for each; every other
/// field stays, in its order. Written as the tools write it (tab-indented JSON).
pub fn without_logins(text: &str, moved: &[String]) -> Result<String, String> {
    let mut root = parse(text)?;
    if let Some(Value::Object(auths)) = root.get_mut("auths") {
        for registry in moved {
            if let Some(Value::Object(entry)) = auths.get_mut(registry) {
                for field in ["auth", "username", "password"] {
                    entry.remove(field);
                }
            }
        }
    }
    let helpers = root
        .entry("credHelpers")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(helpers) = helpers else {
        return Err("its `credHelpers` is not an object".to_owned());
    };
    for registry in moved {
        helpers.insert(registry.clone(), Value::String(HELPER.to_owned()));
    }
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(&Value::Object(root), &mut ser).map_err(|e| e.to_string())?;
    out.push(b'\n');
    String::from_utf8(out).map_err(|e| e.to_string())
}

fn parse(text: &str) -> Result<Map<String, Value>, String> {
    // serde_json's messages can quote the input: say only where it went wrong.
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("it is not a JSON object".to_owned()),
        Err(e) => Err(format!(
            "it is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn finds_logins_and_rewrites_keeping_the_rest() {
        let text = format!(
            "{{\"auths\": {{\"registry.example.com:5000\": {{\"auth\": \"{}\", \"email\": \"a@b\"}}, \
             \"quay.io/team\": {{\"auth\": \"{}\"}}, \"ghcr.io\": {{}}}}, \
             \"psFormat\": \"table\", \"credHelpers\": {{\"gcr.io\": \"gcloud\"}}}}",
            b64("alice:pa:ss"),
            b64("bob:x")
        );
        let found = plaintext_logins(&text).unwrap();
        assert_eq!(found.logins.len(), 1);
        assert_eq!(found.logins[0].registry, "registry.example.com:5000");
        assert_eq!(found.logins[0].username, "alice");
        assert_eq!(found.logins[0].secret.expose(), "pa:ss");
        assert_eq!(found.left.len(), 1, "the namespaced login stays");
        let out = without_logins(&text, &["registry.example.com:5000".to_owned()]).unwrap();
        assert!(!out.contains(&b64("alice:pa:ss")), "{out}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["auths"]["registry.example.com:5000"]["email"], "a@b");
        assert_eq!(v["auths"]["quay.io/team"]["auth"], b64("bob:x"));
        assert_eq!(v["psFormat"], "table");
        assert_eq!(v["credHelpers"]["gcr.io"], "gcloud");
        assert_eq!(v["credHelpers"]["registry.example.com:5000"], "wbl");
        // The order of the fields is kept.
        assert!(out.find("auths").unwrap() < out.find("psFormat").unwrap());
    }

    #[test]
    fn bad_files_are_errors_without_their_text() {
        let Err(e) = plaintext_logins("{\"auths\": {\"r\": {\"auth\": \"c2VjcmV0\"") else {
            panic!("a truncated file parsed");
        };
        assert!(!e.contains("c2VjcmV0"), "{e}");
        assert!(plaintext_logins("[]").is_err());
        assert!(plaintext_logins("{}").unwrap().logins.is_empty());
    }
}
