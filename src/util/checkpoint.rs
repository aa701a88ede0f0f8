//! One-number checkpoint files (the next producer id, a partition's log start offset): a line
//! `v1 <number> <crc32c of the number's decimal digits, hex>`, replaced whole (write to a
//! temporary file, fdatasync, rename, directory sync), so a reader finds the old value or the
//! new one, and damage is detected rather than read as another number.

use std::io;
use std::path::Path;

use super::blocking;

pub fn encode(value: i64) -> String {
    let digits = value.to_string();
    format!("v1 {digits} {:08x}\n", crc32c::crc32c(digits.as_bytes()))
}

pub fn decode(text: &str) -> Option<i64> {
    let mut words = text.split_whitespace();
    if words.next()? != "v1" {
        return None;
    }
    let digits = words.next()?;
    let crc = u32::from_str_radix(words.next()?, 16).ok()?;
    if crc32c::crc32c(digits.as_bytes()) != crc || words.next().is_some() {
        return None;
    }
    digits.parse().ok().filter(|n: &i64| *n >= 0)
}

/// The value in `path`: `Ok(None)` when the file does not exist, an error naming the file
/// when it is damaged, with `what_to_do` about it.
pub async fn read(path: &Path, what_to_do: &str) -> io::Result<Option<i64>> {
    match blocking::read_if_exists(path).await {
        None => Ok(None),
        Some(bytes) => String::from_utf8(bytes)
            .ok()
            .and_then(|t| decode(&t))
            .map(Some)
            .ok_or_else(|| io::Error::other(format!("{}: damaged; {what_to_do}", path.display()))),
    }
}

/// Replaces `path` with `value`, durably. On failure (a full disk) the temporary file is
/// removed and `path` keeps the old value or the new one (a failed directory sync: the rename
/// may or may not survive a crash); callers act on the new value only once this succeeded.
pub async fn write(path: &Path, value: i64) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let text = encode(value).into_bytes();
    let tmp2 = tmp.clone();
    let written = blocking::run(move || {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp2)?;
        f.write_all(&text)?;
        f.sync_data()
    })
    .await
    .map_err(|e| blocking::with_path(e, &tmp));
    let renamed = match written {
        Ok(()) => blocking::rename(&tmp, path).await,
        Err(e) => Err(e),
    };
    if let Err(e) = renamed {
        blocking::remove_file(&tmp).await;
        return Err(e);
    }
    if let Some(dir) = path.parent() {
        blocking::sync_dir(dir).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line round-trips, and damage is detected rather than read as another number.
    #[test]
    fn format() {
        assert_eq!(decode(&encode(0)), Some(0));
        assert_eq!(decode(&encode(123_000)), Some(123_000));
        assert_eq!(decode("v1 123000 00000000\n"), None);
        assert_eq!(decode(&encode(5).replace('5', "6")), None);
        assert_eq!(decode(""), None);
    }
}
