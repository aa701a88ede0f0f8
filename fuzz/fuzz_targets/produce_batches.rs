//! Any produce payload is validated as a produce request's records are: batch framing, CRC,
//! counts, and for compressed batches (whatever their codec) decompression within its bound and
//! the records counted, as Kafka's LogValidator does. Never a panic. The CRC is made right for
//! every batch first, so inputs get past it and reach the records.
#![no_main]
use libfuzzer_sys::fuzz_target;
use shardlog::log::batch;
use shardlog::log::records;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    // Seal each batch the input frames (length at 8..12) with its CRC (over 21.. of the batch).
    let mut at = 0usize;
    while at + 61 <= bytes.len() {
        let len = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        let total = 12usize.saturating_add(len.max(0) as usize);
        if total < 61 || at + total > bytes.len() {
            break;
        }
        let crc = crc32c::crc32c(&bytes[at + 21..at + total]);
        bytes[at + 17..at + 21].copy_from_slice(&crc.to_be_bytes());
        at += total;
    }
    if let Ok(headers) = batch::validate_produce(&bytes, 1 << 20) {
        let mut at = 0usize;
        for h in &headers {
            let total = h.total_bytes as usize;
            let _ = batch::check_producer_fields(h);
            let _ = records::check_produced(h, &bytes[at..at + total]);
            at += total;
        }
    }
});
