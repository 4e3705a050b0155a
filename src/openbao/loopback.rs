//! Whose socket answers a plain-http connection to this machine. Before wbl sends anything
//! (a token, a password, a key) over plain http, the connection it will use is checked: its
//! peer must be a loopback address whose socket belongs to the user or to root. Another local
//! user can bind the port of a dropped `ssh -L` tunnel, and would then get the
//! `X-Vault-Token` of the next request.
//!
//! The check runs in [`CheckedTcp`], the connector that opens every plain-http connection of
//! an OpenBao client, on the connected socket itself: a connection ureq keeps in its pool was
//! checked when it was opened, and its peer cannot change. On Linux the owner is read from
//! `/proc/net/tcp` and `/proc/net/tcp6`: the server's side of this very connection (the row
//! whose local address is our peer and whose remote address is our socket), else the listening
//! socket(s) on the port. Where that cannot be read (other systems, or no row found) plain
//! http is refused unless the server's configuration says `insecure_loopback = true`.

use std::net::{IpAddr, SocketAddr, TcpStream};

use std::io::{Read, Write};

use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, Transport,
};

/// Why a plain-http connection was not used. Its text is the whole explanation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Another user's socket answers on the port.
    #[error(
        "refused to use plain http to {peer}: the port is held by {owner}, not by you or root, \
         so nothing was sent (another user may have taken the port of a dropped tunnel; \
         restart the tunnel once the port is free)"
    )]
    Owner { peer: SocketAddr, owner: String },
    /// Who listens could not be found out.
    #[error(
        "refused to use plain http to {peer}: who listens there cannot be checked ({why}); \
         use https, or set `insecure_loopback = true` for this server if no other user can \
         run programs on this machine"
    )]
    Unverifiable { peer: SocketAddr, why: String },
    /// `localhost` (or the like) led somewhere that is not a loopback address.
    #[error("refused to use plain http to {peer}: it is not a loopback address")]
    NotLoopback { peer: SocketAddr },
}

/// Checks the connected `stream` of a plain-http request. `insecure_loopback` allows a peer
/// whose owner cannot be found out (never one owned by another user).
pub fn check(stream: &TcpStream, insecure_loopback: bool) -> Result<(), Refusal> {
    let peer = stream.peer_addr().map_err(|e| Refusal::Unverifiable {
        peer: SocketAddr::from(([127, 0, 0, 1], 0)),
        why: format!("no peer address: {e}"),
    })?;
    let peer = canonical(peer);
    if !peer.ip().is_loopback() {
        return Err(Refusal::NotLoopback { peer });
    }
    let local = stream
        .local_addr()
        .map(canonical)
        .map_err(|e| Refusal::Unverifiable {
            peer,
            why: format!("no local address: {e}"),
        })?;
    let uids = match owners(local, peer) {
        Ok(uids) if !uids.is_empty() => uids,
        Ok(_) if insecure_loopback => return Ok(()),
        Err(_) if insecure_loopback => return Ok(()),
        Ok(_) => {
            return Err(Refusal::Unverifiable {
                peer,
                why: "no socket of this machine answers for it".into(),
            });
        }
        Err(why) => return Err(Refusal::Unverifiable { peer, why }),
    };
    let me = my_uid();
    match uids.into_iter().find(|&u| u != 0 && Some(u) != me) {
        None => Ok(()),
        Some(uid) => Err(Refusal::Owner {
            peer,
            owner: user_name(uid),
        }),
    }
}

/// An IPv4 address written as IPv6 (`::ffff:127.0.0.1`) as the IPv4 address.
fn canonical(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => a,
        },
        IpAddr::V4(_) => a,
    }
}

#[cfg(target_os = "linux")]
fn my_uid() -> Option<u32> {
    Some(crate::sys::euid())
}

/// Only asked once [`owners`] found uids, which it does on Linux only.
#[cfg(not(target_os = "linux"))]
fn my_uid() -> Option<u32> {
    None
}

/// `user `NAME` (uid N)`, or `uid N` when `/etc/passwd` does not name it.
fn user_name(uid: u32) -> String {
    let name = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let id: u32 = f.nth(1)?.parse().ok()?;
                (id == uid).then(|| name.to_owned())
            })
        });
    match name {
        Some(n) => format!("user `{n}` (uid {uid})"),
        None => format!("uid {uid}"),
    }
}

/// The uids of the socket(s) that answer `peer` for our socket `local`: the server's side of
/// this connection when the kernel lists it, else every listening socket that could have
/// accepted it. Empty when there is none.
#[cfg(target_os = "linux")]
fn owners(local: SocketAddr, peer: SocketAddr) -> Result<Vec<u32>, String> {
    let mut rows = Vec::new();
    let mut read_any = false;
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        match std::fs::read_to_string(file) {
            Ok(text) => {
                read_any = true;
                rows.extend(text.lines().filter_map(parse_row));
            }
            // No IPv6 in this kernel: tcp6 is absent.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read {file}: {e}")),
        }
    }
    if !read_any {
        return Err("/proc/net/tcp is missing".into());
    }
    Ok(owners_in(&rows, local, peer))
}

#[cfg(not(target_os = "linux"))]
fn owners(_local: SocketAddr, _peer: SocketAddr) -> Result<Vec<u32>, String> {
    Err("this system has no /proc/net/tcp".into())
}

/// One row of `/proc/net/tcp{,6}`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
struct Row {
    local: SocketAddr,
    remote: SocketAddr,
    state: u8,
    uid: u32,
}

/// `st` of a listening socket.
const LISTEN: u8 = 0x0A;

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn owners_in(rows: &[Row], local: SocketAddr, peer: SocketAddr) -> Vec<u32> {
    if let Some(r) = rows.iter().find(|r| r.local == peer && r.remote == local) {
        return vec![r.uid];
    }
    rows.iter()
        .filter(|r| {
            r.state == LISTEN
                && r.local.port() == peer.port()
                && (r.local.ip() == peer.ip() || r.local.ip().is_unspecified())
        })
        .map(|r| r.uid)
        .collect()
}

/// Parses one line of `/proc/net/tcp` or `/proc/net/tcp6`; `None` for the header.
/// `  0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000 0 4242 …`
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_row(line: &str) -> Option<Row> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 8 || !f[0].ends_with(':') {
        return None;
    }
    Some(Row {
        local: parse_addr(f[1])?,
        remote: parse_addr(f[2])?,
        state: u8::from_str_radix(f[3], 16).ok()?,
        uid: f[7].parse().ok()?,
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6). The kernel prints each 32-bit
/// word of the address as the number it is in memory, so the bytes come back with
/// `to_ne_bytes`; the port is printed as a number.
fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        Some(
            u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16)
                .ok()?
                .to_ne_bytes(),
        )
    };
    let ip = match ip.len() {
        8 => IpAddr::from(word(0)?),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::from(b)
        }
        _ => return None,
    };
    Some(canonical(SocketAddr::new(ip, port)))
}

/// Opens the TCP connection of a plain-http request and checks it ([`check`]) before ureq
/// may write to it; https requests are left to the connectors after it.
#[derive(Debug)]
pub struct CheckedTcp {
    pub insecure_loopback: bool,
}

impl Connector<()> for CheckedTcp {
    type Out = CheckedStream;

    fn connect(
        &self,
        details: &ConnectionDetails,
        _chained: Option<()>,
    ) -> Result<Option<CheckedStream>, ureq::Error> {
        if details.needs_tls() {
            return Ok(None);
        }
        let per_addr = details.timeout.not_zero().map(|d| *d);
        let mut last = None;
        let mut stream = None;
        for addr in &details.addrs {
            let tried = match per_addr {
                Some(t) => TcpStream::connect_timeout(addr, t),
                None => TcpStream::connect(addr),
            };
            match tried {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let stream = match (stream, last) {
            (Some(s), _) => s,
            (None, Some(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(ureq::Error::Timeout(ureq::Timeout::Connect));
            }
            (None, Some(e)) => return Err(ureq::Error::Io(e)),
            (None, None) => {
                return Err(ureq::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "the address resolves to nothing",
                )));
            }
        };
        if let Err(refusal) = check(&stream, self.insecure_loopback) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return Err(ureq::Error::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                refusal,
            )));
        }
        if details.config.no_delay() {
            let _ = stream.set_nodelay(true);
        }
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(CheckedStream { stream, buffers }))
    }
}

/// A plain-http connection that passed [`check`]. (ureq's own TCP transport cannot be built
/// from a socket opened elsewhere, so this is the same few lines: timeouts per read and write,
/// interrupted reads retried, a probe before the pool reuses it.)
#[derive(Debug)]
pub struct CheckedStream {
    stream: TcpStream,
    buffers: LazyBuffers,
}

/// The bound of one read or write, or the timeout error when none is left.
fn bound(t: NextTimeout) -> Result<Option<std::time::Duration>, ureq::Error> {
    if t.after.is_zero() {
        return Err(ureq::Error::Timeout(t.reason));
    }
    Ok(t.not_zero().map(|d| *d))
}

fn io_error(e: std::io::Error, t: NextTimeout) -> ureq::Error {
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            ureq::Error::Timeout(t.reason)
        }
        _ => ureq::Error::Io(e),
    }
}

impl Transport for CheckedStream {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let t = timeout.for_write();
        self.stream.set_write_timeout(bound(t)?)?;
        let output = &self.buffers.output()[..amount];
        (&self.stream).write_all(output).map_err(|e| io_error(e, t))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let t = timeout.for_read();
        let limit = bound(t)?;
        self.stream.set_read_timeout(limit)?;
        let started = std::time::Instant::now();
        let input = self.buffers.input_append_buf();
        let amount = loop {
            match (&self.stream).read(input) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                    let left = limit.map(|l| l.saturating_sub(started.elapsed()));
                    if left.is_some_and(|l| l.is_zero()) {
                        return Err(ureq::Error::Timeout(t.reason));
                    }
                    self.stream.set_read_timeout(left)?;
                }
                Err(e) => return Err(io_error(e, t)),
                Ok(n) => break n,
            }
        };
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        // Open when nothing is waiting to be read: no bytes nobody asked for, no EOF.
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let open = matches!(
            (&self.stream).read(&mut [0u8]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
        );
        open && self.stream.set_nonblocking(false).is_ok()
    }
}

/// The refusal inside a transport error, if that is what it is.
pub fn refusal_of(e: &ureq::Error) -> Option<&Refusal> {
    match e {
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref::<Refusal>(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:20DA 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 51234 1 0000000000000000 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0000000000000000 100 0 0 10 0
   2: 0100007F:20DA 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000  1001        0 51240 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:A1B2 0100007F:20DA 01 00000000:00000000 00:00000000 00000000  1000        0 51239 1 0000000000000000 20 4 30 10 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 7777 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000000000000:2328 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1002        0 8888 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:2328 0000000000000000FFFF00000100007F:C000 01 00000000:00000000 00:00000000 00000000  1003        0 9999 1 0000000000000000 20 4 30 10 -1
";

    fn rows() -> Vec<Row> {
        TCP.lines()
            .chain(TCP6.lines())
            .filter_map(parse_row)
            .collect()
    }

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn rows_are_parsed() {
        let rows = rows();
        assert_eq!(rows.len(), 7, "the headers are skipped");
        assert_eq!(
            rows[0],
            Row {
                local: a("127.0.0.1:8410"),
                remote: a("0.0.0.0:0"),
                state: LISTEN,
                uid: 1001
            }
        );
        assert_eq!(rows[4].local, a("[::1]:8080"));
        assert_eq!(rows[5].local, a("[::]:9000"));
        // An IPv4 address in tcp6 (a dual-stack socket) reads as IPv4.
        assert_eq!(rows[6].local, a("127.0.0.1:9000"));
        assert_eq!(rows[6].remote, a("127.0.0.1:49152"));
        assert_eq!(rows[6].uid, 1003);
    }

    #[test]
    fn bad_lines_are_skipped() {
        for l in [
            "",
            "garbage",
            "0: 0100007F:20DA",
            "0: 0100007F:ZZZZ 00000000:0000 0A x x x 5",
            "0: 0100:20DA 00000000:0000 0A x x x 5",
            "0: 0100007F:20DA 00000000:0000 0A x x x notauid",
        ] {
            assert_eq!(parse_row(l), None, "{l}");
        }
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn the_server_side_of_the_connection_names_the_owner() {
        let rows = rows();
        // Our socket 127.0.0.1:41394 connected to 127.0.0.1:8410: the server's side of it.
        assert_eq!(
            owners_in(&rows, a("127.0.0.1:41394"), a("127.0.0.1:8410")),
            vec![1001]
        );
        // Not found as a connection: the listening socket on the port.
        assert_eq!(
            owners_in(&rows, a("127.0.0.1:5"), a("127.0.0.1:8410")),
            vec![1001]
        );
        // A wildcard listener answers for loopback too.
        assert_eq!(
            owners_in(&rows, a("127.0.0.1:5"), a("127.0.0.1:22")),
            vec![0]
        );
        assert_eq!(owners_in(&rows, a("[::1]:5"), a("[::1]:8080")), vec![1000]);
        // A dual-stack connection: the row in tcp6, read as IPv4.
        assert_eq!(
            owners_in(&rows, a("127.0.0.1:49152"), a("127.0.0.1:9000")),
            vec![1003]
        );
        // Nobody listens.
        assert!(owners_in(&rows, a("127.0.0.1:5"), a("127.0.0.1:1")).is_empty());
    }

    #[test]
    fn refusals_name_the_owner_and_the_way_out() {
        let r = Refusal::Owner {
            peer: a("127.0.0.1:8210"),
            owner: "user `mallory` (uid 1001)".into(),
        };
        let t = r.to_string();
        assert!(
            t.contains("127.0.0.1:8210") && t.contains("`mallory`"),
            "{t}"
        );
        assert!(t.contains("nothing was sent"), "{t}");
        let t = Refusal::Unverifiable {
            peer: a("127.0.0.1:8210"),
            why: "this system has no /proc/net/tcp".into(),
        }
        .to_string();
        assert!(t.contains("insecure_loopback = true"), "{t}");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_listener_of_our_own_passes_the_check() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        assert_eq!(check(&s, false), Ok(()));
    }
}
