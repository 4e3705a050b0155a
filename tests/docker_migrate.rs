//! Plaintext registry logins in container tools' auth files (issue 28): `wbl doctor` flags the
//! `auths` entries of `~/.docker/config.json` and podman's `auth.json`, and `wbl migrate
//! --docker` moves them into the keychain (Secret Service) and names wbl their credential
//! helper, keeping every other field, the mode and anything it cannot move; then the real
//! `docker-credential-wbl get` hands them out.

#![cfg(target_os = "linux")]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use base64::Engine;
use common::*;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn wbl(w: &World, args: &[&str]) -> Output {
    let mut c = w.cmd(WBL);
    c.args(args)
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE");
    c.output().unwrap()
}

fn helper_get(w: &World, server: &str) -> Output {
    let mut c = w.cmd(DOCKER_HELPER);
    c.arg("get");
    run_with_stdin(c, server.as_bytes())
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
}

fn docker_config(w: &World) -> PathBuf {
    w.home().join(".docker/config.json")
}

fn podman_auth(w: &World) -> PathBuf {
    w.dir.path().join("run/containers/auth.json")
}

#[test]
fn doctor_flags_and_migrate_moves_plaintext_registry_logins() {
    let w = World::new(Backend::SecretService);
    let docker = docker_config(&w);
    std::fs::create_dir_all(docker.parent().unwrap()).unwrap();
    let docker_text = format!(
        "{{\n\t\"auths\": {{\n\t\t\"127.0.0.1:5000\": {{\n\t\t\t\"auth\": \"{}\",\n\t\t\t\"email\": \"alice@example.com\"\n\t\t}},\n\t\t\"quay.io/team\": {{\n\t\t\t\"auth\": \"{}\"\n\t\t}}\n\t}},\n\t\"psFormat\": \"table {{{{.ID}}}}\",\n\t\"credHelpers\": {{\n\t\t\"gcr.io\": \"gcloud\"\n\t}}\n}}\n",
        b64("alice:s3cret:with-colon"),
        b64("team:t0ken")
    );
    std::fs::write(&docker, &docker_text).unwrap();
    set_mode(&docker, 0o640);
    let podman = podman_auth(&w);
    std::fs::create_dir_all(podman.parent().unwrap()).unwrap();
    std::fs::write(
        &podman,
        format!(
            "{{\"auths\": {{\"registry.example.com\": {{\"auth\": \"{}\"}}}}}}",
            b64("bob:pw2")
        ),
    )
    .unwrap();

    // Doctor: a problem naming both logins, no secret in its output.
    let out = wbl(&w, &["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let c = check(&report, "docker-logins");
    assert_eq!(c["verdict"], "problem", "{c}");
    let detail = c["detail"].as_str().unwrap();
    assert!(
        detail.contains("127.0.0.1:5000 (user alice)")
            && detail.contains("registry.example.com (user bob)"),
        "{detail}"
    );
    assert!(c["fix"].as_str().unwrap().contains("wbl migrate --docker"));
    assert!(!stdout(&out).contains("s3cret") && !stdout(&out).contains("pw2"));

    // A dry run changes nothing.
    let out = ok(wbl(&w, &["migrate", "--docker", "--dry-run"]));
    assert!(
        stdout(&out).contains("would move: registry login 127.0.0.1:5000 (user alice)"),
        "{}",
        stdout(&out)
    );
    assert_eq!(std::fs::read_to_string(&docker).unwrap(), docker_text);

    let out = ok(wbl(&w, &["migrate", "--docker"]));
    let text = stdout(&out);
    assert!(
        text.contains("moved:  registry login 127.0.0.1:5000"),
        "{text}"
    );
    assert!(
        text.contains("moved:  registry login registry.example.com"),
        "{text}"
    );
    assert!(
        text.contains("quay.io/team: a login for one namespace"),
        "{text}"
    );

    // The files: no moved secret, wbl the helper, every other field kept, mode kept.
    let d = json(&docker);
    assert_eq!(
        d["auths"]["127.0.0.1:5000"]["auth"],
        serde_json::Value::Null
    );
    assert_eq!(d["auths"]["127.0.0.1:5000"]["email"], "alice@example.com");
    assert_eq!(d["auths"]["quay.io/team"]["auth"], b64("team:t0ken"));
    assert_eq!(d["psFormat"], "table {{.ID}}");
    assert_eq!(d["credHelpers"]["gcr.io"], "gcloud");
    assert_eq!(d["credHelpers"]["127.0.0.1:5000"], "wbl");
    let mode = std::fs::metadata(&docker).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let p = json(&podman);
    assert_eq!(
        p["auths"]["registry.example.com"]["auth"],
        serde_json::Value::Null
    );
    assert_eq!(p["credHelpers"]["registry.example.com"], "wbl");
    for f in [&docker, &podman] {
        let t = std::fs::read_to_string(f).unwrap();
        assert!(!t.contains(&b64("alice:s3cret:with-colon")) && !t.contains(&b64("bob:pw2")));
    }

    // The real helper hands them out, from the keychain.
    let out = ok(helper_get(&w, "127.0.0.1:5000"));
    assert_eq!(
        stdout(&out),
        "{\"ServerURL\":\"127.0.0.1:5000\",\"Username\":\"alice\",\"Secret\":\"s3cret:with-colon\"}\n"
    );
    let out = ok(helper_get(&w, "registry.example.com"));
    assert!(stdout(&out).contains("\"Username\":\"bob\",\"Secret\":\"pw2\""));
    assert_eq!(
        w.secret_tool_lookup("docker://127.0.0.1:5000", "alice")
            .as_deref(),
        Some("s3cret:with-colon")
    );

    // Doctor now: only the namespaced login, which no helper can take (a warning).
    let out = wbl(&w, &["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(check(&report, "docker-logins")["verdict"], "warning");

    // Again: nothing more to move, nothing changes.
    let before = std::fs::read_to_string(&docker).unwrap();
    ok(wbl(&w, &["migrate", "--docker"]));
    assert_eq!(std::fs::read_to_string(&docker).unwrap(), before);
    w.stop_agent();
}

/// Nothing is lost: a registry the keychain holds another login for stays in the file, and a
/// file that is not JSON is left byte for byte.
#[test]
fn migrate_docker_never_overwrites_or_loses_a_login() {
    let w = World::new(Backend::SecretService);
    let mut c = w.cmd(DOCKER_HELPER);
    c.arg("store");
    ok(run_with_stdin(
        c,
        br#"{"ServerURL":"127.0.0.1:5000","Username":"carol","Secret":"kept"}"#,
    ));
    let docker = docker_config(&w);
    std::fs::create_dir_all(docker.parent().unwrap()).unwrap();
    let text = format!(
        "{{\"auths\": {{\"127.0.0.1:5000\": {{\"auth\": \"{}\"}}}}}}",
        b64("alice:other")
    );
    std::fs::write(&docker, &text).unwrap();
    let bad = podman_auth(&w);
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    std::fs::write(&bad, "{\"auths\": {\"r\": {\"auth\": \"c2VjcmV0\"").unwrap();

    let out = ok(wbl(&w, &["migrate", "--docker"]));
    let out_text = stdout(&out);
    assert!(
        out_text.contains("the keychain already holds another login for it (user carol)"),
        "{out_text}"
    );
    assert!(out_text.contains("it is not valid JSON"), "{out_text}");
    assert!(!out_text.contains("c2VjcmV0"), "{out_text}");
    assert_eq!(std::fs::read_to_string(&docker).unwrap(), text);
    assert_eq!(
        std::fs::read_to_string(&bad).unwrap(),
        "{\"auths\": {\"r\": {\"auth\": \"c2VjcmV0\""
    );
    let out = ok(helper_get(&w, "127.0.0.1:5000"));
    assert!(stdout(&out).contains("\"Username\":\"carol\",\"Secret\":\"kept\""));
    w.stop_agent();
}
