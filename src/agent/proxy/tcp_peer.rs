//! Who is on the other end of a loopback TCP connection to a proxy, for the access log of a
//! refused request. A TCP peer has no `SO_PEERCRED`; on Linux the kernel still says who owns
//! the client's socket: `/proc/net/tcp` (and `tcp6`, where a v6 socket reaches 127.0.0.1 as
//! `::ffff:127.0.0.1`) lists each socket with its owner's uid and its inode, the client's
//! being the one whose local address is the client's and whose remote address is the proxy's.
//!
//! - Another user's socket: the entry names that uid, and no program (the agent may not look
//!   at another user's processes).
//! - The agent's own user's: the process is the one with `socket:[inode]` among its open
//!   files. Each candidate's `/proc/<pid>` is opened first and its files read through that
//!   handle, so the program named ([`crate::agent::caller::of_process`]) is the one that held
//!   the socket, or unknown if it has exited meanwhile. A socket shared by several processes
//!   (inherited over `fork`) is attributed to the first found.
//!
//! Bounded: a connection is identified once, on its first refused request; a proxy identifies
//! at most [`PER_SECOND`] connections a second (beyond, `unknown`); a lookup reads at most
//! [`MAX_LINES`] socket entries, [`MAX_PROCESSES`] processes and [`MAX_FILES`] open files.
//! Elsewhere than on Linux the caller is unknown.

// The parser is Linux's; elsewhere only its tests would use it.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::net::SocketAddr;

use crate::accesslog::Caller;

/// Connections a proxy identifies per second, at most; beyond, their caller is unknown.
pub(super) const PER_SECOND: u32 = 8;
/// Socket entries read from each of `/proc/net/tcp` and `tcp6`, at most.
pub(super) const MAX_LINES: usize = 65_536;
/// Processes looked at for the socket, at most.
pub(super) const MAX_PROCESSES: usize = 8_192;
/// Open files looked at for the socket, at most (over all processes).
pub(super) const MAX_FILES: usize = 65_536;

/// The process (or user) on the other end of the connection from `client` to the proxy at
/// `proxy`; blocking (reads `/proc`), never fails: what cannot be known is left out.
pub(super) fn identify(client: SocketAddr, proxy: SocketAddr) -> Caller {
    #[cfg(target_os = "linux")]
    {
        linux::identify(client, proxy)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (client, proxy);
        Caller::unknown()
    }
}

/// A per-proxy budget of [`PER_SECOND`] identifications a second.
pub(super) struct Budget(std::sync::Mutex<(std::time::Instant, u32)>);

impl Budget {
    pub(super) fn new() -> Budget {
        Budget(std::sync::Mutex::new((std::time::Instant::now(), 0)))
    }

    /// Takes one identification, if this second has any left.
    pub(super) fn take(&self) -> bool {
        let mut b = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        if now.duration_since(b.0) >= std::time::Duration::from_secs(1) {
            *b = (now, 0);
        }
        if b.1 >= PER_SECOND {
            return false;
        }
        b.1 += 1;
        true
    }
}

/// One socket of `/proc/net/tcp` or `tcp6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Socket {
    local: SocketAddr,
    remote: SocketAddr,
    uid: u32,
    /// 0 for a socket no process holds (`TIME_WAIT`, orphaned).
    inode: u64,
}

/// One line of `/proc/net/tcp` or `tcp6` (`sl local rem st tx:rx tr:when retrnsmt uid timeout
/// inode …`); `None` for the header or anything else. Addresses are hex of the kernel's
/// 32-bit words in this machine's byte order, ports plain hex.
fn parse_line(line: &str) -> Option<Socket> {
    let fields: Vec<&str> = line.split_ascii_whitespace().take(10).collect();
    if fields.len() < 10 || !fields[0].ends_with(':') {
        return None;
    }
    Some(Socket {
        local: parse_address(fields[1])?,
        remote: parse_address(fields[2])?,
        uid: fields[7].parse().ok()?,
        inode: fields[9].parse().ok()?,
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6); a v4-mapped IPv6 address is
/// given as the IPv4 address it maps.
fn parse_address(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |hex: &str| u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes);
    let ip: std::net::IpAddr = match ip.len() {
        8 => std::net::Ipv4Addr::from(word(ip)?).into(),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(ip.get(i * 8..i * 8 + 8)?)?);
            }
            let v6 = std::net::Ipv6Addr::from(bytes);
            v6.to_ipv4_mapped().map_or(v6.into(), Into::into)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The client's socket among `lines`: local address `client`, remote `proxy`.
fn find(
    lines: impl Iterator<Item = String>,
    client: SocketAddr,
    proxy: SocketAddr,
) -> Option<Socket> {
    lines
        .take(MAX_LINES)
        .filter_map(|l| parse_line(&l))
        .find(|s| s.local == client && s.remote == proxy)
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::BufRead;
    use std::net::SocketAddr;
    use std::os::fd::OwnedFd;

    use rustix::fs::{Mode, OFlags};

    use super::{MAX_FILES, MAX_PROCESSES, Socket, find};
    use crate::accesslog::{Caller, Check};
    use crate::agent::caller;

    pub(super) fn identify(client: SocketAddr, proxy: SocketAddr) -> Caller {
        let Some(socket) = socket(client, proxy) else {
            return Caller::unknown();
        };
        let mut who = Caller {
            uid: Some(socket.uid),
            check: Check::Socket,
            ..Caller::unknown()
        };
        if socket.uid != crate::sys::euid() || socket.inode == 0 {
            return who;
        }
        if let Some((pid, dir)) = holder(socket.inode, socket.uid) {
            who = caller::of_process(socket.uid, pid, &dir, Check::Socket);
        }
        who
    }

    /// The client's entry in `/proc/net/tcp`, else in `tcp6`.
    fn socket(client: SocketAddr, proxy: SocketAddr) -> Option<Socket> {
        ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|p| {
            let f = std::fs::File::open(p).ok()?;
            let lines = std::io::BufReader::new(f).lines().map_while(Result::ok);
            find(lines, client, proxy).filter(|s| s.inode != 0)
        })
    }

    /// The first process of `uid` holding the socket `inode`, with its `/proc/<pid>` handle
    /// (opened before its files were read).
    fn holder(inode: u64, uid: u32) -> Option<(u32, OwnedFd)> {
        let wanted = format!("socket:[{inode}]");
        let mut files = 0usize;
        let procs = std::fs::read_dir("/proc").ok()?;
        for entry in procs.take(MAX_PROCESSES).flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Some(dir) = caller::process_dir(pid) else {
                continue;
            };
            if !rustix::fs::fstat(&dir).is_ok_and(|st| st.st_uid == uid) {
                continue;
            }
            let Ok(fds) = rustix::fs::openat(
                &dir,
                "fd",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            ) else {
                continue;
            };
            let Ok(list) = rustix::fs::Dir::read_from(&fds) else {
                continue;
            };
            for e in list.flatten() {
                let name = e.file_name();
                if name.to_bytes().first() == Some(&b'.') {
                    continue;
                }
                files += 1;
                if files > MAX_FILES {
                    return None;
                }
                if rustix::fs::readlinkat(&fds, name, Vec::new())
                    .is_ok_and(|l| l.as_bytes() == wanted.as_bytes())
                {
                    return Some((pid, dir));
                }
            }
        }
        None
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn names_this_process_on_the_other_end_of_a_loopback_connection() {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (_s, client) = l.accept().unwrap();
            let who = identify(client, l.local_addr().unwrap());
            assert_eq!(who.uid, Some(crate::sys::euid()));
            assert_eq!(who.pid, Some(std::process::id()));
            let me = std::env::current_exe().unwrap();
            assert_eq!(who.exe.as_deref(), me.to_str());
            assert_eq!(who.check, Check::Socket);
            drop(c);
            // No such connection: unknown.
            let gone = identify("127.0.0.1:1".parse().unwrap(), l.local_addr().unwrap());
            assert_eq!(gone, Caller::unknown());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_and_garbage_are_no_socket() {
        assert_eq!(
            parse_line(
                "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
            ),
            None
        );
        assert_eq!(parse_line(""), None);
        assert_eq!(parse_line("0: zz:1 00:0 0A 0:0 0:0 0 0 0 1"), None);
        assert_eq!(parse_address("0100007F"), None);
        assert_eq!(parse_address("0100007F:XYZ"), None);
        assert_eq!(parse_address("00007F:0050"), None);
    }

    #[test]
    fn a_budget_runs_out_within_the_second() {
        let b = Budget::new();
        for _ in 0..PER_SECOND {
            assert!(b.take());
        }
        assert!(!b.take());
    }

    // The kernel prints its address words in the machine's byte order; these lines are from
    // a little-endian machine.
    #[cfg(target_endian = "little")]
    #[test]
    fn ipv4_and_v4_mapped_ipv6_lines_parse() {
        let v4 = "   3: 0100007F:D431 0100007F:9C41 01 00000000:00000000 00:00000000 00000000  1001        0 123456 1 0000000000000000 20 4 30 10 -1";
        let s = parse_line(v4).unwrap();
        assert_eq!(s.local, "127.0.0.1:54321".parse().unwrap());
        assert_eq!(s.remote, "127.0.0.1:40001".parse().unwrap());
        assert_eq!((s.uid, s.inode), (1001, 123456));
        let mapped = "   0: 0000000000000000FFFF00000100007F:D432 0000000000000000FFFF00000100007F:9C41 01 00000000:00000000 00:00000000 00000000  1000        0 777 1 0000000000000000 20 4 30 10 -1";
        let m = parse_line(mapped).unwrap();
        assert_eq!(m.local, "127.0.0.1:54322".parse().unwrap());
        assert_eq!((m.uid, m.inode), (1000, 777));
        let v6 = "   1: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 42 1 0000000000000000 100 0 0 10 0";
        let l = parse_line(v6).unwrap();
        assert_eq!(l.local, "[::1]:22".parse().unwrap());
        // The client's entry, not the proxy's side of the same connection.
        let server_side = "   4: 0100007F:9C41 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 654321 1 0000000000000000 20 4 30 10 -1";
        let lines = [server_side, v4].map(str::to_owned);
        let found = find(
            lines.into_iter(),
            "127.0.0.1:54321".parse().unwrap(),
            "127.0.0.1:40001".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(found.inode, 123456);
    }
}
