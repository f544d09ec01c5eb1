//! BitTorrent trackers: BEP 15 datagrams either way and BEP 3 HTTP announce lines and replies.
//! Whatever parses, encoded again, parses to the same value; summaries never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use peershare::bt::{announce, udp_tracker};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = udp_tracker::parse_request(data) {
        let _ = udp_tracker::request_summary(&r);
        assert_eq!(udp_tracker::parse_request(&udp_tracker::encode_request(&r)), Ok(r));
    }
    if let Ok(r) = udp_tracker::parse_reply(data) {
        let _ = udp_tracker::reply_summary(&r);
        assert_eq!(udp_tracker::parse_reply(&udp_tracker::encode_reply(&r)), Ok(r));
    }
    if let Ok(r) = announce::parse_reply(data) {
        let _ = announce::reply_summary(&r);
        // Compact form only carries IPv4 addresses and drops peer ids: compare what it keeps.
        let again = announce::parse_reply(&announce::encode_reply(&r, true));
        let addrs = |r: &announce::AnnounceReply| r.peers.iter().map(|p| p.addr).collect::<Vec<_>>();
        assert_eq!(again.as_ref().map(addrs), Ok(addrs(&r)));
    }
    if let Ok(line) = std::str::from_utf8(data) {
        if let Ok(announce::HttpRequest::Announce(a)) = announce::parse_request_line(line) {
            let _ = announce::announce_summary(&a);
            let target = announce::announce_target("/announce", &a);
            let again = announce::parse_request_line(&format!("GET {target} HTTP/1.0"));
            assert_eq!(again, Ok(announce::HttpRequest::Announce(a)));
        }
    }
});
