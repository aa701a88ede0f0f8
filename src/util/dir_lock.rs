//! One broker per data directory: an exclusive `flock` on `<data dir>/.lock`, held for the
//! life of the process (the kernel releases it when the process ends, however it ends, so a
//! kill -9 leaves no stale lock). Kafka does the same with a `.lock` in each log directory.
//! The file holds the holder's pid, so the refusal can name the other process.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = ".lock";

/// The data directory's lock, held while this lives.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    pub path: PathBuf,
}

impl DirLock {
    /// Takes the lock on `dir`, or fails with an error naming the process holding it.
    pub fn acquire(dir: &Path) -> io::Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot open the data directory's lock file {}: {e}",
                        path.display()
                    ),
                )
            })?;
        // SAFETY: a plain syscall on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    "another process".to_string()
                } else {
                    format!("another process (pid {holder})")
                };
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "data directory {} is in use by {who}, which holds {}: stop it, or give this broker another --data-dir",
                        dir.display(),
                        path.display()
                    ),
                ));
            }
            return Err(io::Error::new(
                e.kind(),
                format!("cannot lock {}: {e}", path.display()),
            ));
        }
        let wrote = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        if let Err(e) = wrote {
            return Err(io::Error::new(
                e.kind(),
                format!(
                    "cannot write this broker's pid into {}: {e}",
                    path.display()
                ),
            ));
        }
        Ok(DirLock { _file: file, path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second lock on the same directory fails and names the holder's pid; once the first
    /// is dropped, the lock can be taken again.
    #[test]
    fn one_holder_at_a_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DirLock::acquire(dir.path()).expect("first");
        let second = DirLock::acquire(dir.path()).expect_err("second");
        assert_eq!(second.kind(), io::ErrorKind::AddrInUse);
        let text = second.to_string();
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        drop(first);
        DirLock::acquire(dir.path()).expect("again");
    }
}
