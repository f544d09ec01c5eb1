//! xFS `latency.txt`: no panic; every readable entry is what `latency_ms` answers for its pair
//! (the first line for a pair wins, as the original's linear scan does).
#![no_main]
use libfuzzer_sys::fuzz_target;
use peershare::xfs::latency::LatencyTable;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (table, bad) = LatencyTable::parse(&text);
    assert!(table.entries.len() + bad.len() <= text.lines().count());
    for e in &table.entries {
        let ms = table.latency_ms(e.src, e.dst);
        let first = table
            .entries
            .iter()
            .find(|f| f.src == e.src && f.dst == e.dst);
        assert_eq!(Some(ms), first.map(|f| f.ms), "{e:?}");
    }
});
