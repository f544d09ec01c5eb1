//! P2PTracker++ tracker input: the segmenter and the request parser. Every parsed request,
//! encoded again, parses to itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use peershare::p2ptracker::wire::{self, Request};

fuzz_target!(|data: &[u8]| {
    for seg in wire::split_segments(data) {
        assert!(!seg.is_empty(), "the segmenter yielded an empty segment");
        let Ok(req) = wire::parse_request(seg) else {
            continue;
        };
        let again = match &req {
            Request::LocalChunks { idx, holder } => {
                wire::encode_local_chunks(*idx, &holder.ip, holder.port)
            }
            Request::WhereChunk { idx } => wire::encode_where_chunk(*idx),
            Request::WhereChunkInvalid { text } => format!("WHERE_CHUNK,{text}"),
        };
        let segs = wire::split_segments(again.as_bytes());
        // An echoed invalid index may itself hold a keyword; only whole-segment cases compare.
        if segs.len() == 1 {
            assert_eq!(wire::parse_request(segs[0]), Ok(req), "{again:?}");
        }
    }
});
