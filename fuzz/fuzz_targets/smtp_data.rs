//! The DATA reader: feeding bytes whole or split must give the same message and end.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let split = data[0] as usize % data.len();
    let input = &data[1..];
    let mut whole = Vec::new();
    let end_whole = petrel_smtp::DataReader::new(None).feed(input, &mut whole);
    let mut parts = Vec::new();
    let mut r = petrel_smtp::DataReader::new(None);
    let split = split.min(input.len());
    let end_parts = match r.feed(&input[..split], &mut parts) {
        Some(e) => Some(e.consumed),
        None => r.feed(&input[split..], &mut parts).map(|e| e.consumed + split),
    };
    assert_eq!(end_whole.map(|e| e.consumed), end_parts);
    if end_whole.is_some() {
        assert_eq!(whole, parts);
    }
});
