//! Disk full, end to end: a broker whose data directory is on a small ext4 file system that
//! the test makes (a loop-mounted image: tmpfs has no O_DIRECT) answers KAFKA_STORAGE_ERROR
//! when the file system fills, loses nothing it acknowledged, damages nothing on disk, and
//! takes writes again once space is freed, across a kill -9 too.
//!
//! Making the file system needs root (`losetup`, `mount`) and `mkfs.ext4`: without them the
//! test prints why and returns early, so it passes as a skip. CI and the developers' machines
//! run as root, where it runs for real.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Broker, Delivery, Msg, Producer};
use rdkafka::admin::{NewTopic, TopicReplication};

/// The file system's size: room for the journal, the broker's files and a few segments.
const IMAGE_BYTES: u64 = 64 << 20;
/// What the first filler leaves free for the log to fill.
const LEFT_FREE_BYTES: u64 = 3 << 20;
/// Small segments, so the log rolls (and a roll meets the full disk) as it fills.
const SEGMENT_BYTES: &str = "524288";
const VALUE_BYTES: usize = 1024;
const CHUNK_RECORDS: usize = 64;
/// Bounds on the loops that fill the disk: far more than the free space takes.
const FILL_CHUNKS_MAX: usize = 400;
const FLUSH: Duration = Duration::from_secs(30);
const READ: Duration = Duration::from_secs(30);
const TOPIC: &str = "full";

/// A loop device holding a fresh ext4 file system, mounted; unmounted and detached on drop,
/// also when the test panics.
struct LoopFs {
    /// Holds the image file and the mount point.
    dir: tempfile::TempDir,
    device: String,
    mounted: bool,
}

fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd} {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl LoopFs {
    /// Makes and mounts the file system, or says why it cannot.
    fn make() -> Result<LoopFs, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root: cannot attach a loop device or mount".into());
        }
        let dir = tempfile::Builder::new()
            .prefix("shardlog-diskfull-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let image = dir.path().join("fs.img");
        File::create(&image)
            .and_then(|f| f.set_len(IMAGE_BYTES))
            .map_err(|e| format!("creating the image: {e}"))?;
        let image = image
            .to_str()
            .ok_or("non-UTF-8 temporary path")?
            .to_string();
        // -m 0: no blocks reserved for root (the broker runs as root here and would use them).
        run("mkfs.ext4", &["-q", "-F", "-m", "0", "-b", "4096", &image])?;
        let device = run("losetup", &["--find", "--show", &image])?;
        let mut fs = LoopFs {
            dir,
            device,
            mounted: false,
        };
        std::fs::create_dir(fs.mount_point()).map_err(|e| e.to_string())?;
        let mount_point = fs.mount_point();
        let mount_point = mount_point.to_str().ok_or("non-UTF-8 path")?;
        run("mount", &[&fs.device, mount_point])?;
        fs.mounted = true;
        Ok(fs)
    }

    fn mount_point(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// Bytes an unprivileged writer may still allocate.
    fn available_bytes(&self) -> u64 {
        let path = std::ffi::CString::new(self.mount_point().to_str().unwrap()).unwrap();
        // SAFETY: statvfs writes into the zeroed struct we own; the path is NUL-terminated.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::statvfs(path.as_ptr(), &mut st) };
        assert_eq!(rc, 0, "statvfs: {}", std::io::Error::last_os_error());
        st.f_bavail * st.f_frsize
    }

    /// Makes the file system's recent changes durable (freed blocks become allocatable once
    /// the journal commits their release).
    fn sync(&self) {
        let dir = File::open(self.mount_point()).expect("open mount point");
        // SAFETY: syncfs on a descriptor we own.
        let rc = unsafe { libc::syncfs(dir.as_raw_fd()) };
        assert_eq!(rc, 0, "syncfs: {}", std::io::Error::last_os_error());
    }

    /// Allocates up to `bytes` (real blocks, not a sparse file) in a new file `name`, as much
    /// as fits when fewer are free. Returns how many it got.
    fn fill(&self, name: &str, bytes: u64) -> u64 {
        let file = File::create(self.mount_point().join(name)).expect("create filler");
        let mut got = 0u64;
        let mut step = bytes;
        while got < bytes && step >= 4096 {
            let want = step.min(bytes - got);
            // SAFETY: fallocate on a descriptor we own.
            let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, got as i64, want as i64) };
            if rc == 0 {
                got += want;
            } else {
                // ENOSPC (a partial allocation is kept): try a smaller piece.
                got = file.metadata().expect("stat filler").len();
                step /= 2;
            }
        }
        file.sync_all().expect("sync filler");
        got
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        if self.mounted {
            let mount_point = self.mount_point();
            let mount_point = mount_point.to_str().unwrap_or_default();
            let mut unmounted = false;
            for _ in 0..50 {
                if run("umount", &[mount_point]).is_ok() {
                    unmounted = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if !unmounted {
                // Still busy: detach it now, the kernel finishes when the last user goes.
                if let Err(e) = run("umount", &["-l", mount_point]) {
                    eprintln!("cannot unmount {mount_point}: {e}");
                }
            }
        }
        // Detaching a busy device (after a lazy unmount) marks it to go when it is free.
        if let Err(e) = run("losetup", &["-d", &self.device]) {
            eprintln!("cannot detach {}: {e}", self.device);
        }
    }
}

fn record(tag: &str, i: usize) -> Msg {
    let key = format!("{tag}-{i}");
    let value = key.as_bytes().iter().cycle().take(VALUE_BYTES).copied();
    Msg::kv(key.clone(), value.collect::<Vec<u8>>())
}

/// Sends `CHUNK_RECORDS` records tagged `tag-<n>` and waits (bounded) for their reports.
fn send_chunk(p: &Producer, tag: &str, n: usize) -> Vec<Delivery> {
    for i in 0..CHUNK_RECORDS {
        p.send(TOPIC, Some(0), &record(&format!("{tag}{n}"), i));
    }
    let _ = p.try_flush(FLUSH);
    let d = p.take_deliveries();
    assert_eq!(d.len(), CHUNK_RECORDS, "every record gets a report");
    d
}

fn is_storage_error(d: &Delivery) -> bool {
    d.error
        .as_deref()
        .is_some_and(|e| e.contains("KafkaStorageError"))
}

/// Keeps the acknowledged records by offset; panics on an error other than the full disk's.
fn keep_acked(acked: &mut BTreeMap<i64, (Vec<u8>, Vec<u8>)>, reports: &[Delivery]) -> usize {
    let mut failed = 0;
    for d in reports {
        match &d.error {
            None => {
                let was = acked.insert(
                    d.offset,
                    (
                        d.key.clone().unwrap_or_default(),
                        d.value.clone().unwrap_or_default(),
                    ),
                );
                assert!(was.is_none(), "offset {} acknowledged twice", d.offset);
            }
            Some(_) if is_storage_error(d) => failed += 1,
            Some(e) => panic!("a produce failed with something else than a full disk: {e}"),
        }
    }
    failed
}

/// Reads the whole partition and checks it holds exactly the acknowledged records, each at
/// its offset with its bytes (the consumer checks every batch's CRC).
fn assert_log_is(broker: &Broker, acked: &BTreeMap<i64, (Vec<u8>, Vec<u8>)>) {
    let (low, high) = broker.watermarks(TOPIC, 0);
    assert_eq!(low, 0);
    assert_eq!(
        high,
        acked.len() as i64,
        "the log holds exactly the acknowledged records (a refused write left nothing)"
    );
    let got = broker.consume_all(TOPIC, 0, 0, acked.len(), READ);
    for (g, (offset, (key, value))) in got.iter().zip(acked) {
        assert_eq!(g.offset, *offset);
        assert_eq!(g.key.as_deref(), Some(key.as_slice()), "key at {offset}");
        assert_eq!(
            g.value.as_deref(),
            Some(value.as_slice()),
            "value at {offset}"
        );
    }
}

/// The disk fills while producers write: the writes that do not fit are answered
/// KAFKA_STORAGE_ERROR and leave nothing behind, every acknowledged record reads back intact,
/// an idempotent producer's retries go through exactly once when space is freed, new writes
/// are taken, and a kill -9 and restart serve every acknowledged record exactly once.
#[test]
fn a_full_disk_refuses_writes_loses_nothing_and_recovers() {
    let fs = match LoopFs::make() {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIPPED a_full_disk_refuses_writes_loses_nothing_and_recovers: {why}");
            return;
        }
    };
    let data_dir = fs.mount_point().join("data");
    let mut broker = Broker::start_with_data_dir(Some(data_dir), &[]);
    let admin = broker.admin();
    let topic =
        NewTopic::new(TOPIC, 1, TopicReplication::Fixed(1)).set("segment.bytes", SEGMENT_BYTES);
    let created =
        futures::executor::block_on(admin.create_topics(&[topic], &common::admin_options()))
            .expect("CreateTopics");
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");

    // An idempotent producer with retries, started while there is room (its producer id is
    // granted from a block the broker makes durable first).
    let idempotent = broker.producer(&[
        ("acks", "all"),
        ("enable.idempotence", "true"),
        ("message.timeout.ms", "60000"),
        ("linger.ms", "5"),
    ]);
    idempotent.send(TOPIC, Some(0), &record("first", 0));
    let mut acked = BTreeMap::new();
    keep_acked(&mut acked, &idempotent.flush_ok(FLUSH));

    let filler = fs.available_bytes().saturating_sub(LEFT_FREE_BYTES);
    assert!(fs.fill("filler-1", filler) > 0);
    fs.sync();

    // No retries: each refused write comes back to the test as its error.
    let plain = broker.producer(&[("acks", "all"), ("retries", "0"), ("linger.ms", "5")]);
    let mut refused = 0;
    for n in 0..FILL_CHUNKS_MAX {
        refused += keep_acked(&mut acked, &send_chunk(&plain, "fill", n));
        if refused > 0 {
            break;
        }
    }
    assert!(refused > 0, "the disk never filled");
    assert!(!acked.is_empty(), "some records fit before the disk filled");
    broker.assert_running();
    // Every record acknowledged so far is there, intact, while the disk is full.
    assert_log_is(&broker, &acked);

    // Take what is left too (a refused write gives back the blocks it had reserved), until
    // whole chunks are refused.
    let mut refused_in_a_row = 0;
    for n in 0..FILL_CHUNKS_MAX {
        fs.fill(&format!("filler-2-{n}"), IMAGE_BYTES);
        let reports = send_chunk(&plain, "drain", n);
        let failed = keep_acked(&mut acked, &reports);
        refused_in_a_row = if failed == reports.len() {
            refused_in_a_row + 1
        } else {
            0
        };
        if refused_in_a_row == 2 {
            break;
        }
    }
    fs.fill("filler-3", IMAGE_BYTES);
    assert_eq!(refused_in_a_row, 2, "the disk never filled up entirely");

    // The idempotent producer's records are refused while the disk is full and taken once
    // space is freed, each exactly once (a refused batch is not remembered as written, so its
    // retry is not answered as a duplicate of offsets that hold nothing).
    for i in 0..CHUNK_RECORDS {
        idempotent.send(TOPIC, Some(0), &record("retried", i));
    }
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        idempotent.inner.poll(Duration::from_millis(50));
    }
    assert_eq!(
        idempotent.delivered_count(),
        0,
        "nothing is acknowledged while the disk is full"
    );
    for entry in std::fs::read_dir(fs.mount_point()).expect("list mount") {
        let path = entry.expect("entry").path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("filler-"))
        {
            std::fs::remove_file(&path).expect("remove filler");
        }
    }
    fs.sync();
    idempotent.flush(Duration::from_secs(60));
    let retried = idempotent.take_deliveries();
    assert_eq!(keep_acked(&mut acked, &retried), 0, "{retried:?}");

    // Group commits work again too: `__consumer_offsets` was created while the disk was full
    // (the consumers reading back the log have a group id, so librdkafka asked for its
    // coordinator), its partitions could not open then and open now.
    commit_within(&broker, Duration::from_secs(40));

    // New writes are taken again.
    let after = send_chunk(&plain, "after", 0);
    assert_eq!(keep_acked(&mut acked, &after), 0, "{after:?}");
    assert_log_is(&broker, &acked);
    let log = broker.log();
    assert!(log.contains("disk full"), "the full disk is logged");
    assert!(
        log.contains("disk space available again"),
        "the end of it is logged"
    );
    assert!(!log.contains("panicked"), "no panic");

    broker.kill9();
    broker.restart();
    assert_log_is(&broker, &acked);
    let after = send_chunk(&plain, "restarted", 0);
    assert_eq!(keep_acked(&mut acked, &after), 0, "{after:?}");
    assert_log_is(&broker, &acked);
    assert_data_dir_on(&fs, &broker);
}

/// Commits an offset for a group, trying again (bounded) while its coordinator is not ready,
/// and reads it back.
fn commit_within(broker: &Broker, timeout: Duration) {
    use rdkafka::consumer::{CommitMode, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let consumer = broker.consumer(&[("group.id", "after-the-full-disk")]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Offset(1))
        .expect("tpl");
    let deadline = Instant::now() + timeout;
    loop {
        match consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                eprintln!("group commit not taken yet: {e}");
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => panic!("no group commit within {timeout:?} of the disk having room: {e}"),
        }
    }
    let committed = consumer
        .committed_offsets(tpl.clone(), common::CALL_TIMEOUT)
        .expect("OffsetFetch");
    let offset = committed.find_partition(TOPIC, 0).map(|p| p.offset());
    assert_eq!(offset, Some(Offset::Offset(1)));
}

/// The broker really used the small file system (not a fallback directory).
fn assert_data_dir_on(fs: &LoopFs, broker: &Broker) {
    let dir: &Path = &broker.data_dir();
    assert!(dir.starts_with(fs.mount_point()));
    assert!(
        !common::segment_files(dir, TOPIC, 0).is_empty(),
        "segments in {}",
        dir.display()
    );
}
