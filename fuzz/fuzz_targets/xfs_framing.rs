//! xFS connection framing (`conn::read_message` stops when `wire::json_complete` says so):
//! bytes arriving in any split must frame the same way. An invalid prefix never becomes valid,
//! a complete message stays complete only under trailing whitespace, and the first complete
//! prefix is the whole message as parsed.
#![no_main]
use libfuzzer_sys::fuzz_target;
use peershare::xfs::wire;

fuzz_target!(|data: &[u8]| {
    if data.first() != Some(&b'{') || data.len() > 4096 {
        return;
    }
    let full = wire::json_complete(data);
    let mut first_complete = None;
    for k in 1..=data.len() {
        let prefix = &data[..k];
        match wire::json_complete(prefix) {
            Err(_) => {
                assert!(full.is_err(), "an invalid prefix {prefix:?} became valid");
                break;
            }
            Ok(true) => {
                first_complete.get_or_insert(k);
            }
            Ok(false) => {
                assert!(
                    first_complete.is_none(),
                    "a complete prefix became incomplete"
                );
            }
        }
    }
    if let Some(k) = first_complete {
        let rest_is_space = data[k..].iter().all(|b| b" \t\r\n".contains(b));
        assert_eq!(full == Ok(true), rest_is_space, "{data:?}");
    }
});
