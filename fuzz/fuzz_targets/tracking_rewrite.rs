//! Engagement-tracking rewriting: any message either rewrites or fails with an error, never
//! a panic; a message with no HTML part rewritten comes back byte for byte.
#![no_main]
use libfuzzer_sys::fuzz_target;
use petrel_tracking::{rewrite_message, RewriteOptions, TokenKeys};

fuzz_target!(|data: &[u8]| {
    let keys = TokenKeys::new(1, b"fuzzing-secret-0123456789").expect("valid key");
    let opts = RewriteOptions {
        base_url: "https://t.example.com".into(),
        open_tracking: true,
        click_tracking: true,
        initial_open: true,
        expires_unix: u64::MAX,
        subaccount: 7,
    };
    if let Ok(r) = rewrite_message(data, "0123456789abcdef0000", "a@b.example", &keys, &opts) {
        if r.html_parts_rewritten == 0 {
            assert_eq!(r.message, data);
        }
    }
});
