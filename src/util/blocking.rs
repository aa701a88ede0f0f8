//! File-system calls io_uring cannot make (directory listing and sync, rename, recursive
//! removal, small whole-file reads and writes) run on the executor's blocking thread pool, so
//! the shard's reactor keeps serving while the kernel works.

use std::io;
use std::path::{Path, PathBuf};

/// Runs `f` on the current executor's blocking pool and waits for its result.
pub async fn run<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    glommio::executor().spawn_blocking(f).await
}

/// The error of a file-system call, naming the path (every error says which file).
pub fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Makes a directory's entries (a new file, a renamed file, a new subdirectory) durable.
/// glommio's `Directory` cannot open directories on every file system here (EBADF on ext4
/// over virtio), so this opens and syncs it on the blocking pool.
pub async fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = dir.to_path_buf();
    run(move || {
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| with_path(e, &dir))
    })
    .await
}

/// Makes a file's data and size durable (after a truncate that followed its last sync).
pub async fn sync_file(path: &Path) -> io::Result<()> {
    let path = path.to_path_buf();
    run(move || {
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(|e| with_path(e, &path))
    })
    .await
}

/// Whether `path` exists.
pub async fn exists(path: &Path) -> bool {
    let path = path.to_path_buf();
    run(move || path.exists()).await
}

/// Creates `dir` and its parents.
pub async fn create_dir_all(dir: &Path) -> io::Result<()> {
    let dir = dir.to_path_buf();
    run(move || std::fs::create_dir_all(&dir).map_err(|e| with_path(e, &dir))).await
}

/// The names of the entries of `dir`.
pub async fn list_dir(dir: &Path) -> io::Result<Vec<String>> {
    let dir = dir.to_path_buf();
    run(move || {
        let entries = std::fs::read_dir(&dir).map_err(|e| with_path(e, &dir))?;
        Ok(entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect())
    })
    .await
}

/// Removes `dir` and everything in it.
pub async fn remove_dir_all(dir: &Path) -> io::Result<()> {
    let dir = dir.to_path_buf();
    run(move || std::fs::remove_dir_all(&dir).map_err(|e| with_path(e, &dir))).await
}

/// Renames `from` to `to` (atomic on one file system).
pub async fn rename(from: &Path, to: &Path) -> io::Result<()> {
    let (from, to): (PathBuf, PathBuf) = (from.to_path_buf(), to.to_path_buf());
    run(move || std::fs::rename(&from, &to).map_err(|e| with_path(e, &to))).await
}

/// A small file's bytes (an index), or `None` when it does not exist or cannot be read.
pub async fn read_if_exists(path: &Path) -> Option<Vec<u8>> {
    let path = path.to_path_buf();
    run(move || std::fs::read(path).ok()).await
}

/// Writes a small file whole (a probe file).
pub async fn write(path: &Path, bytes: Vec<u8>) -> io::Result<()> {
    let path = path.to_path_buf();
    run(move || std::fs::write(&path, bytes).map_err(|e| with_path(e, &path))).await
}

/// Removes a file, ignoring a missing one.
pub async fn remove_file(path: &Path) {
    let path = path.to_path_buf();
    run(move || {
        let _ = std::fs::remove_file(path);
    })
    .await
}

/// Removes a file, reporting failure (a missing file is not one).
pub async fn remove_file_if_exists(path: &Path) -> io::Result<()> {
    let path = path.to_path_buf();
    run(move || match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(with_path(e, &path)),
        _ => Ok(()),
    })
    .await
}

/// Appends `bytes`, whole records of `record_bytes` each, to a file (creating it) and makes
/// them durable before returning: small records that must survive a crash once answered
/// (aborted transaction index entries). The append starts at the end of the last whole record:
/// a part of a record that an earlier append left (the disk filled, or the broker stopped,
/// mid-write) is overwritten rather than shifting every later record off its boundary. A
/// failed append is cut back off for the same reason.
pub async fn append_synced(path: &Path, bytes: Vec<u8>, record_bytes: usize) -> io::Result<()> {
    let path = path.to_path_buf();
    run(move || {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| with_path(e, &path))?;
        let len = f.metadata().map_err(|e| with_path(e, &path))?.len();
        let whole = len - len % record_bytes.max(1) as u64;
        let appended = (|| {
            if whole != len {
                f.set_len(whole)?;
            }
            f.seek(SeekFrom::Start(whole))?;
            f.write_all(&bytes)?;
            f.sync_data()
        })();
        if appended.is_err() {
            let _ = f.set_len(whole);
        }
        appended.map_err(|e| with_path(e, &path))
    })
    .await
}
