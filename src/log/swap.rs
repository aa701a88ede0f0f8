//! The swap of a cleaned group of segments for the segments it replaces, crash-safe: the
//! cleaner's commit protocol, and what a partition's open does to finish or drop a swap a crash
//! interrupted. See README "Compaction".
//!
//! A cleaned group is written as `<base>.log.cleaned` (with `.index`, `.timeindex`, `.txnindex`
//! beside it) and synced; then `<base>.swap`, holding the end of the group, is made durable:
//! the commit point. Then the other old segments of the group are removed, the cleaned files
//! renamed over the first one, and the marker removed.

use std::io;
use std::path::{Path, PathBuf};

use super::segment;
use crate::util::{blocking, checkpoint};

/// Removes a cleaning's uncommitted files.
pub(super) async fn remove_cleaned(dir: &Path, base: i64) {
    for ext in SEGMENT_EXTENSIONS {
        blocking::remove_file(&cleaned_path(dir, base, ext)).await;
    }
}

/// The name of a cleaned file before its swap: `<base>.<ext>.cleaned`.
pub(super) fn cleaned_path(dir: &Path, base: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base:020}.{ext}.cleaned"))
}

pub(super) fn swap_marker(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}.swap"))
}

/// The files a segment based at `base` may have.
pub(super) const SEGMENT_EXTENSIONS: [&str; 4] = ["index", "timeindex", "txnindex", "log"];

/// Swaps a cleaned group in for the segments based in `[base, end)`. The commit point is the
/// durable `<base>.swap` marker holding `end`: before it, the old segments are whole and the
/// `.cleaned` files are removed at the next start; from it on, `finish_swap` (now, or at the
/// next start) removes the old segments and renames the cleaned files over them. A kill -9
/// anywhere leaves the old segments or the new one, never a mix.
pub(super) async fn swap(dir: &Path, base: i64, end: i64) -> io::Result<()> {
    checkpoint::write(&swap_marker(dir, base), end).await?;
    finish_swap(dir, base, end).await
}

/// The committed half of `swap`, safe to repeat: removes the other old segments of the
/// group, renames each cleaned file to its final name (the `.log` last), syncs the directory
/// and removes the marker.
pub(super) async fn finish_swap(dir: &Path, base: i64, end: i64) -> io::Result<()> {
    for name in blocking::list_dir(dir).await? {
        let Some(b) = segment::parse_log_file_name(&name) else {
            continue;
        };
        if b > base && b < end {
            let path = dir.join(&name);
            for ext in SEGMENT_EXTENSIONS {
                blocking::remove_file(&path.with_extension(ext)).await;
            }
        }
    }
    let old = dir.join(segment::log_file_name(base));
    if blocking::exists(&cleaned_path(dir, base, "log")).await
        && !blocking::exists(&cleaned_path(dir, base, "txnindex")).await
    {
        // The old first segment's aborted transactions were carried into the cleaned index
        // when there were any; with none, no index goes with the cleaned segment.
        blocking::remove_file(&old.with_extension("txnindex")).await;
    }
    for ext in SEGMENT_EXTENSIONS {
        let cleaned = cleaned_path(dir, base, ext);
        if blocking::exists(&cleaned).await {
            blocking::rename(&cleaned, &old.with_extension(ext)).await?;
        }
    }
    blocking::sync_dir(dir).await?;
    blocking::remove_file(&swap_marker(dir, base)).await;
    blocking::sync_dir(dir).await
}

/// At a partition's open, before its segments are listed: finishes every committed swap and
/// removes the files of cleanings that did not commit.
pub async fn recover_swaps(dir: &Path) -> io::Result<()> {
    let names = blocking::list_dir(dir).await?;
    for name in &names {
        let Some(base) = name
            .strip_suffix(".swap")
            .filter(|b| b.len() == 20 && b.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|b| b.parse::<i64>().ok())
        else {
            continue;
        };
        let marker = dir.join(name);
        let Some(end) = checkpoint::read(
            &marker,
            "remove it and the .cleaned files beside it: the old segments are whole",
        )
        .await?
        else {
            continue;
        };
        tracing::info!(dir = %dir.display(), base, end, "finishing a cleaned segment's swap");
        finish_swap(dir, base, end).await?;
    }
    for name in blocking::list_dir(dir).await? {
        if name.ends_with(".cleaned") {
            tracing::info!(dir = %dir.display(), file = %name, "removing a cleaning's file that was not swapped in");
            blocking::remove_file(&dir.join(&name)).await;
        }
    }
    Ok(())
}
