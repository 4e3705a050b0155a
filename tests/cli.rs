//! The command line as a user meets it, through the real binaries: every subcommand's
//! `--help` has a one-line summary and an example; `wbl completions` prints scripts that the
//! real shells accept (and that complete); `wbl man` writes a page per subcommand that `groff`
//! renders without a warning.

#![cfg(target_os = "linux")]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use clap::{CommandFactory, ValueEnum};
use common::*;

/// Every subcommand path, depth first (`["agent", "install"]`, …), hidden ones included.
fn subcommands() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands() {
            let mut path = prefix.to_vec();
            path.push(sub.get_name().to_owned());
            out.push(path.clone());
            walk(sub, &path, out);
        }
    }
    let mut out = Vec::new();
    walk(&wbl::cli::Cli::command(), &[], &mut out);
    out
}

/// Checks one `--help` text: a one-line summary first, then an example that runs `program`.
fn assert_summary_and_example(what: &str, help: &str, program: &str) {
    let first = help.lines().next().unwrap_or("");
    assert!(!first.trim().is_empty(), "{what}: no summary:\n{help}");
    assert!(!first.starts_with("Usage:"), "{what}: no summary:\n{help}");
    let lines: Vec<&str> = help.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == "Example:" || *l == "Examples:")
        .unwrap_or_else(|| panic!("{what}: no example:\n{help}"));
    let example = lines.get(at + 1).copied().unwrap_or("");
    assert!(
        example.starts_with("  ") && example.contains(program),
        "{what}: the example does not run {program}:\n{help}"
    );
}

#[test]
fn every_subcommand_has_a_summary_and_an_example() {
    let paths = subcommands();
    // The tree is what we think it is (so the loop below cannot pass on an empty list).
    for expected in [
        vec!["doctor"],
        vec!["completions"],
        vec!["man"],
        vec!["agent", "install"],
        vec!["agent", "status"],
        vec!["setup-git"],
    ] {
        assert!(
            paths.contains(&expected.iter().map(|s| s.to_string()).collect()),
            "{expected:?}"
        );
    }
    assert!(paths.len() >= 17, "{paths:?}");
    let w = World::new(Backend::Keyutils);
    for path in &paths {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = ok(w.wbl(&args));
        assert_summary_and_example(&path.join(" "), &stdout(&out), "wbl");
        // The short help (-h) has the one-line summary and the example too.
        args.pop();
        args.push("-h");
        assert_summary_and_example(&path.join(" "), &stdout(&ok(w.wbl(&args))), "wbl");
    }
    assert_summary_and_example("wbl", &stdout(&ok(w.wbl(&["--help"]))), "wbl");
    let out = ok(w.cmd(AGENT).arg("--help").output().unwrap());
    assert_summary_and_example("wbl-agent", &stdout(&out), "wbl-agent");
}

#[test]
fn doctor_help_documents_the_exit_status_and_json_fields() {
    let w = World::new(Backend::Keyutils);
    let help = stdout(&ok(w.wbl(&["doctor", "--help"])));
    assert!(
        help.contains(
            "Exit status: 0 when no check finds a problem (warnings alone keep 0), 1 otherwise."
        ),
        "{help}"
    );
    for field in ["name", "title", "verdict", "ms", "detail", "fix", "healthy"] {
        assert!(help.contains(field), "{field}: {help}");
    }
    // Every check the report can contain is named in the long help.
    for name in wbl::doctor::check_names() {
        let what = match name {
            "dbus" => "session D-Bus",
            "secret-service" => "Secret Service",
            "keyutils" => "kernel keyring",
            "agent" => "the agent",
            "socket" => "socket modes",
            "backend" => "keychain backend",
            "service" => "systemd units or LaunchAgent",
            "openbao" => "OpenBao servers its routes name",
            "accounts" => "the accounts its bindings and defaults name",
            "access-log" => "access log",
            "netrc" => "netrc",
            "wandb-settings" => "settings api_key",
            "git-credentials" => "~/.git-credentials",
            "docker-logins" => "podman's auth.json",
            "wandb-api-key" => "WANDB_API_KEY",
            "git-helper" => "whether git asks wbl",
            other => panic!("check {other} is not described here"),
        };
        assert!(help.contains(what), "{name} ({what}): {help}");
    }
}

/// Runs `shell args… file`; panics with its output when it fails.
fn shell_ok(shell: &str, args: &[&str], file: &Path) -> String {
    let out = Command::new(shell)
        .args(args)
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{shell} must be installed (scripts/install-test-deps): {e}"));
    assert!(
        out.status.success(),
        "{shell} rejects the script: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

#[test]
fn completion_scripts_are_generated_and_accepted_by_the_shells() {
    let w = World::new(Backend::Keyutils);
    let dir = tempfile::tempdir().unwrap();
    let visible: Vec<String> = wbl::cli::Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_owned())
        .collect();
    for shell in clap_complete::Shell::value_variants() {
        let name = shell.to_possible_value().unwrap().get_name().to_owned();
        let out = ok(w.wbl(&["completions", &name]));
        let script = stdout(&out);
        assert!(stderr(&out).is_empty(), "{name}: {}", stderr(&out));
        assert!(script.len() > 2000, "{name}: {script}");
        for sub in &visible {
            assert!(script.contains(sub.as_str()), "{name} lacks {sub}");
        }
        let file = dir.path().join(format!("wbl.{name}"));
        std::fs::write(&file, &script).unwrap();
        match name.as_str() {
            "bash" => {
                shell_ok("bash", &["-n"], &file);
            }
            "zsh" => {
                shell_ok("zsh", &["-n"], &file);
            }
            "fish" => {
                shell_ok("fish", &["--no-execute"], &file);
            }
            "powershell" => assert!(script.contains("Register-ArgumentCompleter"), "{script}"),
            "elvish" => assert!(
                script.contains("edit:completion:arg-completer[wbl]"),
                "{script}"
            ),
            other => panic!("no check for {other}"),
        }
    }

    // And they complete: bash and fish asked the way the shells ask at a <Tab>.
    let bash = dir.path().join("wbl.bash");
    let completes = |words: &str, cword: usize| {
        let script = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; _wbl wbl \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            bash.display()
        );
        let out = ok(Command::new("bash").args(["-c", &script]).output().unwrap());
        stdout(&out)
    };
    assert_eq!(completes("wbl do", 1), "doctor\n");
    assert_eq!(completes("wbl completions f", 2), "fish\n");
    let agent = completes("wbl agent ''", 2);
    for sub in ["install", "uninstall", "start", "stop", "status"] {
        assert!(agent.lines().any(|l| l == sub), "{agent}");
    }
    let fish = dir.path().join("wbl.fish");
    let out = ok(Command::new("fish")
        .args([
            "-c",
            &format!("source {}; complete -C 'wbl setup'", fish.display()),
        ])
        .output()
        .unwrap());
    assert!(
        stdout(&out).starts_with("setup-git\tConfigure git"),
        "{}",
        stdout(&out)
    );
    // Unknown shells are refused with the list.
    let out = w.wbl(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("[possible values: bash, elvish, fish, powershell, zsh]"));
}

#[test]
fn man_pages_cover_every_subcommand_and_render() {
    let w = World::new(Backend::Keyutils);
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man1");
    let out = ok(w.wbl(&["man", "--out", out_dir.to_str().unwrap()]));
    let mut expected = vec!["wbl.1".to_owned(), "wbl-agent.1".to_owned()];
    let cli = wbl::cli::Cli::command();
    for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
        if sub.get_name() == "agent" {
            for a in sub.get_subcommands() {
                expected.push(format!("wbl-agent-{}.1", a.get_name()));
            }
        } else {
            expected.push(format!("wbl-{}.1", sub.get_name()));
            // Other groups (`wbl openbao`) get a page per subcommand too.
            for a in sub.get_subcommands() {
                expected.push(format!("wbl-{}-{}.1", sub.get_name(), a.get_name()));
            }
        }
    }
    let mut written: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    expected.sort();
    assert_eq!(written, expected);
    assert_eq!(stdout(&out).lines().count(), expected.len());

    for page in &expected {
        let path = out_dir.join(page);
        let roff = std::fs::read_to_string(&path).unwrap();
        let name = page.trim_end_matches(".1");
        assert!(
            roff.contains(&format!(
                ".TH {name} 1  \"wbl {}\" \"wbl manual\"",
                env!("CARGO_PKG_VERSION")
            )),
            "{page}: {roff}"
        );
        // groff renders it, without a single warning (-ww), to plain text (no overstrike).
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-P-cbou"])
            .arg(&path)
            .output()
            .expect("groff must be installed (groff-base, scripts/install-test-deps)");
        assert!(out.status.success(), "{page}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{page}: groff warned");
        let text = String::from_utf8_lossy(&out.stdout).replace("\u{2010}", "-");
        assert!(text.contains("NAME"), "{page}");
        assert!(text.contains("Example"), "{page}: no example: {text}");
        assert!(text.contains(&format!("{name}(1)")), "{page}: {text}");
    }
    // wbl.1 points at every subcommand's page; wbl-agent.1 documents the program and the
    // `wbl agent` subcommands.
    let roff = std::fs::read_to_string(out_dir.join("wbl.1")).unwrap();
    for page in expected.iter().filter(|p| {
        !p.starts_with("wbl-agent-")
            && !p.starts_with("wbl-openbao-")
            && !p.starts_with("wbl-keyring-")
            && *p != "wbl.1"
    }) {
        let reference = format!("{}({})", page.trim_end_matches(".1"), 1).replace('-', "\\-");
        assert!(roff.contains(&reference), "wbl.1 lacks {reference}");
    }
    let openbao = std::fs::read_to_string(out_dir.join("wbl-openbao.1")).unwrap();
    assert!(openbao.contains("wbl\\-openbao\\-login(1)"), "{openbao}");
    let keyring = std::fs::read_to_string(out_dir.join("wbl-keyring.1")).unwrap();
    assert!(keyring.contains("wbl\\-keyring\\-unlock(1)"), "{keyring}");
    let agent = std::fs::read_to_string(out_dir.join("wbl-agent.1")).unwrap();
    assert!(agent.contains("\\-\\-idle\\-exit"), "{agent}");
    assert!(agent.contains("MANAGING IT WITH wbl agent"), "{agent}");
    for sub in ["install", "uninstall", "start", "stop", "status"] {
        assert!(
            agent.contains(&format!("wbl\\-agent\\-{sub}(1)")),
            "{sub}: {agent}"
        );
    }
    // man(1) itself finds and shows a page by name from that directory.
    let out = Command::new("man")
        .env("MANPATH", dir.path())
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .arg("wbl-doctor")
        .stdin(Stdio::null())
        .output()
        .expect("man must be installed (man-db)");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("wbl doctor --json"),
        "{}",
        stdout(&out)
    );
}

/// Layering (ARCHITECTURE.md): `src/cmd/` is the binaries' only; `wbl doctor`'s checks take
/// what they share with the subcommands from the modules below them.
#[test]
fn doctor_does_not_import_the_subcommands() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/doctor");
    let mut offenders = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.contains("crate::cmd") || line.contains("super::super::cmd") {
                offenders.push(format!("{}:{}: {line}", path.display(), i + 1));
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}

/// Layering (ARCHITECTURE.md): the client and the agent never import each other; what they
/// share (the socket's path, the safe-directory rule, the wire) lives below both.
#[test]
fn client_and_agent_do_not_import_each_other() {
    let mut offenders = Vec::new();
    for (dir, forbidden) in [("src/client", "agent"), ("src/agent", "client")] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut files = vec![dir.with_extension("rs")];
        let mut dirs = vec![dir];
        while let Some(d) = dirs.pop() {
            for entry in std::fs::read_dir(&d).into_iter().flatten() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        for path in files.iter().filter(|p| p.is_file()) {
            let text = std::fs::read_to_string(path).unwrap();
            for (i, line) in text.lines().enumerate() {
                if line.contains(&format!("crate::{forbidden}"))
                    || line.contains(&format!("wbl::{forbidden}"))
                {
                    offenders.push(format!("{}:{}: {line}", path.display(), i + 1));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}
