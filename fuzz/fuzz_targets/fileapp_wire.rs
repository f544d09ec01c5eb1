//! FileApp datagrams and the peer request line: each decoder's result, encoded and decoded
//! again, is itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use peershare::fileapp::wire;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = wire::parse_registration(data) {
        assert_eq!(
            wire::parse_registration(&wire::encode_registration(&r)),
            Ok(r)
        );
    }
    if let Ok(items) = wire::parse_offer(data) {
        let names: Vec<String> = items.into_iter().filter_map(Result::ok).collect();
        let back = wire::parse_offer(&wire::encode_offer(&names)).expect("an encoded offer parses");
        assert_eq!(back.into_iter().collect::<Result<Vec<_>, _>>(), Ok(names));
    }
    if let Ok((rows, _skipped)) = wire::parse_table(data) {
        let encoded = wire::encode_table(&rows);
        let (back, skipped) = wire::parse_table(&encoded).expect("an encoded table parses");
        assert!(skipped.is_empty());
        assert_eq!(back, rows);
        let lens = rows.iter().map(|r| wire::encode_entry(r).len());
        assert_eq!(wire::table_len(lens), encoded.len());
    }
    if let Ok((file, who)) = wire::parse_request(data) {
        let encoded = wire::encode_request(&file, &who);
        assert_eq!(encoded, data, "a parsed request line is canonical");
    }
});
