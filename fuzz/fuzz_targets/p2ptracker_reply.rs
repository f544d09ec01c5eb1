//! P2PTracker++ client side: the tracker reply parser and a peer's `REQUEST_CHUNK`. A parsed
//! holder list, encoded again, parses to the same list.
#![no_main]
use libfuzzer_sys::fuzz_target;
use peershare::p2ptracker::wire::{self, Reply};

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let asked = u32::from(u16::from_le_bytes([data[0], data[1]])) * 16 + u32::from(data[2] & 15);
    let body = &data[3..];
    if let Some(Reply::Holders(holders)) = wire::parse_reply(body, asked) {
        let (text, used) = wire::encode_get_chunk_from(asked, &holders);
        let back = wire::parse_reply(text.as_bytes(), asked);
        assert_eq!(
            back,
            Some(Reply::Holders(holders[..used].to_vec())),
            "{text:?}"
        );
    }
    if let Some(idx) = wire::parse_request_chunk(body) {
        let text = wire::encode_request_chunk(idx);
        assert_eq!(wire::parse_request_chunk(text.as_bytes()), Some(idx));
    }
    let _ = wire::parse_reply(body, 1);
});
