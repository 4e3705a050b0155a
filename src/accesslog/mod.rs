//! The access log: one JSON line for every `get`, `store` and `erase` the agent answered —
//! when, for which host and user name, the outcome, who asked (uid, pid, executable and three
//! parents) and through which channel. Never a secret, never a request body: an [`Entry`] has
//! no field that could hold one.
//!
//! The agent writes it ([`writer`], off the request path); `wbl log` and `wbl doctor` read it
//! ([`read`]). Where it lives is [`crate::dirs::access_log`].

pub mod read;
pub mod writer;

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Files kept besides the current one: `access.log.1` (newest) to `access.log.KEEP`.
pub const KEEP: u32 = 3;
/// The size at which `access.log` is rotated (`WBL_ACCESS_LOG_MAX_BYTES` overrides it).
pub const DEFAULT_MAX_BYTES: u64 = 4 * 1024 * 1024;
/// Environment variable overriding [`DEFAULT_MAX_BYTES`] (bytes).
pub const MAX_BYTES_ENV: &str = "WBL_ACCESS_LOG_MAX_BYTES";

/// What was asked. `Gap` is not a request: it records that entries were lost (the writer fell
/// behind, or the log could not be written for a while) and how many.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Get,
    Store,
    Erase,
    Gap,
    /// A request to a key-injecting proxy that it refused (`wbl exec --proxy`): the entry's
    /// `command` is the request's method and path, `code` why (`placeholder`, `path`,
    /// `ended`).
    Proxy,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Store => "store",
            Op::Erase => "erase",
            Op::Gap => "gap",
            Op::Proxy => "proxy",
        }
    }
}

/// How the agent answered.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A credential was returned, stored, or erased.
    Ok,
    /// Nothing matched.
    Miss,
    /// The agent declined the request (malformed, not allowed, shutting down).
    Refused,
    /// The keychain failed or did not answer in time.
    Error,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Miss => "miss",
            Outcome::Refused => "refused",
            Outcome::Error => "error",
        }
    }
}

/// Who received the key of a `get` answered `ok`, beside the caller: `None` (no `use` in
/// the entry) means the calling program itself (`wbl token` printing it, a helper handing it to
/// git or Docker).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Use {
    /// No program received it: wbl compared it or showed it masked (`wbl status`, `wbl login`
    /// looking for a stored key, git's erase comparing passwords). Not a hand-out.
    Check,
    /// `wbl exec`: the program in the entry's `command` received it in its environment.
    Exec,
    /// A key-injecting proxy (`--proxy`) holds it in the agent for the user in `command`
    /// (`exec:<program>`, `ssh:<destination>`): no program received it.
    Proxy,
}

impl Use {
    pub fn name(self) -> &'static str {
        match self {
            Use::Check => "check",
            Use::Exec => "exec",
            Use::Proxy => "proxy",
        }
    }
}

/// How the caller's process was identified.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// A pidfd of the connecting process (`SO_PEERPIDFD`) proved it was still the same
    /// process while its `/proc` entries were read.
    Pidfd,
    /// `SO_PEERCRED`'s pid, read through a `/proc/<pid>` handle whose process started before
    /// the connection was accepted (kernels without `SO_PEERPIDFD`).
    StartTime,
    /// A loopback TCP client of a key-injecting proxy: the owner of its socket as
    /// `/proc/net/tcp` lists it and, when that is the agent's own user, the process holding
    /// the socket, read through a `/proc/<pid>` handle opened before its open files were.
    Socket,
    /// Not identified beyond uid and pid (not Linux, or `/proc` unavailable).
    None,
}

/// One process of the caller's chain.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    /// The executable's path; `None` when it cannot be known (the process is gone, belongs to
    /// someone else, or its pid may have been reused).
    pub exe: Option<String>,
}

/// Who called: the process on the other end of a connection, as the agent identified it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub uid: Option<u32>,
    pub pid: Option<u32>,
    pub exe: Option<String>,
    /// Parent, grandparent, great-grandparent (nearest first); shorter when the chain ends or
    /// cannot be followed safely.
    pub parents: Vec<Process>,
    pub check: Check,
}

impl Caller {
    /// Nothing known (platforms without peer credentials).
    pub fn unknown() -> Caller {
        Caller {
            uid: None,
            pid: None,
            exe: None,
            parents: Vec::new(),
            check: Check::None,
        }
    }
}

/// The channel of a connection made on the agent's own socket.
pub const LOCAL_CHANNEL: &str = "local";

/// One line of the log. Every field is always written (`null` when unknown) except `dropped`,
/// which only a `gap` has, so scripts see one shape.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    pub op: Op,
    pub result: Option<Outcome>,
    /// The error code of a `refused` or `error` answer (`keychain_timeout`, …).
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    /// The user name asked for, or the one of the credential returned or stored.
    #[serde(default)]
    pub username: Option<String>,
    /// The account of a host's key asked for by name, handed out or stored (`default` is the
    /// key of user name `api`); `null` for a git credential asked for by user name.
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub pid: Option<u32>,
    #[serde(default)]
    pub exe: Option<String>,
    #[serde(default)]
    pub parents: Vec<Process>,
    #[serde(default)]
    pub check: Option<Check>,
    /// `local`, or the destination of a forward.
    #[serde(default)]
    pub channel: Option<String>,
    /// What the caller did with the key of a `get` (see [`Use`]); `null`: it was handed to
    /// the caller.
    #[serde(default, rename = "use")]
    pub purpose: Option<Use>,
    /// With `use` = `exec`: the program `wbl exec` ran with the key (its path as wbl resolved
    /// it; its arguments are never recorded).
    #[serde(default)]
    pub command: Option<String>,
    /// Only in a `gap`: how many entries are missing before this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped: Option<u64>,
}

/// What the agent hands to the writer for one answered request: cheap to build on the request
/// path (the caller is shared by every request of a connection); formatted on the writer's
/// thread.
#[derive(Debug, Clone)]
pub struct Event {
    pub time: SystemTime,
    pub op: Op,
    pub result: Outcome,
    pub code: Option<&'static str>,
    pub protocol: String,
    pub host: String,
    /// As recorded: masked when it looks like a token (`crate::text::username`).
    pub username: Option<String>,
    /// As recorded, masked like the user name.
    pub account: Option<String>,
    pub caller: std::sync::Arc<Caller>,
    pub channel: std::sync::Arc<str>,
    /// A `get`'s use of the key, and the program of a `wbl exec`.
    pub purpose: Option<Use>,
    pub command: Option<String>,
}

/// RFC 3339 in UTC with milliseconds: `2026-11-29T13:45:12.345Z`.
pub fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// The time of an entry, when it parses.
pub fn parse_time(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s).ok()
}

impl Entry {
    pub fn from_event(e: &Event) -> Entry {
        let c = &*e.caller;
        Entry {
            time: format_time(e.time),
            op: e.op,
            result: Some(e.result),
            code: e.code.map(str::to_owned),
            protocol: Some(e.protocol.clone()),
            host: Some(e.host.clone()),
            username: e.username.clone(),
            account: e.account.clone(),
            uid: c.uid,
            pid: c.pid,
            exe: c.exe.clone(),
            parents: c.parents.clone(),
            check: Some(c.check),
            channel: Some(e.channel.to_string()),
            purpose: e.purpose,
            command: e.command.clone(),
            dropped: None,
        }
    }

    /// The record of `count` lost entries.
    pub fn gap(time: SystemTime, count: u64) -> Entry {
        Entry {
            time: format_time(time),
            op: Op::Gap,
            result: None,
            code: None,
            protocol: None,
            host: None,
            username: None,
            account: None,
            uid: None,
            pid: None,
            exe: None,
            parents: Vec::new(),
            check: None,
            channel: None,
            purpose: None,
            command: None,
            dropped: Some(count),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    pub(crate) fn event(op: Op, result: Outcome) -> Event {
        Event {
            time: UNIX_EPOCH + Duration::from_millis(1_764_424_000_123),
            op,
            result,
            code: None,
            protocol: "https".into(),
            host: "api.wandb.ai".into(),
            username: Some("api".into()),
            account: Some("default".into()),
            caller: Arc::new(Caller {
                uid: Some(1000),
                pid: Some(42),
                exe: Some("/usr/bin/wbl".into()),
                parents: vec![Process {
                    pid: 41,
                    exe: Some("/usr/bin/git".into()),
                }],
                check: Check::Pidfd,
            }),
            channel: Arc::from(LOCAL_CHANNEL),
            purpose: None,
            command: None,
        }
    }

    #[test]
    fn entry_has_the_documented_fields() {
        let e = Entry::from_event(&event(Op::Get, Outcome::Ok));
        let v: serde_json::Value = serde_json::to_value(&e).unwrap();
        assert_eq!(v["time"], "2025-11-29T13:46:40.123Z");
        assert_eq!(v["op"], "get");
        assert_eq!(v["result"], "ok");
        assert_eq!(v["host"], "api.wandb.ai");
        assert_eq!(v["username"], "api");
        assert_eq!(v["pid"], 42);
        assert_eq!(v["exe"], "/usr/bin/wbl");
        assert_eq!(v["parents"][0]["pid"], 41);
        assert_eq!(v["parents"][0]["exe"], "/usr/bin/git");
        assert_eq!(v["channel"], "local");
        assert_eq!(v["check"], "pidfd");
        assert!(v.get("dropped").is_none());
        let back: Entry = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
        assert_eq!(
            parse_time(&back.time),
            Some(event(Op::Get, Outcome::Ok).time)
        );
    }

    #[test]
    fn a_gap_says_how_many_and_keeps_the_shape() {
        let v = serde_json::to_value(Entry::gap(UNIX_EPOCH, 7)).unwrap();
        assert_eq!(v["op"], "gap");
        assert_eq!(v["dropped"], 7);
        assert!(v["exe"].is_null() && v["host"].is_null() && v["result"].is_null());
    }

    #[test]
    fn lines_with_missing_optional_fields_still_parse() {
        let e: Entry =
            serde_json::from_str(r#"{"time":"2026-01-01T00:00:00Z","op":"erase","result":"miss"}"#)
                .unwrap();
        assert_eq!(e.op, Op::Erase);
        assert!(e.parents.is_empty() && e.exe.is_none());
    }
}
