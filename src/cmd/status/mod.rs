//! `wbl status`: is the agent running and with which backend, and for every W&B host wbl
//! knows of: where its key resolves from (`WANDB_API_KEY`, keychain, settings file, netrc — the
//! order `wbl login` and the SDK use), the key masked, and every plaintext copy of a key.
//! Also the settings files in use. Never starts the agent and never prints a key.
//!
//! Three steps: `gather` asks the agent and reads the files (all the I/O), `report` applies
//! the rules (which hosts are shown, where each key resolves from, what to warn about) and
//! makes the one value `--json` prints, `render` prints that value for people.

mod gather;
mod render;
mod report;

use crate::cli::StatusArgs;

/// Never starts the agent: it reports the agent as it finds it.
pub fn run(args: StatusArgs) -> anyhow::Result<()> {
    if args.all {
        return super::accounts::run(crate::cli::AccountsArgs {
            names: false,
            host: None,
        });
    }
    let facts = gather::gather()?;
    let out = report::report(&facts);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        render::text(&out, crate::term::Style::stdout());
    }
    Ok(())
}
