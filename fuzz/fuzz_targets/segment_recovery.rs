//! A partition opened on any bytes (the active segment's file and its offset index, as a crash
//! or a damaged disk may leave them, read in windows of any size): recovery never panics, and
//! every batch it then serves checks (length, CRC). One glommio executor serves every input;
//! each input gets a fresh directory.
#![no_main]
use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use shardlog::log::group_commit::{Gather, GroupCommit};
use shardlog::log::tail_cache::TailBudget;
use shardlog::log::{batch, Isolation, LogConfig, PartitionLog};

thread_local! {
    static EXECUTOR: RefCell<Option<glommio::LocalExecutor>> = const { RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    // Byte 0: the scan window; bytes 1-2: how many of the rest are the index file.
    let window = 100 + u32::from(data[0]) * 97;
    let index_len = (usize::from(u16::from_be_bytes([data[1], data[2]])) % 256).min(data.len() - 3);
    let (index, log) = data[3..].split_at(index_len);
    let dir = tempfile::tempdir().expect("tempdir");
    let seg_dir = dir.path().join("t-0");
    std::fs::create_dir_all(&seg_dir).expect("dir");
    let base = seg_dir.join(format!("{:020}", 0));
    std::fs::write(base.with_extension("log"), log).expect("write log");
    std::fs::write(base.with_extension("index"), index).expect("write index");
    let path = dir.path().to_path_buf();
    EXECUTOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let first = cell.is_none();
        let executor = cell.get_or_insert_with(|| {
            glommio::LocalExecutorBuilder::default()
                .io_memory(64 << 10)
                .make()
                .expect("executor")
        });
        executor.run(async move {
            if first {
                shardlog::log::segment::probe_device(&path, 0).await.expect("probe");
            }
            let commit = GroupCommit::new(Gather::NONE);
            glommio::spawn_local(commit.clone().run()).detach();
            let config = LogConfig {
                index_interval_bytes: 100,
                ..LogConfig::plain(1 << 20, window)
            };
            let Ok(log) = PartitionLog::open(&path, "t", 0, config, commit.clone(), TailBudget::new(0)).await
            else {
                return;
            };
            let mut at = 0;
            while at < log.high_watermark() {
                let Ok(read) = log.read(at, 10_000, Isolation::ReadUncommitted).await else {
                    break;
                };
                let records = read.records.to_bytes().expect("records");
                if records.is_empty() {
                    break;
                }
                let mut rest = &records[..];
                while !rest.is_empty() {
                    let h = batch::check_stored_batch(rest).expect("only intact batches are served");
                    at = h.last_offset() + 1;
                    rest = &rest[h.total_bytes as usize..];
                }
            }
            let _ = log.close().await;
            let _ = commit.flush_and_stop().await;
        });
    });
    drop(dir);
});
