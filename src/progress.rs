//! Progress of long work (create, start and stop of several instances, apply), one
//! line per step as it happens, on standard error so that standard output keeps the
//! results. On a terminal a step is a spinner that turns into `✓ STEP (0.4s)` or
//! `✗ STEP`; elsewhere (a pipe, a log, `-v`, `--dry-run`) it is a plain line when the
//! step begins. Code says `let step = progress::step("postmulti create"); ...;
//! step.done()`, or wraps a fallible call in [`run`].

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How steps are shown, decided once per run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Nothing (library use and unit tests).
    Off,
    /// A line on stderr as each step begins.
    Plain,
    /// A spinner per step on the terminal.
    Spinner,
}

static MODE: OnceLock<Mode> = OnceLock::new();
/// Whether a step is showing: a step inside another one stays quiet, so that two
/// spinners never fight over one line.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Chooses the mode for this run: a spinner only when stderr is a terminal and
/// nothing else writes lines to it (`-v` logs, `--dry-run` prints what it would do).
pub fn init(verbose: bool, dry_run: bool) {
    let mode = if std::io::stderr().is_terminal() && !verbose && !dry_run {
        Mode::Spinner
    } else {
        Mode::Plain
    };
    let _ = MODE.set(mode);
}

fn mode() -> Mode {
    MODE.get().copied().unwrap_or(Mode::Off)
}

/// A step being done; dropped without [`Step::done`] or [`Step::clear`], it counts
/// as failed.
pub struct Step {
    what: String,
    started: Instant,
    bar: Option<ProgressBar>,
    /// Whether this step shows anything (false inside another step).
    shown: bool,
    finished: bool,
}

/// Begins a step and shows it.
pub fn step(what: impl Into<String>) -> Step {
    let what = what.into();
    let shown = mode() != Mode::Off && !ACTIVE.swap(true, Ordering::SeqCst);
    let bar = match (shown, mode()) {
        (true, Mode::Spinner) => {
            let bar = ProgressBar::new_spinner().with_message(what.clone());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed:.dim}")
                    .expect("a valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            Some(bar)
        }
        (true, _) => {
            eprintln!("{what} ...");
            None
        }
        _ => None,
    };
    Step {
        what,
        started: Instant::now(),
        bar,
        shown,
        finished: false,
    }
}

impl Step {
    /// The step succeeded: on a terminal the spinner becomes `✓ STEP (time)`.
    pub fn done(mut self) {
        self.finish("✓");
    }

    /// The step succeeded and the caller prints its own line for it (on standard
    /// output): the spinner goes away without a trace.
    pub fn clear(mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.finished = true;
    }

    fn finish(&mut self, mark: &str) {
        if let Some(bar) = self.bar.take() {
            bar.set_style(ProgressStyle::with_template("{msg}").expect("a valid template"));
            bar.finish_with_message(format!(
                "{mark} {} ({:.1}s)",
                self.what,
                self.started.elapsed().as_secs_f64()
            ));
        } else if mark != "✓" && self.shown && mode() == Mode::Plain {
            eprintln!("{}: failed", self.what);
        }
        self.finished = true;
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if !self.finished {
            self.finish("✗");
        }
        if self.shown {
            ACTIVE.store(false, Ordering::SeqCst);
        }
    }
}

/// Runs `f` as a step: done when it succeeds, failed when it does not.
pub fn run<T, E>(what: &str, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let step = step(what);
    let result = f();
    if result.is_ok() {
        step.done();
    }
    result
}
