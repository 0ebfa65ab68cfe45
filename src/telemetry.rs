//! Logging: structured `tracing` output, text by default or JSON, filtered by
//! `GATEHOUSE_LOG` (e.g. `info`, `gatehouse=debug`). Colour codes only when
//! stderr is a terminal (a journal or a file gets plain text); actix's own
//! start-up lines ("starting N workers", "Actix runtime found") only at
//! `debug`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

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

pub fn init(format: &str) {
    let spec = std::env::var("GATEHOUSE_LOG").ok();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(spec.as_deref()))
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
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
