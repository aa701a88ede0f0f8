//! The `shardlog` command: parse the configuration, start the shards, stop on SIGTERM/SIGINT;
//! or, when the first argument is `topics`, `groups`, `configs` or `acls`, run that admin tool
//! (`admin/`) against a running broker.

use std::process::ExitCode;

use shardlog::config::{Config, ConfigError};

mod admin;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .and_then(|a| a.to_str())
        .is_some_and(|a| admin::SUBCOMMANDS.contains(&a))
    {
        return admin::run(args);
    }
    let config = match Config::from_args(args) {
        Ok(c) => c,
        Err(ConfigError::Clap(e)) => e.exit(),
        Err(e) => {
            eprintln!("shardlog: {e}");
            return ExitCode::from(2);
        }
    };
    if config.print_only {
        print!("{}", config.print_config());
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    abort_on_panic();
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
        tracing::info!(
            signal = sig,
            "stopping: finishing in-flight requests (a second SIGTERM or SIGINT stops at once)"
        );
    }
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            tracing::warn!(signal = sig, "stopping at once: in-flight requests are dropped; the next start recovers the logs as after a crash");
            std::process::exit(1);
        }
    });
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

/// A panic on any thread ends the process at once (after the panic message and a log line),
/// never leaving a broker with a dead shard that refuses work and ignores SIGTERM: a service
/// manager restarts it, and the start recovers the logs as after a kill -9.
fn abort_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        let thread = std::thread::current();
        tracing::error!(
            thread = thread.name().unwrap_or("unnamed"),
            "a thread panicked ({info}); stopping the process at once so that it can be restarted"
        );
        std::process::abort();
    }));
}
