//! Simple xFS messages (JSON and text commands): a parsed message, encoded, parses to itself
//! and the encoding is a fixed point.
#![no_main]
use libfuzzer_sys::fuzz_target;
use peershare::xfs::wire;

fuzz_target!(|data: &[u8]| {
    let _ = wire::py_bytes_repr(data);
    let Ok(msg) = wire::parse(data) else { return };
    let encoded = wire::encode(&msg);
    let back = wire::parse(&encoded).expect("an encoded message parses");
    assert_eq!(back, msg);
    assert_eq!(wire::encode(&back), encoded);
});
