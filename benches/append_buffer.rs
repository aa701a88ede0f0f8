//! Measures the append path of a partition: `Segment::plan_write`, which builds the aligned
//! O_DIRECT buffer for a run of batches (copies the partly filled tail block and the batches,
//! writes their offsets in) and is the only CPU work between a validated produce and its
//! write; and a full `PartitionLog::append` + `durable()` of one 16 KiB batch on the real
//! disk, the write + fdatasync latency an acks=all producer waits for when nothing else is
//! in flight to share the sync.

#[path = "common/mod.rs"]
mod common;

use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use glommio::LocalExecutorBuilder;
use shardlog::log::batch::{self, validate_produce};
use shardlog::log::group_commit::GroupCommit;
use shardlog::log::segment::{probe_device, Segment};
use shardlog::log::{LogConfig, PartitionLog};

use common::KIB;

/// io_memory of the bench executors. A run whose buffer does not fit this pool (the 64-batch,
/// 1 MiB run here) gets a freshly allocated aligned heap buffer from glommio instead, as it
/// would in a shard whose pool is smaller than the run or in use: that case shows the cost of
/// the fallback (page faults on new memory), not of the copy.
const IO_MEMORY: usize = 512 << 10;
/// The benchmarked segment is reset once it passes this size, so it never nears 4 GiB.
const RESET_SEGMENT_AT: u32 = 512 << 20;

/// Builds the write of `run` (its batches back to back) the way `PartitionLog::flush` does:
/// copy each job's bytes into the buffer, then write each batch's base offset in.
fn plan_run(seg: &mut Segment, run: &[Bytes], positions: &[usize], next_offset: &mut i64) {
    let len: usize = run.iter().map(|b| b.len()).sum();
    let base = *next_offset;
    let planned = seg
        .plan_write(len, |buf| {
            let mut at = 0;
            for b in run {
                buf[at..at + b.len()].copy_from_slice(b);
                at += b.len();
            }
            for (i, &pos) in positions.iter().enumerate() {
                batch::assign_offset(&mut buf[pos..], base + i as i64 * 1000, 0);
            }
        })
        .expect("plan_write");
    // What the writer records once the write is done; nothing is written here.
    seg.commit_write(planned.skip_write());
    *next_offset += positions.len() as i64 * 1000;
    if seg.size > RESET_SEGMENT_AT {
        // Pad to the next block so the kept tail is empty, then start over at 0: the
        // segment's tail and size agree again without reopening the file.
        let pad = (seg.file.align_up(u64::from(seg.size)) - u64::from(seg.size)) as usize;
        if pad > 0 {
            let planned = seg.plan_write(pad, |buf| buf.fill(0)).expect("pad");
            seg.commit_write(planned.skip_write());
        }
        seg.size = 0;
    }
}

fn plan_write(c: &mut Criterion) {
    let batch = common::batch_of_size(16 * KIB, 100);
    let dir = tempfile::tempdir().expect("tempdir");
    let ex = LocalExecutorBuilder::default()
        .io_memory(IO_MEMORY)
        .make()
        .expect("executor");
    ex.run(async {
        probe_device(dir.path(), 0).await.expect("probe");
        let mut seg = Segment::create(dir.path(), 0).await.expect("segment");
        let mut group = c.benchmark_group("append_buffer");
        group
            .sample_size(50)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for batches in [1usize, 8, 64] {
            let run: Vec<Bytes> = (0..batches)
                .map(|_| Bytes::copy_from_slice(&batch))
                .collect();
            let positions: Vec<usize> = (0..batches).map(|i| i * batch.len()).collect();
            let bytes = (batches * batch.len()) as u64;
            let mut next_offset = 0i64;
            group.throughput(Throughput::Bytes(bytes));
            group.bench_with_input(
                BenchmarkId::new("plan_write_16KiB_batches", batches),
                &run,
                |b, run| b.iter(|| plan_run(&mut seg, run, &positions, &mut next_offset)),
            );
        }
        group.finish();
        drop(seg);
    });
}

/// One executor thread owns the partition log for the whole benchmark; each measurement
/// sends it a count of appends and gets back the time they took, measured inside.
fn append_durable(c: &mut Criterion) {
    let (req_tx, req_rx) = mpsc::channel::<u64>();
    let (res_tx, res_rx) = mpsc::channel::<Duration>();
    let batch = common::batch_of_size(16 * KIB, 100);
    let bytes = batch.len() as u64;
    let executor = LocalExecutorBuilder::default()
        .io_memory(IO_MEMORY)
        .spawn(move || async move {
            let dir = tempfile::tempdir().expect("tempdir");
            probe_device(dir.path(), 0).await.expect("probe");
            let commit = GroupCommit::new(shardlog::log::group_commit::Gather::NONE);
            glommio::spawn_local(commit.clone().run()).detach();
            let config = LogConfig::plain(
                1 << 30,
                shardlog::log::partition::io_buffer_bytes(IO_MEMORY),
            );
            let log: Rc<PartitionLog> = PartitionLog::open(
                dir.path(),
                "bench",
                0,
                config,
                commit.clone(),
                shardlog::log::tail_cache::TailBudget::new(0),
            )
            .await
            .expect("open log");
            let headers = validate_produce(&batch, 1 << 20).expect("valid batch");
            // Blocking between measurements is fine: the log's tasks are idle then.
            while let Ok(n) = req_rx.recv() {
                let start = Instant::now();
                for _ in 0..n {
                    log.append(batch.clone(), headers.clone())
                        .await
                        .expect("append");
                    log.durable().await.expect("durable");
                }
                res_tx.send(start.elapsed()).expect("send timing");
            }
            log.close().await.expect("close");
            commit.flush_and_stop().await.expect("stop commit");
        })
        .expect("executor");

    let mut group = c.benchmark_group("append_durable");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("append_fdatasync_16KiB", |b| {
        b.iter_custom(|iters| {
            req_tx.send(iters).expect("send");
            res_rx.recv().expect("timing")
        })
    });
    group.finish();
    drop(req_tx);
    executor.join().expect("join executor");
}

criterion_group!(benches, plan_write, append_durable);
criterion_main!(benches);
