//! Progress of a backup or restore: a live bar on a terminal, one line per stream
//! otherwise (a CronJob's log or a systemd journal gets a readable record, not escape
//! codes).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    /// Summary lines go to stderr when stdout carries `--json`.
    lines_to_stderr: bool,
}

impl Progress {
    /// `total_bytes`: what the streams hold, for the bar (the archive is compressed, so
    /// the bar is an estimate); `json`: stdout is reserved for the JSON document.
    pub fn new(verb: &str, total_bytes: u64, json: bool) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(&format!(
                "{verb} {{msg}} {{bytes}} ({{binary_bytes_per_sec}}) {{wide_bar}} ~{{total_bytes}}"
            )) {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            lines_to_stderr: json,
        }
    }

    /// A stream starts (`i` of `n`).
    pub fn stream(&self, stream: &str, i: usize, n: usize) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("[{i}/{n}] {stream}"));
        }
    }

    pub fn add(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    /// A stream's one-line summary.
    pub fn line(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None if self.lines_to_stderr => eprintln!("{line}"),
            None => println!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Bytes for people: `1.5 MiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
