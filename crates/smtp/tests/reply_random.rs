//! The reply parser's counterpart to `random_input.rs`: thousands of random and mutated server
//! replies must never panic, a reply must parse the same however the bytes were split (the
//! client feeds it whatever each read returned), and every reply petrel itself writes must
//! parse back to the same value.

use petrel_smtp::{parse_reply, EnhancedCode, Reply};

mod common;

use common::{mutate, XorShift};

const SEEDS: &[&[u8]] = &[
    b"220 mx.example.com ESMTP ready\r\n",
    b"250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n250 \r\n",
    b"550-5.7.1 [192.0.2.1] blocked.\r\n550-5.7.1 See https://x.example/why\r\n550 5.7.1 bye\r\n",
    b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n",
    b"452 4.2.2 mailbox full\n",
    b"421\r\n",
];

#[test]
fn reply_parser_survives_random_input_and_splits() {
    let mut rng = XorShift(0x0dd_ba11_5eed_4242);
    let mut complete = 0;
    for i in 0..20_000 {
        let input: Vec<u8> = if i % 3 == 0 {
            (0..(rng.next() % 200))
                .map(|_| (rng.next() & 0xff) as u8)
                .collect()
        } else {
            let seed = SEEDS[(rng.next() as usize) % SEEDS.len()];
            mutate(&mut rng, seed, b"- .\r\n0592", b'-')
        };
        let whole = parse_reply(&input);
        if let Ok(Some((reply, consumed))) = &whole {
            complete += 1;
            assert!(*consumed <= input.len());
            assert!(!reply.lines.is_empty());
            // Any shorter prefix is still waiting for the final line.
            let cut = (rng.next() as usize) % consumed;
            assert_eq!(
                parse_reply(&input[..cut]),
                Ok(None),
                "input {input:?} cut {cut}"
            );
            // Bytes after the reply do not change it.
            let mut longer = input[..*consumed].to_vec();
            longer.extend_from_slice(b"250 next\r\n");
            assert_eq!(parse_reply(&longer), whole, "input {input:?}");
        }
    }
    // The mutations must leave enough valid replies for the split checks to mean something.
    assert!(complete > 3_000, "only {complete} complete replies");
}

#[test]
fn replies_petrel_writes_parse_back_unchanged() {
    let mut rng = XorShift(0xfeed_beef_0123_4567);
    let words = [
        "ok",
        "PIPELINING",
        "user unknown",
        "<a@b.example>",
        "x",
        "SIZE 10",
        "",
    ];
    for _ in 0..5_000 {
        let code = [220u16, 221, 250, 354, 421, 450, 452, 550, 554][(rng.next() % 9) as usize];
        let enhanced = (code != 354 && rng.next() & 1 == 0).then(|| {
            EnhancedCode(
                (code / 100) as u8,
                (rng.next() % 8) as u16,
                (rng.next() % 12) as u16,
            )
        });
        let n = 1 + (rng.next() % 4) as usize;
        let lines: Vec<String> = (0..n)
            .map(|_| words[(rng.next() as usize) % words.len()].to_string())
            .collect();
        let reply = Reply {
            code,
            enhanced,
            lines,
        };
        let wire = reply.to_wire();
        let (back, consumed) = parse_reply(wire.as_bytes()).unwrap().unwrap();
        assert_eq!(consumed, wire.len());
        assert_eq!(back, reply, "wire {wire:?}");
    }
}
