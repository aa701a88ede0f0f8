//! Start-up refusals: a second broker on the same data directory, or on an address another
//! process serves, stops at once with a clear error instead of running beside the first
//! (which SO_REUSEPORT would otherwise allow: clients landing on either process at random,
//! two writers sharing the segment files).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Broker, Msg};

/// Runs a second `shardlog` with `args` and returns its exit status and stderr, killing it
/// (and failing) if it is still running after a minute.
fn second_broker(args: &[&str]) -> (std::process::ExitStatus, String) {
    run_broker(args, &[])
}

/// Runs `shardlog` with `args` and `env` until it exits (see `second_broker`).
fn run_broker(args: &[&str], env: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shardlog"))
        .args(args)
        .envs(env.iter().copied())
        .args(["--shards", "1", "--override", common::IO_MEMORY_ARG])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
                .expect("stderr");
            return (status, err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the broker is still running");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The data directory is locked: a second broker on it (another port) exits with an error
/// naming the first one's pid, and the first goes on serving.
#[test]
fn a_second_broker_on_the_same_data_directory_is_refused() {
    let broker = Broker::start(&[]);
    let dir = broker.data_dir();
    let port = common::free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let (status, err) = second_broker(&["--data-dir", dir.to_str().unwrap(), "--listen", &listen]);
    assert!(!status.success(), "the second broker must fail: {err}");
    let pid = broker.pid().expect("running");
    assert!(
        err.contains("is in use by another process") && err.contains(&format!("pid {pid}")),
        "{err}"
    );
    let producer = broker.producer(&[("acks", "all")]);
    producer.send("still-served", Some(0), &Msg::kv("k", "v"));
    producer.flush_ok(Duration::from_secs(30));
}

/// An address another process listens on is refused, even though the shards bind with
/// SO_REUSEPORT.
#[test]
fn a_second_broker_on_the_same_address_is_refused() {
    let broker = Broker::start(&[]);
    let other_dir = tempfile::tempdir().expect("tempdir");
    let listen = broker.bootstrap();
    let (status, err) = second_broker(&[
        "--data-dir",
        other_dir.path().to_str().unwrap(),
        "--listen",
        &listen,
    ]);
    assert!(!status.success(), "the second broker must fail: {err}");
    assert!(err.contains("address already in use"), "{err}");
}

/// A panic on one shard ends the whole process at once with a log line saying so, instead of
/// leaving a broker whose other shards run on without it. (The panic is asked for through an
/// environment variable that only debug builds read.)
#[test]
fn a_panicking_shard_ends_the_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = format!("127.0.0.1:{}", common::free_port());
    let (status, err) = run_broker(
        &[
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--listen",
            &listen,
        ],
        &[("SHARDLOG_TEST_PANIC_SHARD", "0")],
    );
    assert!(!status.success(), "{err}");
    assert!(err.contains("this shard was asked to panic"), "{err}");
    assert!(err.contains("stopping the process at once"), "{err}");
}
