//! `loadgen`: a Kafka-protocol load generator for Shardlog or any Kafka-compatible broker.
//!
//! It speaks the protocol itself (a lean client on glommio, thread-per-core, like the broker), so
//! the client is not the bottleneck. See `loadgen --help` and `loadgen/README.md`.

mod actors;
mod analytics;
mod args;
mod scenarios;
mod utils;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        // Usage errors exit 2 with clap's message; --help and --version exit 0.
        Err(e) => e.exit(),
    };
    if let Err(why) = args::validate(&cli) {
        eprintln!("loadgen: error: {why}");
        return ExitCode::from(2);
    }
    let json_path = match &cli.command {
        Command::Produce(a) => a.common.json.clone(),
        Command::Consume(a) => a.common.json.clone(),
        Command::E2e(a) => a.common.json.clone(),
    };
    // Find out now, not after the run, that the JSON file cannot be written (the probe is
    // removed again if the run ends without a report).
    let mut probe_created = false;
    if let Some(p) = &json_path {
        probe_created = !p.exists();
        if let Err(e) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
        {
            eprintln!("loadgen: error: --json {}: {e}", p.display());
            return ExitCode::from(2);
        }
    }
    let result = match &cli.command {
        Command::Produce(a) => scenarios::produce::run(a),
        Command::Consume(a) => scenarios::consume::run(a),
        Command::E2e(a) => scenarios::e2e::run(a),
    };
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadgen: error: {e:#}");
            if let (Some(p), true) = (&json_path, probe_created) {
                let _ = std::fs::remove_file(p);
            }
            return ExitCode::from(1);
        }
    };
    println!("{}", report.human());
    let _ = std::io::stdout().flush();
    if let Some(p) = &json_path {
        let text = serde_json::to_string_pretty(&report.to_json()).expect("JSON");
        if let Err(e) = std::fs::write(p, text + "\n") {
            eprintln!("loadgen: error: writing {}: {e}", p.display());
            return ExitCode::from(1);
        }
    }
    let code = if report.ok() { 0 } else { 1 };
    // Executors that did not wind down after an abort are left behind: exit without them.
    std::process::exit(code);
}
