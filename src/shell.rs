//! User-facing output in cargo's style: right-aligned status verbs on stderr, coloured when
//! stderr is a terminal and `--color` allows it. stdout is kept for machine output.

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use anstyle::{AnsiColor, Style};

static QUIET: AtomicBool = AtomicBool::new(false);

const GREEN: Style = AnsiColor::Green.on_default().bold();
const CYAN: Style = AnsiColor::Cyan.on_default().bold();
const YELLOW: Style = AnsiColor::Yellow.on_default().bold();
const RED: Style = AnsiColor::Red.on_default().bold();
const BOLD: Style = Style::new().bold();

/// When to colour output, as cargo's `--color` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Sets the process-wide output policy; called once by `main`.
pub fn configure(color: ColorChoice, quiet: bool) {
    let choice = match color {
        ColorChoice::Auto => anstream::ColorChoice::Auto,
        ColorChoice::Always => anstream::ColorChoice::Always,
        ColorChoice::Never => anstream::ColorChoice::Never,
    };
    choice.write_global();
    QUIET.store(quiet, Ordering::Relaxed);
}

pub fn is_quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

fn line(style: Style, verb: &str, message: impl Display) {
    if !is_quiet() {
        let _ = writeln!(anstream::stderr(), "{style}{verb:>12}{style:#} {message}");
    }
}

/// A green status line such as `   Fetching wasi:io@0.2.3`.
pub fn status(verb: &str, message: impl Display) {
    line(GREEN, verb, message);
}

/// A cyan status line for things that are informative rather than progress (`Skipping`).
pub fn info(verb: &str, message: impl Display) {
    line(CYAN, verb, message);
}

/// `count` and `noun`, plural unless one: `1 blob`, `3 blobs`.
pub fn counted(count: usize, noun: &str) -> String {
    match count {
        1 => format!("1 {noun}"),
        _ => format!("{count} {noun}s"),
    }
}

/// A warning; printed even with `--quiet`, as cargo does.
pub fn warn(message: impl Display) {
    let _ = writeln!(anstream::stderr(), "{YELLOW}warning{YELLOW:#}{BOLD}:{BOLD:#} {message}");
}

/// Prints an error with its chain of causes and an optional `help:` line.
pub fn error(err: &anyhow::Error) {
    let mut out = anstream::stderr();
    let _ = writeln!(out, "{RED}error{RED:#}{BOLD}:{BOLD:#} {err}");
    let causes: Vec<_> = err.chain().skip(1).collect();
    if !causes.is_empty() {
        let _ = writeln!(out, "\nCaused by:");
        for cause in causes {
            let _ = writeln!(out, "  {cause}");
        }
    }
    if let Some(help) = err.chain().find_map(|e| e.downcast_ref::<crate::Help>()) {
        let _ = writeln!(out, "\n{CYAN}help{CYAN:#}{BOLD}:{BOLD:#} {}", help.help());
    }
}

/// A progress bar for a transfer of `total` bytes, drawn only when stderr is a terminal and
/// output is not quiet; small transfers finish too fast to need one.
pub fn transfer_bar(verb: &str, what: &str, total: u64) -> Option<indicatif::ProgressBar> {
    const WORTH_A_BAR: u64 = 1 << 20;
    if is_quiet() || total < WORTH_A_BAR || !std::io::stderr().is_terminal() {
        return None;
    }
    let style = indicatif::ProgressStyle::with_template(
        "{prefix:>12.cyan.bold} [{bar:27}] {bytes}/{total_bytes} {wide_msg}",
    )
    .ok()?
    .progress_chars("=> ");
    let bar = indicatif::ProgressBar::new(total).with_style(style);
    bar.set_prefix(verb.to_string());
    bar.set_message(what.to_string());
    Some(bar)
}

/// Progress over a set of items, such as the packages of one fetch: a single bar on a
/// terminal, or one status line per item elsewhere.
pub struct Progress {
    verb: &'static str,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// A bar appears only on a terminal, without `--quiet`, for more than one item.
    pub fn new(verb: &'static str, total: u64) -> Self {
        let show = !is_quiet() && total > 1 && std::io::stderr().is_terminal();
        let style = indicatif::ProgressStyle::with_template(
            "{prefix:>12.cyan.bold} [{bar:27}] {pos}/{len}: {wide_msg}",
        );
        let bar = match style {
            Ok(style) if show => {
                let bar =
                    indicatif::ProgressBar::new(total).with_style(style.progress_chars("=> "));
                bar.set_prefix(verb);
                Some(bar)
            }
            _ => None,
        };
        Self { verb, bar }
    }

    /// Reports that work on `item` starts (a status line when there is no bar).
    pub fn start(&self, item: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(item.to_string()),
            None => status(self.verb, item),
        }
    }

    /// Counts one item as done.
    pub fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_as_english() {
        assert_eq!(counted(1, "blob"), "1 blob");
        assert_eq!(counted(0, "upload"), "0 uploads");
        assert_eq!(counted(3, "leftover"), "3 leftovers");
    }
}
