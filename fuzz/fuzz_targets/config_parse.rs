//! The configuration parser never panics, whatever the file holds.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    petrel_config::fuzz_parse(data);
});
