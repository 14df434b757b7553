//! Returned-mail parsing: any bytes give a verdict, never a panic, and every bounced
//! recipient has an address.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: {
    // libfuzzer-sys aborts on any panic, even one the code under test catches on purpose
    // (petrel-bounce contains mail-parser's panics); uncaught panics still abort.
    let _ = std::panic::take_hook();
}, |data: &[u8]| {
    if let petrel_bounce::Returned::Bounce(b) = petrel_bounce::parse(data) {
        assert!(b.recipients.iter().all(|r| !r.address.is_empty()));
    }
});
