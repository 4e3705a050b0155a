//! Checks of the keychain side: the session D-Bus, the Secret Service and its default
//! collection, the kernel keyring, and which backend the agent uses (or would use).

#[cfg(target_os = "linux")]
use super::Hints;
use super::{Ctx, Finding};
#[cfg(target_os = "linux")]
use super::{DBUS_TIMEOUT, UNLOCK_GNOME_KEYRING, bounded};

/// The last resort every Linux fix mentions.
#[cfg(target_os = "linux")]
const KEYUTILS_FALLBACK: &str =
    "or settle for the kernel keyring: `export WBL_BACKEND=keyutils` (keys are lost at reboot)";

/// Extra advice for where the user is (SSH, WSL), to append to a fix.
#[cfg(target_os = "linux")]
fn where_hints(h: &Hints, ssh: &str, wsl: &str) -> String {
    let mut out = String::new();
    if h.ssh {
        out.push_str("; over SSH: ");
        out.push_str(ssh);
    }
    if h.wsl {
        out.push_str("; on WSL: ");
        out.push_str(wsl);
    }
    out
}

#[cfg(target_os = "linux")]
pub(super) fn dbus(ctx: &mut Ctx) -> Finding {
    let set = std::env::var("DBUS_SESSION_BUS_ADDRESS")
        .ok()
        .filter(|a| !a.is_empty());
    // zbus's own default when the variable is unset.
    let address = set.clone().unwrap_or_else(|| {
        let runtime = std::env::var("XDG_RUNTIME_DIR")
            .unwrap_or_else(|_| format!("/run/user/{}", crate::rendezvous::user_tag()));
        format!("unix:path={runtime}/bus")
    });
    let connected = bounded(DBUS_TIMEOUT, || {
        zbus::blocking::Connection::session().map_err(|e| e.to_string())
    });
    let why = match connected {
        Some(Ok(conn)) => {
            ctx.bus = Some(conn);
            return Finding::ok(format!("connected to {address}"));
        }
        Some(Err(e)) => e,
        None => format!("no answer within {} s", DBUS_TIMEOUT.as_secs()),
    };
    let detail = match set {
        Some(_) => format!("cannot connect to DBUS_SESSION_BUS_ADDRESS={address}: {why}"),
        None => format!(
            "no session D-Bus: DBUS_SESSION_BUS_ADDRESS is not set and {address} does not answer ({why})"
        ),
    };
    if ctx.keyutils_only() {
        return Finding::skipped(format!("{detail}; not needed with WBL_BACKEND=keyutils"));
    }
    let fix = format!(
        "log in through a session that has one (systemd's user bus: `sudo apt install dbus-user-session`, then log in again), or start one for this shell: `exec dbus-run-session -- $SHELL`{}; {KEYUTILS_FALLBACK}",
        where_hints(
            &ctx.hints,
            "the session bus comes from systemd-logind, so install dbus-user-session on the server and reconnect (`loginctl enable-linger $USER` keeps it between logins)",
            "enable systemd (`[boot] systemd=true` in /etc/wsl.conf, then `wsl --shutdown` from Windows) to get a user bus",
        )
    );
    Finding::problem(detail, fix)
}

#[cfg(not(target_os = "linux"))]
pub(super) fn dbus(_ctx: &mut Ctx) -> Finding {
    Finding::skipped("not used on this platform")
}

#[cfg(target_os = "linux")]
use crate::keychain::ss_state::{Health, SECRETS_NAME};

#[cfg(target_os = "linux")]
pub(super) fn secret_service(ctx: &mut Ctx) -> Finding {
    let Some(conn) = ctx.bus.clone() else {
        ctx.secret_service_ok = Some(false);
        return Finding::skipped("no session D-Bus (see the session D-Bus check)");
    };
    let state = bounded(DBUS_TIMEOUT, move || {
        crate::keychain::ss_state::health(&conn)
    });
    // An agent started now uses a Secret Service that exists, even one it cannot use yet.
    ctx.secret_service_exists = matches!(
        state,
        Some(
            Health::NotRunning { activatable: true }
                | Health::NoDefaultCollection { .. }
                | Health::Locked { .. }
                | Health::Unlocked { .. }
        )
    );
    let unusable = |detail: String, fix: String| {
        if ctx.keyutils_only() {
            Finding::skipped(format!("{detail}; not used with WBL_BACKEND=keyutils"))
        } else {
            Finding::problem(detail, fix)
        }
    };
    let ssh_unlock = "a login with an SSH key does not unlock the keyring (PAM never sees a password), so unlock it as above once per boot";
    let wsl_unlock = "nothing unlocks the keyring at login, so unlock it as above once per boot";
    let finding = match state {
        None => unusable(
            format!(
                "the Secret Service did not answer within {} s",
                DBUS_TIMEOUT.as_secs()
            ),
            format!("restart it unlocked: `{UNLOCK_GNOME_KEYRING}`; {KEYUTILS_FALLBACK}"),
        ),
        Some(Health::NotRunning { activatable: true }) => {
            ctx.secret_service_ok = None;
            return Finding::warning(
                format!(
                    "no Secret Service is running; D-Bus can start one ({SECRETS_NAME}) on first use (wbl doctor does not start it)"
                ),
                "`wbl keyring unlock` (starts it, then unlocks its default keyring or creates one with the password you type), then `wbl doctor` again",
            );
        }
        Some(Health::NotRunning { activatable: false }) => unusable(
            format!("no Secret Service on the session bus (nothing provides {SECRETS_NAME})"),
            format!(
                "install gnome-keyring (`sudo apt install gnome-keyring`; D-Bus then starts it on demand), then `wbl keyring unlock`{}; {KEYUTILS_FALLBACK}",
                where_hints(&ctx.hints, ssh_unlock, wsl_unlock)
            ),
        ),
        // wbl's Secret Service client stores only into the default collection and never
        // creates one, so no key can be stored, with or without a desktop to prompt on.
        Some(Health::NoDefaultCollection { provider }) => unusable(
            format!(
                "{provider} has no default collection (no login keyring): no key can be stored{}",
                if prompt_possible() {
                    ""
                } else {
                    ", and without a display no dialog can offer to create one"
                }
            ),
            "create it: `wbl keyring unlock` (asks for the new keyring's password)".to_owned(),
        ),
        Some(Health::Locked {
            provider, label, ..
        }) => unusable(
            format!(
                "the default collection \"{label}\" of {provider} is locked: the agent can neither read nor store keys"
            ),
            format!(
                "`wbl keyring unlock` (or unlock it in Seahorse){}",
                where_hints(&ctx.hints, ssh_unlock, wsl_unlock)
            ),
        ),
        Some(Health::Unlocked { provider, label }) => {
            ctx.secret_service_ok = Some(true);
            return Finding::ok(format!(
                "{provider}; default collection \"{label}\" is unlocked"
            ));
        }
        Some(Health::Failed(e)) => unusable(
            format!("the Secret Service answered with an error: {e}"),
            format!("restart it unlocked: `{UNLOCK_GNOME_KEYRING}`; {KEYUTILS_FALLBACK}"),
        ),
    };
    ctx.secret_service_ok = Some(false);
    finding
}

/// Whether a desktop dialog could appear (a graphical session in this environment).
#[cfg(target_os = "linux")]
fn prompt_possible() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

#[cfg(not(target_os = "linux"))]
pub(super) fn secret_service(_ctx: &mut Ctx) -> Finding {
    Finding::skipped("not used on this platform")
}

#[cfg(target_os = "linux")]
pub(super) fn keyutils(ctx: &mut Ctx) -> Finding {
    match crate::keychain::probe_keyutils() {
        Ok(()) => Finding::ok(
            "the kernel user keyring is usable (the fallback without a Secret Service; its keys die at reboot)",
        ),
        Err(e) => {
            let detail = format!("{e}");
            let mut fix = "in a container, the seccomp profile may block keyctl (docker: run with a profile that allows keyctl, add_key and request_key); check with `keyctl show @u`".to_owned();
            if ctx.hints.wsl {
                fix.push_str("; on WSL: WSL 1 may not provide the kernel keyring, WSL 2 does");
            }
            if ctx.keyutils_only() {
                Finding::problem(detail, fix)
            } else {
                Finding::warning(
                    format!("{detail} (no fallback when the Secret Service is unavailable)"),
                    fix,
                )
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn keyutils(_ctx: &mut Ctx) -> Finding {
    Finding::skipped("not used on this platform")
}

/// The backend `WBL_BACKEND` names, checked; `Err` is the finding for an unknown one.
fn backend_choice(ctx: &Ctx) -> Result<&str, Finding> {
    match ctx.backend_choice.as_str() {
        "" | "auto" => Ok("auto"),
        known @ ("secret-service"
        | "keyutils"
        | "macos-keychain"
        | "windows-credential-manager") => Ok(known),
        other => Err(Finding::problem(
            format!("WBL_BACKEND={other} is not a backend; the agent refuses to start"),
            "`unset WBL_BACKEND` (auto), or set it to secret-service, keyutils, macos-keychain or windows-credential-manager",
        )),
    }
}

/// What to do about keys living in the kernel keyring.
fn away_from_keyutils(ctx: &Ctx, then: &str) -> String {
    if ctx.keyutils_only() {
        format!("`unset WBL_BACKEND` (it chooses keyutils), run a Secret Service, then {then}")
    } else if ctx.secret_service_ok == Some(true) {
        format!(
            "the Secret Service works now: {then} and the agent picks it; then store your keys there again (`wbl login`)"
        )
    } else {
        format!("make the Secret Service work (see the Secret Service check), then {then}")
    }
}

pub(super) fn backend(ctx: &mut Ctx) -> Finding {
    let choice = match backend_choice(ctx) {
        Ok(c) => c.to_owned(),
        Err(f) => return f,
    };
    if let Some(status) = ctx.agent.as_ref().and_then(|a| a.status.as_ref()) {
        if status.backend_persistent {
            return Finding::ok(format!(
                "the agent uses {} (keys survive a reboot)",
                status.backend
            ));
        }
        return Finding::warning(
            format!(
                "the agent uses {}: keys stored there are lost at reboot",
                status.backend
            ),
            away_from_keyutils(ctx, "`wbl agent stop && wbl agent start`"),
        );
    }
    if ctx.agent.is_some() {
        return Finding::skipped(
            "the running agent is from another build (see the wbl-agent check)",
        );
    }
    // No agent: say what one started now would choose.
    let predicted = match choice.as_str() {
        // None: a provider D-Bus can start, which the agent's probe would start.
        "auto" if cfg!(target_os = "linux") => match ctx.secret_service_ok {
            Some(true) | None => "secret-service",
            Some(false) if ctx.secret_service_exists => {
                return Finding::skipped(
                    "an agent started now would use the Secret Service, which cannot keep keys yet (see the Secret Service check)",
                );
            }
            Some(false) => "keyutils",
        },
        "secret-service" if ctx.secret_service_ok == Some(false) => {
            return Finding::skipped(
                "WBL_BACKEND=secret-service, which does not work now (see the Secret Service check)",
            );
        }
        "auto" if cfg!(target_os = "macos") => "macos-keychain",
        "auto" if cfg!(windows) => "windows-credential-manager",
        other => other,
    };
    if predicted == "keyutils" {
        let why = if choice == "auto" {
            "without a usable Secret Service, an agent started now would fall back to keyutils"
        } else {
            "WBL_BACKEND=keyutils"
        };
        return Finding::warning(
            format!("{why}: keys stored there are lost at reboot"),
            away_from_keyutils(ctx, "`wbl agent start`"),
        );
    }
    Finding::ok(format!(
        "the agent is not running; started now it would use {predicted}{}",
        if choice == "auto" { " (auto)" } else { "" }
    ))
}
