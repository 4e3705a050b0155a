//! `wbl keyring unlock`: makes the Secret Service ready to keep keys from the state `wbl doctor`
//! found it in — started through D-Bus, its default keyring unlocked with the password typed,
//! or created with it where there is none (`crate::keychain::ss_state` does the D-Bus side).

use crate::cli::{KeyringArgs, KeyringCommand};

pub fn run(args: KeyringArgs) -> anyhow::Result<()> {
    match args.command {
        KeyringCommand::Unlock => unlock(),
    }
}

#[cfg(not(target_os = "linux"))]
fn unlock() -> anyhow::Result<()> {
    anyhow::bail!(
        "there is no Secret Service on this platform: the login Keychain (macOS) and the Credential Manager (Windows) are unlocked by logging in"
    )
}

#[cfg(target_os = "linux")]
fn unlock() -> anyhow::Result<()> {
    use std::time::Duration;

    use anyhow::Context;
    use zeroize::Zeroizing;

    use crate::doctor::bounded;
    use crate::keychain::ss_state::{self, Health, Unlocked};

    /// D-Bus may take this long to start a provider (its own activation bound is 25 s).
    const START_TIMEOUT: Duration = Duration::from_secs(30);
    /// One unlock or create call: gnome-keyring derives the key from the password.
    const CALL_TIMEOUT: Duration = Duration::from_secs(30);

    let conn = bounded(
        crate::doctor::DBUS_TIMEOUT,
        zbus::blocking::Connection::session,
    )
    .context("the session D-Bus did not answer")?
    .context("no session D-Bus (`wbl doctor` says how to get one)")?;
    let c = conn.clone();
    let state = bounded(START_TIMEOUT, move || ss_state::start(&c)).with_context(|| {
        format!(
            "the Secret Service did not start within {} s",
            START_TIMEOUT.as_secs()
        )
    })??;
    let password: Zeroizing<String> = match &state {
        Health::Unlocked { provider, label } => {
            eprintln!("wbl: the keyring \"{label}\" of {provider} is unlocked already.");
            return Ok(());
        }
        Health::Locked {
            provider, label, ..
        } => read_password(
            &format!("Password of the keyring \"{label}\" ({provider}): "),
            false,
        )?,
        Health::NoDefaultCollection { provider } => {
            eprintln!(
                "wbl: {provider} has no default keyring; creating one, \"Login\", with the password you choose."
            );
            read_password("New keyring password: ", true)?
        }
        Health::NotRunning { .. } | Health::Failed(_) => {
            // `start` returns neither; say what was found all the same.
            anyhow::bail!("the Secret Service is not usable: {state:?}");
        }
    };
    let bytes = Zeroizing::new(password.as_bytes().to_vec());
    drop(password);
    let outcome = bounded(CALL_TIMEOUT, move || ss_state::unlock(&conn, state, &bytes))
        .with_context(|| {
            format!(
                "the Secret Service did not answer within {} s",
                CALL_TIMEOUT.as_secs()
            )
        })??;
    match outcome {
        Unlocked::Already { provider, label } => {
            eprintln!("wbl: the keyring \"{label}\" of {provider} is unlocked already.")
        }
        Unlocked::Unlocked { provider, label } => {
            eprintln!("wbl: unlocked the keyring \"{label}\" of {provider}.")
        }
        Unlocked::Created { provider, label } => eprintln!(
            "wbl: created the keyring \"{label}\" in {provider}, unlocked; it is the default keyring now."
        ),
    }
    Ok(())
}

/// The password: without echo from the terminal (twice for a new keyring), else one line of
/// stdin. A new keyring gets no empty password (gnome-keyring would store it unencrypted).
#[cfg(target_os = "linux")]
fn read_password(prompt: &str, new: bool) -> anyhow::Result<zeroize::Zeroizing<String>> {
    use std::io::IsTerminal;

    use zeroize::Zeroizing;

    let password = if std::io::stdin().is_terminal() {
        let first = crate::term::prompt_hidden(prompt)?
            .ok_or_else(|| anyhow::anyhow!("no password given"))?;
        let first = Zeroizing::new(first.expose().to_owned());
        if new {
            let again = crate::term::prompt_hidden("The same password again: ")?
                .ok_or_else(|| anyhow::anyhow!("no password given"))?;
            if again.expose() != first.as_str() {
                anyhow::bail!("the two passwords differ; nothing was created");
            }
        }
        first
    } else {
        let bytes = super::read_at_most(std::io::stdin().lock(), 4096)?
            .ok_or_else(|| anyhow::anyhow!("the password on stdin is longer than 4096 bytes"))?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| anyhow::anyhow!("the password on stdin is not UTF-8"))?;
        let line = text.split(['\n']).next().unwrap_or_default();
        Zeroizing::new(line.strip_suffix('\r').unwrap_or(line).to_owned())
    };
    if new && password.is_empty() {
        anyhow::bail!(
            "an empty password would leave the keyring unencrypted on disk; nothing was created"
        );
    }
    Ok(password)
}
