//! Logging: structured `tracing` output, text by default or JSON, filtered by
//! `GATEHOUSE_LOG` (e.g. `info`, `gatehouse=debug`). Colour codes only when
//! stderr is a terminal (a journal or a file gets plain text); actix's own
//! start-up lines ("starting N workers", "Actix runtime found") only at
//! `debug`. Lines are written by a log thread from a bounded queue, so a
//! slow stderr (a full pipe, a busy journal) never blocks a request: when
//! the queue is full, lines are dropped, counted, and the count is logged.

use std::io::IsTerminal;
use std::time::Duration;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Lines waiting for the log thread before new ones are dropped.
pub const QUEUE_LINES: usize = 16_384;
/// How often the count of dropped lines is checked (and logged when it grew).
const DROP_REPORT_EVERY: Duration = Duration::from_secs(10);

/// The filter: `GATEHOUSE_LOG` (default `info`), and actix-server's info
/// lines kept out unless the operator asked for debug or named actix.
fn filter(spec: Option<&str>) -> EnvFilter {
    let spec = spec.map(str::trim).filter(|s| !s.is_empty());
    let wants_actix = spec.is_some_and(|s| {
        let s = s.to_ascii_lowercase();
        s.contains("actix") || s.split(',').any(|d| matches!(d.trim(), "debug" | "trace"))
    });
    let base = spec
        .and_then(|s| EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    if wants_actix {
        return base;
    }
    match "actix_server=warn".parse() {
        Ok(d) => base.add_directive(d),
        Err(_) => base,
    }
}

/// Keeps the log thread running; dropping it writes what is queued.
pub struct LogGuard {
    _worker: WorkerGuard,
}

/// Installs the subscriber; hold the guard until the process ends.
pub fn init(format: &str) -> LogGuard {
    let spec = std::env::var("GATEHOUSE_LOG").ok();
    // Buffered: the log thread flushes whenever its queue is empty, so a
    // burst of lines costs one write, not one per line.
    let out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr());
    let (writer, worker) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUE_LINES)
        .thread_name("gatehouse-log")
        .finish(out);
    let dropped = writer.error_counter();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(spec.as_deref()))
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    let installed = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    if installed.is_ok() {
        let _ = std::thread::Builder::new()
            .name("gatehouse-log-drops".into())
            .spawn(move || report_drops(|| dropped.dropped_lines()));
    }
    LogGuard { _worker: worker }
}

/// Logs, at most every `DROP_REPORT_EVERY`, how many lines the full queue
/// made us drop since the last report (a report that is itself dropped is
/// folded into the next one).
fn report_drops(count: impl Fn() -> usize) {
    let mut reported = 0usize;
    loop {
        std::thread::sleep(DROP_REPORT_EVERY);
        let now = count();
        if now > reported {
            tracing::warn!(
                dropped = now - reported,
                total = now,
                queue = QUEUE_LINES,
                "log lines dropped: stderr could not keep up with the log"
            );
            reported = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::filter;

    #[test]
    fn actix_start_up_lines_wait_for_debug() {
        assert!(filter(None).to_string().contains("actix_server=warn"));
        assert!(
            filter(Some("info"))
                .to_string()
                .contains("actix_server=warn")
        );
        assert!(
            !filter(Some("debug"))
                .to_string()
                .contains("actix_server=warn")
        );
        assert!(
            !filter(Some("info,actix_server=info"))
                .to_string()
                .contains("warn")
        );
    }
}
