//! The DATA reader: feeding bytes whole or split must give the same message and end, and
//! what it stores has CRLF line ends only and no line over 998 octets.
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
    for (i, &b) in whole.iter().enumerate() {
        match b {
            b'\n' => assert!(i > 0 && whole[i - 1] == b'\r', "bare LF stored"),
            b'\r' => assert!(i + 1 == whole.len() || whole[i + 1] == b'\n', "bare CR stored"),
            _ => {}
        }
    }
    assert!(whole.split(|&b| b == b'\n').all(|l| l.len() <= 999), "long line stored");
});
