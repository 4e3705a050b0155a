//! The `openbao` check: can the configuration file be used (it parses, and no other user
//! could have changed it), and do the OpenBao servers its routes name answer, initialised and
//! unsealed? It asks each such server's `sys/health` (no token), on threads with one deadline;
//! it logs in to nothing and reads no secret.

use std::sync::Arc;

use super::{Ctx, Finding, TOOL_TIMEOUT, probe};
use crate::config::ServerConfig;
use crate::openbao::{BaoError, Client, HEALTH, Reason};

pub(crate) fn openbao(_ctx: &mut Ctx) -> Finding {
    // A file another user could have changed: the agent refuses it, and the fix is its
    // permissions, not its content.
    if let Some((file, _)) = crate::dirs::config_file()
        && let Ok(meta) = std::fs::metadata(&file)
        && let Err(e) = crate::ownership::check(&file, &meta)
    {
        return Finding::problem(
            format!(
                "{}: {}; the agent serves no key until it is fixed",
                file.display(),
                e.why()
            ),
            e.fix(),
        );
    }
    let config = match crate::config::load() {
        Err(e) => {
            return Finding::problem(
                format!("{e}; the agent serves no key until it is fixed"),
                "correct the file at the line named (docs/openbao.md shows its \
                 keys); the agent reads it again by itself",
            );
        }
        Ok(None) => {
            return Finding::ok("no configuration file: every host's key is in the keychain");
        }
        Ok(Some(c)) => c,
    };
    if config.routes.is_empty() {
        return Finding::ok(format!(
            "{} routes no host to OpenBao",
            config.file.display()
        ));
    }
    // The servers the routes name, once each, in file order, with the hosts routed to them.
    let mut servers: Vec<(Arc<ServerConfig>, Vec<String>)> = Vec::new();
    for route in &config.routes {
        let host = format!("{}://{}", route.protocol, route.host);
        match servers
            .iter_mut()
            .find(|(s, _)| s.name == route.server.name)
        {
            Some((_, hosts)) => hosts.push(host),
            None => servers.push((Arc::clone(&route.server), vec![host])),
        }
    }
    let probes: Vec<_> = servers
        .iter()
        .map(|(server, _)| {
            let server = Arc::clone(server);
            probe(move || Client::new(server).and_then(|c| c.health()))
        })
        .collect();
    let deadline = std::time::Instant::now() + TOOL_TIMEOUT;
    let mut up = Vec::new();
    let mut down = Vec::new();
    for ((server, hosts), rx) in servers.iter().zip(probes) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(Ok(())) => up.push(format!("`{}` ({})", server.name, server.address)),
            Ok(Err(e)) => down.push(format!("{e} (keys of {})", hosts.join(", "))),
            Err(_) => {
                let e = BaoError {
                    server: server.name.clone(),
                    address: server.address.clone(),
                    action: HEALTH.to_owned(),
                    reason: Reason::Unreachable(format!(
                        "no answer within {} s",
                        TOOL_TIMEOUT.as_secs()
                    )),
                };
                down.push(format!("{e} (keys of {})", hosts.join(", ")));
            }
        }
    }
    if down.is_empty() {
        Finding::ok(format!(
            "{} routed host(s); up and unsealed: {}",
            config.routes.len(),
            up.join(", ")
        ))
    } else {
        Finding::problem(
            down.join("; "),
            "start or unseal the server (`bao operator unseal`), or correct its `address` in \
             the configuration file; meanwhile the agent serves a cached key for at most \
             `stale_ttl`",
        )
    }
}
