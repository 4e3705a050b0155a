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

/// What the Secret Service said.
#[cfg(target_os = "linux")]
enum SecretService {
    /// Nothing owns `org.freedesktop.secrets`; `activatable`: D-Bus could start a provider.
    NotRunning {
        activatable: bool,
    },
    NoDefaultCollection {
        provider: String,
    },
    Collection {
        provider: String,
        label: String,
        locked: bool,
    },
    Failed(String),
}

#[cfg(target_os = "linux")]
const SECRETS_NAME: &str = "org.freedesktop.secrets";

/// Asks the bus who provides the Secret Service and reads its default collection's `Locked`
/// property. Never activates a provider, never unlocks, never prompts.
#[cfg(target_os = "linux")]
fn probe_secret_service(conn: zbus::blocking::Connection) -> SecretService {
    use secret_service::blocking::SecretService as Ss;
    use secret_service::{EncryptionType, Error as SsError};
    use zbus::names::{BusName, WellKnownName};

    let name = WellKnownName::from_static_str_unchecked(SECRETS_NAME);
    let dbus = match zbus::blocking::fdo::DBusProxy::new(&conn) {
        Ok(p) => p,
        Err(e) => return SecretService::Failed(e.to_string()),
    };
    match dbus.name_has_owner(name.clone().into()) {
        Ok(true) => {}
        Ok(false) => {
            let activatable = dbus
                .list_activatable_names()
                .is_ok_and(|names| names.iter().any(|n| n.as_str() == SECRETS_NAME));
            return SecretService::NotRunning { activatable };
        }
        Err(e) => return SecretService::Failed(e.to_string()),
    }
    let provider = match dbus.get_connection_unix_process_id(BusName::from(name)) {
        Ok(pid) => {
            // The program's name from its argv[0] (`comm` is cut at 15 bytes).
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
            let argv0 = String::from_utf8_lossy(argv0);
            match argv0.rsplit('/').next().unwrap_or_default() {
                "" => format!("pid {pid}"),
                name => format!("{name} (pid {pid})"),
            }
        }
        Err(_) => SECRETS_NAME.to_owned(),
    };
    // A plain session: no secret is read, so nothing needs encrypting.
    let ss = match Ss::connect_with_existing(EncryptionType::Plain, conn) {
        Ok(ss) => ss,
        Err(e) => return SecretService::Failed(e.to_string()),
    };
    let collection = match ss.get_default_collection() {
        Ok(c) => c,
        Err(SsError::NoResult) => return SecretService::NoDefaultCollection { provider },
        Err(e) => return SecretService::Failed(e.to_string()),
    };
    let label = collection.get_label().unwrap_or_default();
    match collection.is_locked() {
        Ok(locked) => SecretService::Collection {
            provider,
            label,
            locked,
        },
        Err(e) => SecretService::Failed(e.to_string()),
    }
}

#[cfg(target_os = "linux")]
pub(super) fn secret_service(ctx: &mut Ctx) -> Finding {
    let Some(conn) = ctx.bus.clone() else {
        ctx.secret_service_ok = Some(false);
        return Finding::skipped("no session D-Bus (see the session D-Bus check)");
    };
    let state = bounded(DBUS_TIMEOUT, move || probe_secret_service(conn));
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
        Some(SecretService::NotRunning { activatable: true }) => {
            ctx.secret_service_ok = None;
            return Finding::warning(
                format!(
                    "no Secret Service is running; D-Bus can start one ({SECRETS_NAME}) on first use (wbl doctor does not start it)"
                ),
                "`wbl agent start` (the agent's first probe starts it), then `wbl doctor` again",
            );
        }
        Some(SecretService::NotRunning { activatable: false }) => unusable(
            format!("no Secret Service on the session bus (nothing provides {SECRETS_NAME})"),
            format!(
                "install gnome-keyring (`sudo apt install gnome-keyring`) and start it unlocked: `{UNLOCK_GNOME_KEYRING}`{}; {KEYUTILS_FALLBACK}",
                where_hints(&ctx.hints, ssh_unlock, wsl_unlock)
            ),
        ),
        Some(SecretService::NoDefaultCollection { provider }) => Finding::warning(
            format!(
                "{provider} has no default collection: the first key stored makes it ask for a new keyring password in a desktop dialog"
            ),
            format!("create and unlock the login keyring: `{UNLOCK_GNOME_KEYRING}`"),
        ),
        Some(SecretService::Collection {
            provider,
            label,
            locked: true,
        }) => unusable(
            format!(
                "the default collection \"{label}\" of {provider} is locked: the agent can neither read nor store keys"
            ),
            format!(
                "unlock it (Seahorse, or in a shell: `{UNLOCK_GNOME_KEYRING}`){}",
                where_hints(&ctx.hints, ssh_unlock, wsl_unlock)
            ),
        ),
        Some(SecretService::Collection {
            provider, label, ..
        }) => {
            ctx.secret_service_ok = Some(true);
            return Finding::ok(format!(
                "{provider}; default collection \"{label}\" is unlocked"
            ));
        }
        Some(SecretService::Failed(e)) => unusable(
            format!("the Secret Service answered with an error: {e}"),
            format!("restart it unlocked: `{UNLOCK_GNOME_KEYRING}`; {KEYUTILS_FALLBACK}"),
        ),
    };
    ctx.secret_service_ok = Some(false);
    finding
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
