//! `wbl status`: is the agent running, which backend, which hosts have keys.

use serde::Serialize;

use crate::client::{AgentClient, connect_or_start};
use crate::dirs::RuntimePaths;

#[derive(Serialize)]
struct StatusJson {
    agent_running: bool,
    socket: String,
    agent: Option<AgentJson>,
    credentials: Vec<CredJson>,
}

#[derive(Serialize)]
struct AgentJson {
    pid: u32,
    version: String,
    protocol: u32,
    backend: String,
    backend_persistent: bool,
    uptime_secs: u64,
    cached_entries: u64,
    stored_entries: u64,
}

#[derive(Serialize)]
struct CredJson {
    url: String,
    username: String,
}

pub fn run(json: bool, start: bool) -> anyhow::Result<()> {
    let paths = RuntimePaths::from_env();
    let agent = if start {
        Some(connect_or_start(&paths)?)
    } else {
        AgentClient::connect(&paths).ok()
    };
    let mut out = StatusJson {
        agent_running: agent.is_some(),
        socket: paths.socket_display(),
        agent: None,
        credentials: Vec::new(),
    };
    if let Some(mut agent) = agent {
        let s = agent.status()?;
        out.credentials = agent
            .list()?
            .into_iter()
            .map(|c| CredJson {
                url: c.target.to_string(),
                username: c.username,
            })
            .collect();
        out.agent = Some(AgentJson {
            pid: s.pid,
            version: s.agent_version,
            protocol: s.protocol,
            backend: s.backend,
            backend_persistent: s.backend_persistent,
            uptime_secs: s.uptime_secs,
            cached_entries: s.cached_entries,
            stored_entries: s.stored_entries,
        });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    match &out.agent {
        Some(a) => {
            println!("agent:    running (pid {}, version {})", a.pid, a.version);
            println!("socket:   {}", out.socket);
            println!(
                "backend:  {}{}",
                a.backend,
                if a.backend_persistent {
                    ""
                } else {
                    " (keys do not survive a reboot)"
                }
            );
            if out.credentials.is_empty() {
                println!("keys:     none stored; run `wbl login`");
            } else {
                println!("keys:");
                for c in &out.credentials {
                    println!("  {} (user {})", c.url, c.username);
                }
            }
        }
        None => {
            println!("agent:    not running (socket {})", out.socket);
            println!("          it starts on the next `wbl login` or `wbl token`");
        }
    }
    Ok(())
}
