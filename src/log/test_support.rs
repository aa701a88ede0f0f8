//! What the log layer's unit tests share: an executor to run them on, and a partition opened
//! on a real file system.

use std::path::Path;
use std::rc::Rc;

use super::group_commit::{Gather, GroupCommit};
use super::partition::{LogConfig, PartitionLog};
use super::tail_cache::TailBudget;

/// Runs `f` on a fresh glommio executor with a small io_memory pool.
pub fn run<F: std::future::Future<Output = ()> + 'static>(f: impl FnOnce() -> F + Send + 'static) {
    glommio::LocalExecutorBuilder::default()
        .io_memory(64 << 10)
        .spawn(move || async move { f().await })
        .expect("executor")
        .join()
        .expect("join");
}

/// Opens (or creates) partition `t-0` under `dir` with its own group commit.
pub async fn open_log(dir: &Path, config: LogConfig) -> Rc<PartitionLog> {
    super::segment::probe_device(dir, 0).await.expect("probe");
    let commit = GroupCommit::new(Gather {
        max_wait: std::time::Duration::from_millis(1),
        max_bytes: 4 << 20,
    });
    glommio::spawn_local(commit.clone().run()).detach();
    PartitionLog::open(dir, "t", 0, config, commit, TailBudget::new(1 << 20))
        .await
        .expect("open")
}
