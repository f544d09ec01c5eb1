//! BitTorrent-Python messages: any datagram that parses, encoded again, parses to the same
//! message; `encode_piece` writes exactly what `encode` writes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use peershare::torrent::wire::{self, Message};

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = wire::parse(data) else { return };
    let encoded = wire::encode(&msg);
    assert_eq!(wire::parse(&encoded), Ok(msg.clone()));
    if let Message::ChunkSharing {
        src_node_id,
        dest_node_id,
        filename,
        range,
        idx,
        chunk: Some(c),
    } = &msg
    {
        let piece = wire::encode_piece(*src_node_id, *dest_node_id, filename, *range, *idx, c);
        assert_eq!(piece, encoded);
    }
});
