//! `docker-credential-wbl`: Docker's credential-helper protocol driven directly, then end to
//! end with real clients and a real registry from Debian's packages: `docker-registry` with
//! htpasswd (bcrypt) auth on 127.0.0.1, `skopeo` and `podman` with `credHelpers` pointing at
//! `wbl` in an auth file of the test's own. Everything lives in the test's temp dir: the
//! registry's storage, podman's storage (vfs) and the image pushed (an OCI layout made here);
//! the registry is stopped by pid. No network beyond loopback.

#![cfg(target_os = "linux")]

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// `docker-credential-wbl <args>` with `input` on stdin.
fn helper(w: &World, args: &[&str], input: &str) -> Output {
    let mut c = w.cmd(DOCKER_HELPER);
    c.args(args);
    run_with_stdin(c, input.as_bytes())
}

/// A failure as the helpers report it: exit 1 and one line of text on stdout.
fn fails_with(out: &Output, message: &str) {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stdout(out).trim_end(), message, "{out:?}");
}

#[test]
fn the_helper_protocol() {
    let w = World::new(Backend::SecretService);
    let store = |json: &str| helper(&w, &["store"], json);
    let get = |url: &str| helper(&w, &["get"], url);

    // A miss: the exact message clients compare, on stdout, exit 1.
    fails_with(
        &get("127.0.0.1:5000"),
        "credentials not found in native keychain",
    );

    ok(store(
        r#"{"ServerURL":"127.0.0.1:5000","Username":"alice","Secret":"s3cret!"}"#,
    ));
    let out = ok(get("127.0.0.1:5000\n"));
    assert_eq!(
        stdout(&out),
        "{\"ServerURL\":\"127.0.0.1:5000\",\"Username\":\"alice\",\"Secret\":\"s3cret!\"}\n"
    );
    // The same registry by another spelling; another port is another registry.
    let out = ok(get("https://127.0.0.1:5000/"));
    assert!(stdout(&out).contains("\"Secret\":\"s3cret!\""), "{out:?}");
    fails_with(
        &get("127.0.0.1:5001"),
        "credentials not found in native keychain",
    );

    // An identity token: the `<token>` user name, kept as it is.
    ok(store(
        r#"{"ServerURL":"https://index.docker.io/v1/","Username":"<token>","Secret":"id-token"}"#,
    ));
    let out = ok(get("https://index.docker.io/v1/"));
    let answer: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(answer["Username"], "<token>");
    assert_eq!(answer["Secret"], "id-token");

    // Logging in as another user replaces the registry's credential.
    ok(store(
        r#"{"ServerURL":"127.0.0.1:5000","Username":"bob","Secret":"b0b"}"#,
    ));
    let out = ok(get("127.0.0.1:5000"));
    assert!(stdout(&out).contains("\"Username\":\"bob\""), "{out:?}");

    // list: registries only (not git's credentials), as {"<ServerURL>":"<Username>"}.
    let mut git = w.cmd(GIT_HELPER);
    git.arg("store");
    ok(run_with_stdin(
        git,
        b"protocol=https\nhost=git.example\nusername=g\npassword=gitpw\n",
    ));
    let out = ok(helper(&w, &["list"], ""));
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        list,
        serde_json::json!({"127.0.0.1:5000": "bob", "https://index.docker.io/v1/": "<token>"})
    );
    // and git is never handed a registry password.
    let mut git = w.cmd(GIT_HELPER);
    git.arg("get");
    let out = ok(run_with_stdin(
        git,
        b"protocol=https\nhost=127.0.0.1:5000\n",
    ));
    assert_eq!(stdout(&out), "");

    // erase, then a miss; erasing again is a miss too.
    ok(helper(&w, &["erase"], "127.0.0.1:5000"));
    fails_with(
        &get("127.0.0.1:5000"),
        "credentials not found in native keychain",
    );
    fails_with(
        &helper(&w, &["erase"], "127.0.0.1:5000"),
        "credentials not found in native keychain",
    );

    // Bad input: the helpers' messages, never the secret.
    fails_with(&get(""), "no credentials server URL");
    fails_with(
        &store(r#"{"ServerURL":"","Username":"u","Secret":"x"}"#),
        "no credentials server URL",
    );
    fails_with(
        &store(r#"{"ServerURL":"h.example","Username":"","Secret":"x"}"#),
        "no credentials username",
    );
    fails_with(&get("ftp://h.example"), "unsupported scheme: ftp");
    let out = store(r#"{"ServerURL":"h.example","Username":"u","Secret":12345678}"#);
    assert_eq!(out.status.code(), Some(1));
    assert!(!stdout(&out).contains("12345678"), "{out:?}");
    let out = store("not json hunter2");
    assert_eq!(out.status.code(), Some(1));
    assert!(!stdout(&out).contains("hunter2"), "{out:?}");

    // Arguments, as `credentials.Serve`: exactly one; usage on stdout.
    let out = helper(&w, &[], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("Usage: docker-credential-wbl"),
        "{out:?}"
    );
    let out = ok(helper(&w, &["version"], ""));
    assert!(
        stdout(&out).starts_with("docker-credential-wbl (wbl) "),
        "{out:?}"
    );
    fails_with(
        &helper(&w, &["frobnicate"], ""),
        "docker-credential-wbl: unknown action: frobnicate",
    );
    assert!(w.files_containing("s3cret!").is_empty());
}

/// A free TCP port on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `docker-registry` with htpasswd auth on 127.0.0.1, storage in `dir`; stopped by pid.
struct Registry {
    child: Child,
    addr: String,
}

impl Registry {
    fn start(dir: &Path, user: &str, password: &str) -> Registry {
        std::fs::create_dir_all(dir).unwrap();
        // bcrypt, the password on stdin (not on a command line).
        let mut htpasswd = Command::new("htpasswd");
        htpasswd
            .args(["-B", "-i", "-c"])
            .arg(dir.join("htpasswd"))
            .arg(user);
        ok(run_with_stdin(htpasswd, password.as_bytes()));
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {addr}\n  secret: test-only-secret\nauth:\n  htpasswd:\n    realm: test\n    path: {}\n",
            dir.join("data").display(),
            dir.join("htpasswd").display()
        );
        std::fs::write(dir.join("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("registry.log")).unwrap())
            .spawn()
            .expect("docker-registry must be installed (scripts/install-test-deps)");
        let registry = Registry { child, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        let sock: SocketAddr = registry.addr.parse().unwrap();
        while TcpStream::connect_timeout(&sock, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the registry did not listen within 10 s: {}",
                std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        registry
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256(path: &Path) -> String {
    let out = ok(Command::new("sha256sum").arg(path).output().unwrap());
    stdout(&out).split_whitespace().next().unwrap().to_owned()
}

/// A one-layer image in an OCI layout at `dir`, tagged `v1`.
fn oci_layout(dir: &Path) -> PathBuf {
    let layout = dir.join("layout");
    let blobs = layout.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let src = dir.join("layer-src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("hello.txt"), "hello from wbl\n").unwrap();
    let tar = dir.join("layer.tar");
    ok(Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(&src)
        .arg("hello.txt")
        .output()
        .unwrap());
    let put = |path: &Path| -> (String, u64) {
        let digest = sha256(path);
        std::fs::copy(path, blobs.join(&digest)).unwrap();
        (digest, std::fs::metadata(path).unwrap().len())
    };
    let (layer, layer_size) = put(&tar);
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["sha256:{layer}"]}}}}"#
        ),
    )
    .unwrap();
    let (config_digest, config_size) = put(&config);
    let manifest = dir.join("manifest.json");
    std::fs::write(
        &manifest,
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{config_digest}","size":{config_size}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:{layer}","size":{layer_size}}}]}}"#
        ),
    )
    .unwrap();
    let (manifest_digest, manifest_size) = put(&manifest);
    std::fs::write(
        layout.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{manifest_digest}","size":{manifest_size},"annotations":{{"org.opencontainers.image.ref.name":"v1"}}}}]}}"#
        ),
    )
    .unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    layout
}

/// A container tool run in the world, with the helper on PATH and the test's auth file.
fn tool(w: &World, program: &str, auth: &Path) -> Command {
    let mut c = w.cmd(program);
    c.env("PATH", path_with_bins())
        .env("REGISTRY_AUTH_FILE", auth)
        .env("TMPDIR", w.dir.path());
    c
}

/// podman with its storage, run root and temp files in the world's dir (vfs: no overlay
/// mounts needed), no cgroup manager or event log of the machine.
fn podman(w: &World, auth: &Path) -> Command {
    let d = w.dir.path();
    let mut c = tool(w, "podman", auth);
    c.arg("--root")
        .arg(d.join("podman-root"))
        .arg("--runroot")
        .arg(d.join("podman-run"))
        .arg("--tmpdir")
        .arg(d.join("podman-tmp"))
        .args([
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "none",
        ]);
    c
}

#[test]
fn skopeo_and_podman_log_in_pull_and_log_out_through_wbl() {
    let w = World::new(Backend::SecretService);
    let password = "correct-horse-battery";
    let registry = Registry::start(&w.dir.path().join("registry"), "alice", password);
    let addr = registry.addr.clone();
    let auth = w.dir.path().join("auth.json");
    std::fs::write(&auth, format!(r#"{{"credHelpers":{{"{addr}":"wbl"}}}}"#)).unwrap();
    let image = format!("docker://{addr}/test/hello:v1");
    let layout = oci_layout(w.dir.path());

    // Without a login the registry refuses.
    let out = tool(&w, "skopeo", &auth)
        .args(["inspect", "--tls-verify=false", &image])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");

    // A wrong password: the login fails and nothing is stored.
    let mut c = tool(&w, "skopeo", &auth);
    c.args([
        "login",
        "--tls-verify=false",
        "-u",
        "alice",
        "--password-stdin",
        &addr,
    ]);
    let out = run_with_stdin(c, b"wrong-password");
    assert!(!out.status.success(), "{out:?}");
    fails_with(
        &helper(&w, &["get"], &addr),
        "credentials not found in native keychain",
    );

    // skopeo login stores through docker-credential-wbl; the auth file keeps no secret.
    let mut c = tool(&w, "skopeo", &auth);
    c.args([
        "login",
        "--tls-verify=false",
        "-u",
        "alice",
        "--password-stdin",
        &addr,
    ]);
    ok(run_with_stdin(c, password.as_bytes()));
    let out = ok(helper(&w, &["list"], ""));
    assert_eq!(stdout(&out).trim(), format!(r#"{{"{addr}":"alice"}}"#));
    assert!(
        w.secret_tool_lookup(&format!("docker://{addr}"), "alice")
            .is_some_and(|s| s == password),
        "the password is in gnome-keyring"
    );

    // Push (needs the stored password), then inspect and pull it back.
    ok(tool(&w, "skopeo", &auth)
        .arg("copy")
        .arg("--dest-tls-verify=false")
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(&image)
        .output()
        .unwrap());
    let out = ok(tool(&w, "skopeo", &auth)
        .args(["inspect", "--tls-verify=false", &image])
        .output()
        .unwrap());
    assert!(stdout(&out).contains("\"v1\""), "{}", stdout(&out));
    let pulled = format!("{addr}/test/hello:v1");
    ok(podman(&w, &auth)
        .args(["pull", "--quiet", "--tls-verify=false", &pulled])
        .output()
        .unwrap());
    let out = ok(podman(&w, &auth)
        .args(["login", "--get-login", "--tls-verify=false", &addr])
        .output()
        .unwrap());
    assert_eq!(stdout(&out).trim(), "alice");

    // podman logout erases through the helper; then the registry refuses again.
    ok(podman(&w, &auth).args(["logout", &addr]).output().unwrap());
    assert_eq!(stdout(&ok(helper(&w, &["list"], ""))).trim(), "{}");
    let out = tool(&w, "skopeo", &auth)
        .args(["inspect", "--tls-verify=false", &image])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");

    // podman login stores again; a stale password in the keychain is refused by the registry.
    let mut c = podman(&w, &auth);
    c.args([
        "login",
        "--tls-verify=false",
        "-u",
        "alice",
        "--password-stdin",
        &addr,
    ]);
    ok(run_with_stdin(c, password.as_bytes()));
    ok(tool(&w, "skopeo", &auth)
        .args(["inspect", "--tls-verify=false", &image])
        .output()
        .unwrap());
    ok(helper(
        &w,
        &["store"],
        &format!(r#"{{"ServerURL":"{addr}","Username":"alice","Secret":"stale"}}"#),
    ));
    let out = tool(&w, "skopeo", &auth)
        .args(["inspect", "--tls-verify=false", &image])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    assert!(stderr(&out).contains("unauthorized"), "{}", stderr(&out));

    // No file of the world holds the password (the auth file names only the helper).
    let files = w.files_containing(password);
    assert!(files.iter().all(|f| f.ends_with("htpasswd")), "{files:?}");
    drop(registry);
}
