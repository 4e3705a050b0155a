//! Which pid may be signalled: a pid is our agent only when it holds the pid file's lock,
//! runs as our user, and runs `wbl-agent`.

use super::RuntimePaths;

/// Checks that `pid` is the agent of `paths` before anything signals it: above 1, the holder
/// of the pid-file lock (the pid written there, and on Linux the holder `/proc/locks` names),
/// running as our user, from an executable named `wbl-agent`. The error says which check
/// failed.
pub fn verify_agent_pid(paths: &RuntimePaths, pid: u32) -> Result<(), String> {
    #[cfg(unix)]
    {
        verify_unix(paths, pid)
    }
    #[cfg(not(unix))]
    {
        let _ = paths;
        Err(format!("wbl does not signal processes here (pid {pid})"))
    }
}

#[cfg(unix)]
fn verify_unix(paths: &RuntimePaths, pid: u32) -> Result<(), String> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let Ok(raw) = i32::try_from(pid) else {
        return Err(format!("pid {pid} is out of range"));
    };
    if raw <= 1 {
        return Err(format!("pid {pid} is never an agent"));
    }
    let pidfile = paths.pidfile();
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&pidfile)
        .map_err(|e| format!("cannot open {}: {e}", pidfile.display()))?;
    match file.try_lock_shared() {
        Ok(()) => {
            return Err(format!(
                "no agent holds the lock on {}, so pid {pid} is not the agent",
                pidfile.display()
            ));
        }
        Err(std::fs::TryLockError::WouldBlock) => {}
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(format!(
                "cannot check the lock on {}: {e}",
                pidfile.display()
            ));
        }
    }
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    if text.trim().parse::<u32>().ok() != Some(pid) {
        return Err(format!(
            "pid {pid} is not the one in {} ({})",
            pidfile.display(),
            text.trim()
        ));
    }
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot inspect {}: {e}", pidfile.display()))?;
    if meta.uid() != crate::sys::euid() {
        return Err(format!("{} is not yours", pidfile.display()));
    }
    #[cfg(target_os = "linux")]
    {
        if let Some(holder) = super::proc_locks::flock_holder(meta.ino())
            && holder != pid
        {
            return Err(format!(
                "the lock on {} is held by pid {holder}, not {pid}",
                pidfile.display()
            ));
        }
    }
    #[cfg(any(target_os = "linux", target_os = "macos"))]
    {
        let owner = owner_of(pid)?;
        if owner != crate::sys::euid() {
            return Err(format!("pid {pid} runs as uid {owner}, not as you"));
        }
        let exe = exe_of(pid)?;
        let name = exe
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.starts_with("wbl-agent") {
            return Err(format!("pid {pid} runs {}, not wbl-agent", exe.display()));
        }
    }
    if !crate::sys::can_signal(pid) {
        return Err(format!("pid {pid} cannot be signalled by you"));
    }
    Ok(())
}

/// The uid a process runs as (the owner of its `/proc` directory).
#[cfg(target_os = "linux")]
fn owner_of(pid: u32) -> Result<u32, String> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}"))
        .map(|m| m.uid())
        .map_err(|e| format!("pid {pid} is gone: {e}"))
}

/// The executable a process runs.
#[cfg(target_os = "linux")]
fn exe_of(pid: u32) -> Result<std::path::PathBuf, String> {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map_err(|e| format!("cannot read the executable of pid {pid}: {e}"))
}

/// The uid a process runs as.
#[cfg(target_os = "macos")]
fn owner_of(pid: u32) -> Result<u32, String> {
    crate::sys::process_uid(pid).ok_or_else(|| format!("pid {pid} is gone"))
}

/// The executable a process runs.
#[cfg(target_os = "macos")]
fn exe_of(pid: u32) -> Result<std::path::PathBuf, String> {
    crate::sys::process_exe(pid).ok_or_else(|| format!("cannot read the executable of pid {pid}"))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn pids_that_are_not_our_agent_are_never_approved() {
        let t = tempfile::tempdir().unwrap();
        let paths = RuntimePaths {
            socket: t.path().join("agent.sock"),
        };
        for pid in [0, 1, u32::MAX] {
            assert!(verify_agent_pid(&paths, pid).is_err(), "{pid}");
        }
        // A pid file nobody holds the lock of: not an agent, even for our own pid.
        std::fs::write(paths.pidfile(), format!("{}\n", std::process::id())).unwrap();
        let e = verify_agent_pid(&paths, std::process::id()).unwrap_err();
        assert!(e.contains("no agent holds the lock"), "{e}");
        // Holding the lock ourselves: the pid matches, but this test binary is not wbl-agent.
        let f = std::fs::File::open(paths.pidfile()).unwrap();
        f.lock().unwrap();
        #[cfg(target_os = "linux")]
        {
            let e = verify_agent_pid(&paths, std::process::id()).unwrap_err();
            assert!(e.contains("not wbl-agent"), "{e}");
        }
    }
}
