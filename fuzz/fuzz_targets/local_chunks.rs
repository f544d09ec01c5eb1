//! `local_chunks.txt`: parse, render, parse again gives the same list; adding a chunk keeps
//! every entry and makes the new one count.
#![no_main]
use libfuzzer_sys::fuzz_target;
use peershare::p2ptracker::chunk_list;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(mut list) = chunk_list::parse(&text) else {
        return;
    };
    let again = chunk_list::parse(&list.render()).expect("a rendered list parses");
    assert_eq!(again.total, list.total);
    assert_eq!(again.entries, list.entries);
    let idx = list.total;
    list.add_chunk(idx);
    let added = chunk_list::parse(&list.render()).expect("a list with an added chunk parses");
    assert_eq!(added.total, list.total);
    assert!(added.entries.iter().any(|e| e.idx == idx));
});
