//! Deterministic randomness for the parser robustness tests (no extra dependencies).

/// A tiny xorshift generator: the same seed gives the same inputs on every run.
pub struct XorShift(pub u64);

impl XorShift {
    /// The next pseudo-random number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Up to five random edits of `seed`: insert a random byte, delete one, overwrite one with a
/// byte from `alphabet` (the characters the parser cares about), or insert `filler`.
pub fn mutate(rng: &mut XorShift, seed: &[u8], alphabet: &[u8], filler: u8) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..(rng.next() % 6) {
        let pos = (rng.next() as usize) % (v.len() + 1);
        match rng.next() % 4 {
            0 => v.insert(pos, (rng.next() & 0xff) as u8),
            1 if pos < v.len() => {
                v.remove(pos);
            }
            2 if pos < v.len() => {
                let pick = (rng.next() as usize) % alphabet.len();
                v[pos] = alphabet[pick];
            }
            _ => v.insert(pos, filler),
        }
    }
    v
}
