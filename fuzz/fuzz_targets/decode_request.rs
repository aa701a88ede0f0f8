//! Any request frame (size prefix removed) decodes or is refused: never a panic, an abort or an
//! allocation sized by a forged count (every API key and version we serve goes through
//! `decode_request`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = shardlog::api::decode_request(bytes::Bytes::copy_from_slice(data));
});
