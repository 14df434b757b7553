//! Signing cost per key size: `cargo run --release -p petrel-dkim --example sign_speed`.
//!
//! Compares the 1024-bit path (RustCrypto `rsa`) with the 2048-bit path (`ring`) on the
//! test fixtures; docs/dkim.md quotes its figures. A measuring tool, not a test.

use std::path::Path;
use std::time::{Instant, SystemTime};

use petrel_dkim::{sign, DkimKey, SignOptions};

fn main() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let message =
        b"From: news@legacy.example\r\nTo: reader@example.net\r\nSubject: speed\r\n\r\nbody\r\n";
    for (file, rounds) in [
        ("rsa1024.pem", 1000u32),
        ("rsa1100.pem", 1000),
        ("mypmta.pmta.signalsdemo.trymsys.net.pem", 1000),
    ] {
        let key = DkimKey::load("speed", "legacy.example", fixtures.join(file)).unwrap();
        let opts = SignOptions::default();
        let start = Instant::now();
        for _ in 0..rounds {
            sign(message, &key, &opts, SystemTime::now()).unwrap();
        }
        let per = start.elapsed() / rounds;
        println!("{:>5}-bit RSA ({file}): {per:?} per signature", key.bits());
    }
}
