//! Kafka framing: a 4-byte big-endian size, then that many bytes. Pure: no I/O here;
//! "incomplete" means wait for more bytes.

/// Bytes of the size prefix.
pub const SIZE_PREFIX_BYTES: usize = 4;

#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// A negative size: not a Kafka client.
    Negative(i32),
    /// Larger than `socket.request.max.bytes`.
    TooLarge { size: u32, max: u32 },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Negative(n) => write!(f, "negative frame size {n}"),
            FrameError::TooLarge { size, max } => {
                write!(
                    f,
                    "frame of {size} bytes exceeds socket.request.max.bytes ({max})"
                )
            }
        }
    }
}

/// The size of the frame at the front of `buf` (prefix excluded), once the prefix is there.
/// `Ok(None)`: the prefix is incomplete.
pub fn frame_size(buf: &[u8], max_bytes: u32) -> Result<Option<u32>, FrameError> {
    let Some(prefix) = buf.get(..SIZE_PREFIX_BYTES) else {
        return Ok(None);
    };
    let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    if size < 0 {
        return Err(FrameError::Negative(size));
    }
    let size = size as u32;
    if size > max_bytes {
        return Err(FrameError::TooLarge {
            size,
            max: max_bytes,
        });
    }
    Ok(Some(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prefixes are read, bounded, and incomplete input asks for more.
    #[test]
    fn sizes() {
        assert_eq!(frame_size(&[0, 0], 100), Ok(None));
        assert_eq!(frame_size(&[0, 0, 0, 7, 1], 100), Ok(Some(7)));
        assert_eq!(
            frame_size(&[0xff, 0xff, 0xff, 0xff], 100),
            Err(FrameError::Negative(-1))
        );
        assert_eq!(
            frame_size(&[0, 0, 1, 0], 100),
            Err(FrameError::TooLarge {
                size: 256,
                max: 100
            })
        );
    }
}
