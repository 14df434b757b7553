//! Any byte string given to the command parser yields a command or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = petrel_smtp::parse_command(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(decoded) = petrel_smtp::decode_base64_line(text) {
            let _ = petrel_smtp::parse_plain_response(&decoded);
        }
    }
});
