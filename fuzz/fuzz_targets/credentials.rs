//! BitTrickle's `credentials.txt`: every two-field line is a user whose password checks.
#![no_main]
use libfuzzer_sys::fuzz_target;
use peershare::bittrickle::credentials::{Check, Credentials};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (creds, bad) = Credentials::parse(&text);
    assert!(creds.len() + bad.len() <= text.lines().count());
    // The last two-field line for a user is the password that checks.
    let mut last = std::collections::HashMap::new();
    for line in text.lines() {
        if let [user, password] = line.split_whitespace().collect::<Vec<_>>().as_slice() {
            last.insert(user.to_string(), password.to_string());
        }
    }
    assert_eq!(last.len(), creds.len());
    for (user, password) in &last {
        assert!(
            matches!(creds.check(user, password), Check::Valid),
            "{user:?}"
        );
    }
});
