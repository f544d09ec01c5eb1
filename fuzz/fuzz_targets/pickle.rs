//! The allow-list pickle decoder: no panic, and any accepted value re-encoded (protocol 3)
//! decodes to itself; the encoding is a fixed point.
#![no_main]
use libfuzzer_sys::fuzz_target;
use peershare::torrent::pickle;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = pickle::decode(data) else {
        return;
    };
    let encoded = pickle::encode(&value);
    let back = pickle::decode(&encoded).expect("an encoded value decodes");
    assert_eq!(back, value);
    assert_eq!(pickle::encode(&back), encoded);
});
