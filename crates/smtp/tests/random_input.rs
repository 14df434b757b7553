//! A quick, deterministic stand-in for the fuzzers that runs with `cargo test`: thousands of
//! random and mutated command lines and DATA streams must never panic, and the DATA reader
//! must agree with itself however the input is split. (`fuzz/` has the libFuzzer targets.)

use petrel_smtp::{parse_command, DataReader};

mod common;

use common::{mutate, XorShift};

const SEEDS: &[&[u8]] = &[
    b"MAIL FROM:<a@b.example> SIZE=5000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=x+2B\r\n",
    b"RCPT TO:<@r.example:j@x.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;j+40x\r\n",
    b"EHLO [127.0.0.1]\r\n",
    b"AUTH PLAIN AHVzZXIAcGFzcw==\r\n",
    b"BDAT 100 LAST\r\n",
    b"Subject: x\r\n\r\n..a\r\n.\rb\n.\n.\r\n",
];

#[test]
fn parser_and_data_reader_survive_random_input() {
    let mut rng = XorShift(0x5eed_1234_abcd_9876);
    for i in 0..20_000 {
        let input: Vec<u8> = if i % 3 == 0 {
            (0..(rng.next() % 200))
                .map(|_| (rng.next() & 0xff) as u8)
                .collect()
        } else {
            let seed = SEEDS[(rng.next() as usize) % SEEDS.len()];
            mutate(&mut rng, seed, b"<>@:=,.\r\n \"\\+", b'.')
        };
        let _ = parse_command(&input);

        let mut whole = Vec::new();
        let end_whole = DataReader::new(Some(64))
            .feed(&input, &mut whole)
            .map(|e| e.consumed);
        let split = if input.is_empty() {
            0
        } else {
            (rng.next() as usize) % input.len()
        };
        let mut parts = Vec::new();
        let mut r = DataReader::new(Some(64));
        let end_parts = match r.feed(&input[..split], &mut parts) {
            Some(e) => Some(e.consumed),
            None => r
                .feed(&input[split..], &mut parts)
                .map(|e| e.consumed + split),
        };
        assert_eq!(end_whole, end_parts, "input {input:?} split at {split}");
        if end_whole.is_some() {
            assert_eq!(whole, parts, "input {input:?} split at {split}");
        }
        assert!(canonical(&whole), "input {input:?} stored as {whole:?}");
    }
}

/// CRLF line ends only and no line over 998 octets: what the DATA reader stores.
fn canonical(out: &[u8]) -> bool {
    out.iter().enumerate().all(|(i, &b)| match b {
        b'\n' => i > 0 && out[i - 1] == b'\r',
        b'\r' => i + 1 == out.len() || out[i + 1] == b'\n',
        _ => true,
    }) && out.split(|&b| b == b'\n').all(|l| l.len() <= 999)
}
