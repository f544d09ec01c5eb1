//! BitTorrent peer wire: any stream of bytes split at any points frames the same way, every
//! body that parses encodes back to the same message, a handshake that parses encodes back to
//! its 68 bytes, and summaries never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use peershare::bt::wire::{self, Framer, HANDSHAKE_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(hs) = <&[u8; HANDSHAKE_LEN]>::try_from(data.get(..HANDSHAKE_LEN).unwrap_or(&[])) {
        if let Ok(h) = wire::parse_handshake(hs) {
            assert_eq!(&wire::encode_handshake(&h), hs);
            let _ = wire::handshake_summary(&h);
        }
    }
    // Frame the input whole, then in pieces cut at the first byte's value: same bodies.
    let frames = |cut: usize| {
        let mut f = Framer::new(1 << 17);
        let mut out = Vec::new();
        for part in data.chunks(cut.max(1)) {
            f.push(part);
            loop {
                match f.next_body() {
                    Ok(Some(body)) => out.push(Ok(body)),
                    Ok(None) => break,
                    Err(e) => {
                        out.push(Err(e));
                        return out;
                    }
                }
            }
        }
        out
    };
    let whole = frames(data.len());
    let cut = frames(usize::from(data.first().copied().unwrap_or(1)));
    assert_eq!(whole, cut);
    for body in whole.into_iter().flatten() {
        if let Ok(m) = wire::parse(&body) {
            let _ = wire::summary(&m);
            let encoded = wire::encode(&m);
            assert_eq!(wire::parse(&encoded[4..]), Ok(m));
        }
    }
});
