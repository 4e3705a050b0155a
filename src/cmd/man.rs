//! `wbl man [--out DIR]` (hidden): writes the manual pages, rendered by `clap_mangen` from the
//! clap definitions of both programs: `wbl.1`, one page per subcommand (`wbl-login.1`,
//! `wbl-agent-install.1`, …) and `wbl-agent.1`.
//!
//! `wbl-agent.1` is the page of the `wbl-agent` program (`man wbl-agent` should describe the
//! program of that name); it also lists the `wbl agent` subcommands, which therefore have no
//! page of their own beyond `wbl-agent-<sub>.1`.

use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;
use clap_mangen::Man;

/// Every page: file name and roff text.
pub fn pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut cli = crate::cli::Cli::command().disable_help_subcommand(true);
    cli.build();
    let mut pages = Vec::new();
    let mut agent_group = None;
    collect(&cli, &mut pages, &mut agent_group)?;

    // The program's page, with the `wbl agent` subcommands after its options.
    let mut page = Vec::new();
    let agent = page_of(crate::agent::cli::Args::command());
    agent.render_title(&mut page)?;
    agent.render_name_section(&mut page)?;
    agent.render_synopsis_section(&mut page)?;
    agent.render_description_section(&mut page)?;
    agent.render_options_section(&mut page)?;
    if let Some(group) = agent_group {
        let group = group.subcommand_help_heading("MANAGING IT WITH wbl agent");
        Man::new(group).render_subcommands_section(&mut page)?;
    }
    agent.render_extra_section(&mut page)?;
    agent.render_version_section(&mut page)?;
    pages.push((agent.get_filename(), page));
    Ok(pages)
}

/// A page whose footer names the package and version (subcommands have no version of their
/// own, so clap_mangen's default would print just their name).
fn page_of(cmd: clap::Command) -> Man {
    Man::new(cmd)
        .source(format!("wbl {}", env!("CARGO_PKG_VERSION")))
        .manual("wbl manual")
}

/// Renders `cmd` and, depth first, its visible subcommands. The `wbl agent` group is kept
/// for `wbl-agent.1` instead of getting a page that would take that file name.
fn collect(
    cmd: &clap::Command,
    pages: &mut Vec<(String, Vec<u8>)>,
    agent_group: &mut Option<clap::Command>,
) -> anyhow::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, pages, agent_group)?;
    }
    if cmd.get_display_name() == Some("wbl-agent") {
        *agent_group = Some(cmd.clone());
        return Ok(());
    }
    let man = page_of(cmd.clone());
    let mut page = Vec::new();
    man.render(&mut page)?;
    pages.push((man.get_filename(), page));
    Ok(())
}

pub fn run(args: crate::cli::ManArgs) -> anyhow::Result<()> {
    let out: &Path = &args.out;
    std::fs::create_dir_all(out).with_context(|| format!("while creating {}", out.display()))?;
    for (name, page) in pages()? {
        let path = out.join(&name);
        std::fs::write(&path, page).with_context(|| format!("while writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
