//! Bounded big-endian reads from a byte slice that advance it: for the on-disk formats (producer
//! snapshots, the aborted transaction index, `__transaction_state` records). Bytes from disk:
//! a short read is `None`, never a panic.

/// The next `n` bytes.
pub fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, rest) = b.split_at_checked(n)?;
    *b = rest;
    Some(head)
}

/// The next `N` bytes as an array.
pub fn take_array<const N: usize>(b: &mut &[u8]) -> Option<[u8; N]> {
    let (head, rest) = b.split_first_chunk::<N>()?;
    *b = rest;
    Some(*head)
}

pub fn get_i8(b: &mut &[u8]) -> Option<i8> {
    take_array(b).map(i8::from_be_bytes)
}

pub fn get_i16(b: &mut &[u8]) -> Option<i16> {
    take_array(b).map(i16::from_be_bytes)
}

pub fn get_i32(b: &mut &[u8]) -> Option<i32> {
    take_array(b).map(i32::from_be_bytes)
}

pub fn get_i64(b: &mut &[u8]) -> Option<i64> {
    take_array(b).map(i64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads advance the slice; a short one is `None` and leaves it as it was.
    #[test]
    fn reads() {
        let bytes = [0u8, 1, 0, 0, 0, 2, 7];
        let mut b = &bytes[..];
        assert_eq!(get_i16(&mut b), Some(1));
        assert_eq!(get_i32(&mut b), Some(2));
        assert_eq!(get_i64(&mut b), None);
        assert_eq!(b, &[7]);
        assert_eq!(get_i8(&mut b), Some(7));
        assert_eq!(take(&mut b, 1), None);
    }
}
