//! The `shardlog` command: parse the configuration, start the shards, stop on SIGTERM/SIGINT.

use std::process::ExitCode;

use shardlog::config::{Config, ConfigError};

fn main() -> ExitCode {
    let config = match Config::from_args(std::env::args_os()) {
        Ok(c) => c,
        Err(ConfigError::Clap(e)) => e.exit(),
        Err(e) => {
            eprintln!("shardlog: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut signals = match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("shardlog: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let running = match shardlog::start(config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("shardlog: {e}");
            return ExitCode::from(1);
        }
    };
    tracing::info!(addr = %running.local_addr, "shardlog started");
    if let Some(sig) = signals.forever().next() {
        tracing::info!(signal = sig, "stopping: finishing in-flight requests");
    }
    match running.stop() {
        Ok(()) => {
            tracing::info!("stopped cleanly");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shardlog: error while stopping: {e}");
            ExitCode::from(1)
        }
    }
}
