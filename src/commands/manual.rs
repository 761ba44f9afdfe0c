//! `instancectl completions SHELL` and `instancectl man`: the shell completion scripts
//! and the manual page, generated from the command line's own definition so that they
//! never fall behind it. scripts/install.sh installs both.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::{Error, Result};

const NAME: &str = "instancectl";

/// What the command line's definition cannot say: exit statuses, files, related pages.
const TRAILER: &str = r#".SH "EXIT STATUS"
0 success (\fBstatus\fR: every instance healthy, on demand, disabled or stopped);
1 a command failed, or \fBstatus\fR found an instance degraded or down (or stopped,
with \fB\-\-strict\fR); 2 bad input or not root, and nothing was changed.
.SH FILES
.TP
\fI/var/lib/instancectl/\fR
what instancectl remembers: instance roles, stop marks, remembered \fBpostfix check\fR
results, the host lock and the supervisor's control socket (\fBINSTANCECTL_STATE_DIR\fR
moves it)
.TP
\fI/etc/systemd/system/instancectl.service\fR
the supervisor's unit, as scripts/install.sh installs it
.SH "SEE ALSO"
\fBpostmulti\fR(1), \fBpostfix\fR(1), \fBpostconf\fR(1), \fBmaster\fR(8)
"#;

fn write_out(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Error::system("cannot write to standard output", e))
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
    render_man(&mut page).map_err(|e| Error::system("cannot render the manual", e))?;
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
    render_commands(page, &cmd, NAME)?;
    page.extend_from_slice(TRAILER.as_bytes());
    man.render_version_section(page)?;
    Ok(())
}

/// A command's text after its options (where the day-2 commands keep their examples
/// and where they read from), line for line as `--help` shows it: clap_mangen's own
/// EXTRA section would fill the lines into one paragraph.
fn render_after_help(page: &mut Vec<u8>, cmd: &clap::Command) -> std::io::Result<()> {
    let Some(text) = cmd.get_after_long_help().or_else(|| cmd.get_after_help()) else {
        return Ok(());
    };
    writeln!(page, ".PP\n.nf")?;
    for line in text.to_string().lines() {
        // \& keeps a leading . or ' from being read as a request.
        let escaped = line.replace('\\', "\\e").replace('-', "\\-");
        writeln!(page, "\\&{escaped}")?;
    }
    writeln!(page, ".fi")
}

/// A page section per command (`relay set` and `relay show` too), with its options.
fn render_commands(
    page: &mut Vec<u8>,
    parent: &clap::Command,
    prefix: &str,
) -> std::io::Result<()> {
    for sub in parent.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("{prefix} {}", sub.get_name());
        writeln!(page, ".SH \"{}\"", name.to_uppercase())?;
        let sub_man = clap_mangen::Man::new(sub.clone().bin_name(name.clone()));
        sub_man.render_synopsis_section(page)?;
        sub_man.render_description_section(page)?;
        sub_man.render_options_section(page)?;
        render_after_help(page, sub)?;
        render_commands(page, sub, &name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_keep_their_lines() {
        let mut page = Vec::new();
        render_man(&mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        let queue = &page[page.find(".SH \"INSTANCECTL QUEUE\"").unwrap()..];
        let examples = &queue[queue.find(".nf").unwrap()..queue.find(".fi").unwrap()];
        assert!(
            examples.contains(
                "\\&  instancectl queue postfix\\-out hold E370454E0F2     # keep it, do not deliver\n"
            ),
            "{examples}"
        );
    }
}
