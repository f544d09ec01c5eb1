//! BitTrickle request datagrams: a parsed request, encoded, parses to itself, and the encoding
//! is a fixed point. The `200 ip port` reply reader never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use peershare::bittrickle::wire;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = wire::parse(data) {
        let encoded = wire::encode(&req);
        assert_eq!(wire::parse(&encoded), Ok(req));
        let twice = wire::encode(&wire::parse(&encoded).expect("parsed once"));
        assert_eq!(twice, encoded);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some((ip, port)) = wire::parse_peer_address(text) {
            let reply = wire::encode_reply(&wire::Reply::PeerAddress {
                ip: ip.clone(),
                port,
            });
            assert_eq!(wire::parse_peer_address(&reply), Some((ip, port)));
        }
    }
});
