//! `instancectl completions SHELL` and `instancectl man`: the shell completion scripts
//! and the manual page, generated from the command line's own definition so that they
//! never fall behind it. scripts/install.sh installs both.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::{Error, Result};

const NAME: &str = "instancectl";

fn write_out(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Error::failed(format!("cannot write to standard output: {e}")))
}

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), NAME, &mut script);
    write_out(&script)
}

/// The manual page in roff, section 8 (system administration commands), with a page
/// section per subcommand.
pub fn man() -> Result<()> {
    let mut page = Vec::new();
    render_man(&mut page).map_err(|e| Error::failed(format!("cannot render the manual: {e}")))?;
    write_out(&page)
}

fn render_man(page: &mut Vec<u8>) -> std::io::Result<()> {
    let cmd = Cli::command().name(NAME);
    let man = clap_mangen::Man::new(cmd.clone()).section("8");
    man.render_title(page)?;
    man.render_name_section(page)?;
    man.render_synopsis_section(page)?;
    man.render_description_section(page)?;
    man.render_options_section(page)?;
    // One section per command, with its own options.
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        writeln!(
            page,
            ".SH \"{} {}\"",
            NAME.to_uppercase(),
            sub.get_name().to_uppercase()
        )?;
        let sub_man =
            clap_mangen::Man::new(sub.clone().bin_name(format!("{NAME} {}", sub.get_name())));
        sub_man.render_synopsis_section(page)?;
        sub_man.render_description_section(page)?;
        sub_man.render_options_section(page)?;
    }
    man.render_version_section(page)?;
    Ok(())
}
