//! systemd user units: `wbl-agent.socket` (the socket, owned by systemd) and
//! `wbl-agent.service` (the agent, started on the first connection, `Type=notify`).
//!
//! The templates are the files in `systemd/`; rendering points `ExecStart=` at the installed
//! `wbl-agent` and, when `WBL_SOCKET` is set, moves the socket there for both units.

use std::path::{Path, PathBuf};

use super::{ServiceError, printable};

pub const SOCKET_UNIT: &str = "wbl-agent.socket";
pub const SERVICE_UNIT: &str = "wbl-agent.service";

/// The unit templates, as they are in the repository.
pub const SOCKET_TEMPLATE: &str = include_str!("../../systemd/wbl-agent.socket");
pub const SERVICE_TEMPLATE: &str = include_str!("../../systemd/wbl-agent.service");

/// The two rendered unit files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Units {
    pub socket: String,
    pub service: String,
}

/// Where user units go: `$XDG_CONFIG_HOME/systemd/user`, else `~/.config/systemd/user`.
pub fn user_unit_dir() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| crate::dirs::home_dir().map(|h| h.join(".config")))?;
    Some(config.join("systemd").join("user"))
}

/// The units for `agent` (an absolute path), listening on `socket` when given, else on the
/// default `%t/wbl/agent.sock` (`$XDG_RUNTIME_DIR/wbl/agent.sock`, where the agent looks too).
pub fn render(agent: &Path, socket: Option<&Path>) -> Result<Units, ServiceError> {
    let exec = format!("ExecStart={} --foreground", exec_arg(printable(agent)?));
    let mut service = replace_key(SERVICE_TEMPLATE, "ExecStart", &exec);
    let mut socket_unit = SOCKET_TEMPLATE.to_owned();
    if let Some(path) = socket {
        let path = printable(path)?;
        let listen = format!("ListenStream={}", specifiers(path));
        socket_unit = replace_key(&socket_unit, "ListenStream", &listen);
        let env = format!(
            "{exec}\nEnvironment={}",
            c_quote(&specifiers(&format!("WBL_SOCKET={path}")))
        );
        service = replace_key(&service, "ExecStart", &env);
    }
    Ok(Units {
        socket: socket_unit,
        service,
    })
}

/// Replaces every `key=…` line of `text` with `line`.
fn replace_key(text: &str, key: &str, line: &str) -> String {
    let prefix = format!("{key}=");
    let mut out = String::with_capacity(text.len() + line.len());
    for l in text.lines() {
        out.push_str(if l.starts_with(&prefix) { line } else { l });
        out.push('\n');
    }
    out
}

/// `%` starts a specifier in unit files; `%%` is a literal `%`.
fn specifiers(s: &str) -> String {
    s.replace('%', "%%")
}

/// A double-quoted string with C-style escapes, as unit files read it.
fn c_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One word of a command line: specifiers and `$` escaped, quoted when it has to be.
fn exec_arg(s: &str) -> String {
    let s = specifiers(s).replace('$', "$$");
    if s.contains(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';')) {
        c_quote(&s)
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{key}=")))
            .collect()
    }

    #[test]
    fn templates_have_the_documented_settings() {
        assert_eq!(
            line(SOCKET_TEMPLATE, "ListenStream"),
            ["ListenStream=%t/wbl/agent.sock"]
        );
        assert_eq!(line(SOCKET_TEMPLATE, "SocketMode"), ["SocketMode=0600"]);
        assert_eq!(
            line(SOCKET_TEMPLATE, "DirectoryMode"),
            ["DirectoryMode=0700"]
        );
        assert_eq!(line(SERVICE_TEMPLATE, "Type"), ["Type=notify"]);
        for key in [
            "NoNewPrivileges",
            "LockPersonality",
            "MemoryDenyWriteExecute",
        ] {
            assert_eq!(line(SERVICE_TEMPLATE, key), [format!("{key}=yes")]);
        }
        assert_eq!(
            line(SERVICE_TEMPLATE, "RestrictAddressFamilies"),
            ["RestrictAddressFamilies=AF_UNIX"]
        );
        // Options that need a user namespace would give the agent its own kernel keyring.
        for key in ["PrivateUsers", "PrivateTmp", "ProtectSystem", "ProtectHome"] {
            assert!(line(SERVICE_TEMPLATE, key).is_empty(), "{key}");
        }
    }

    #[test]
    fn exec_start_points_at_the_agent() {
        let u = render(Path::new("/opt/wbl/bin/wbl-agent"), None).unwrap();
        assert_eq!(
            line(&u.service, "ExecStart"),
            ["ExecStart=/opt/wbl/bin/wbl-agent --foreground"]
        );
        assert!(line(&u.service, "Environment").is_empty());
        assert_eq!(u.socket, SOCKET_TEMPLATE);
        // Only the ExecStart line changed.
        assert_eq!(u.service.lines().count(), SERVICE_TEMPLATE.lines().count());
    }

    #[test]
    fn awkward_paths_are_quoted_and_escaped() {
        let u = render(
            Path::new("/home/a b/100%/$x\\y\"/wbl-agent"),
            Some(Path::new("/run/a b/50%.sock")),
        )
        .unwrap();
        assert_eq!(
            line(&u.service, "ExecStart"),
            [r#"ExecStart="/home/a b/100%%/$$x\\y\"/wbl-agent" --foreground"#]
        );
        assert_eq!(
            line(&u.service, "Environment"),
            [r#"Environment="WBL_SOCKET=/run/a b/50%%.sock""#]
        );
        assert_eq!(
            line(&u.socket, "ListenStream"),
            ["ListenStream=/run/a b/50%%.sock"]
        );
    }

    #[test]
    fn unusable_paths_are_refused() {
        for bad in ["relative/wbl-agent", "/a\nExecStartPre=/bin/evil"] {
            let e = render(Path::new(bad), None).unwrap_err();
            assert!(matches!(e, ServiceError::BadPath { .. }), "{bad}: {e}");
        }
    }
}
