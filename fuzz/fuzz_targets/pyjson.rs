//! `core::pyjson`: no panic at any depth limit, and a parsed value dumped the way `json.dumps`
//! writes it parses back to itself and dumps to the same bytes (the canonical form).
#![no_main]
use libfuzzer_sys::fuzz_target;
use peershare::core::pyjson;

#[path = "../common/json_dump.rs"]
mod json_dump;

fuzz_target!(|data: &[u8]| {
    let Some((&depth, body)) = data.split_first() else {
        return;
    };
    let depth = usize::from(depth % 40);
    let Ok(value) = pyjson::parse(body, depth) else {
        return;
    };
    let text = json_dump::dump(&value);
    let back = pyjson::parse(text.as_bytes(), depth).expect("a dumped value parses");
    assert_eq!(back, value);
    assert_eq!(json_dump::dump(&back), text);
});
