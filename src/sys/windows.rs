//! Windows: who owns a process (its token's user), for the client's check of the process
//! serving the agent's pipe.

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
use windows_sys::Win32::Security::{EqualSid, GetTokenInformation, TOKEN_QUERY, TokenUser};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, OpenProcess, OpenProcessToken, PROCESS_QUERY_LIMITED_INFORMATION,
};

/// A handle closed on drop.
struct Handle(HANDLE);
impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: a handle we opened and own.
        unsafe { CloseHandle(self.0) };
    }
}

/// The TOKEN_USER of a process, as raw bytes (the SID points inside them).
fn token_user(process: HANDLE) -> std::io::Result<Vec<u8>> {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: a valid process handle and out-pointer.
    if unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut token) } == 0 {
        return Err(std::io::Error::last_os_error());
    }
    let token = Handle(token);
    let mut len = 0u32;
    // SAFETY: asking for the size only.
    unsafe { GetTokenInformation(token.0, TokenUser, std::ptr::null_mut(), 0, &mut len) };
    let mut buf = vec![0u8; len as usize];
    // SAFETY: `buf` has `len` bytes.
    if unsafe { GetTokenInformation(token.0, TokenUser, buf.as_mut_ptr().cast(), len, &mut len) }
        == 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok(buf)
}

/// True when process `pid` runs as the same user as this one.
pub fn same_user(pid: u32) -> std::io::Result<bool> {
    // SAFETY: OpenProcess with a pid and query rights; a null handle is an error.
    let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if process.is_null() {
        return Err(std::io::Error::last_os_error());
    }
    let process = Handle(process);
    let theirs = token_user(process.0)?;
    // SAFETY: the pseudo-handle of this process needs no closing.
    let ours = token_user(unsafe { GetCurrentProcess() })?;
    let sid = |buf: &[u8]| {
        // SAFETY: the buffer holds a TOKEN_USER as filled in by GetTokenInformation.
        unsafe {
            (*(buf.as_ptr() as *const windows_sys::Win32::Security::TOKEN_USER))
                .User
                .Sid
        }
    };
    // SAFETY: two valid SIDs inside live buffers.
    Ok(unsafe { EqualSid(sid(&theirs), sid(&ours)) } != 0)
}

/// Nothing to do here: core files, dumpability and `ptrace` are Unix matters.
pub fn harden(_: super::Hardening) -> super::Hardened {
    super::Hardened::default()
}
