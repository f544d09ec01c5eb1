//! BitTorrent bencode: the decoder accepts only canonical bencode, so anything it accepts must
//! encode back to exactly the input (a metainfo's info-hash depends on it), and every entry's raw
//! span must be the encoding of its value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use peershare::bt::bencode::{self, Owned, Value};

fn owned(v: &Value<'_>) -> Owned {
    match v {
        Value::Int(n) => Owned::Int(*n),
        Value::Bytes(b) => Owned::Bytes(b.to_vec()),
        Value::List(items) => Owned::List(items.iter().map(owned).collect()),
        Value::Dict(entries) => {
            for e in entries {
                assert_eq!(bencode::encode(&owned(&e.value)), e.raw);
            }
            Owned::Dict(entries.iter().map(|e| (e.key.to_vec(), owned(&e.value))).collect())
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = bencode::decode(data) else { return };
    assert_eq!(bencode::encode(&owned(&value)), data);
});
