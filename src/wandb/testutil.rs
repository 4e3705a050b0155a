//! Tiny deterministic random source for no-panic tests (no extra crates).

/// A 64-bit linear congruential generator (Knuth's MMIX constants).
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Lcg(seed.wrapping_mul(6364136223846793005).wrapping_add(1))
    }

    pub fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        self.next_u32() as usize % n
    }

    /// Random bytes, biased towards characters that matter to our parsers.
    pub fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        const INTERESTING: &[u8] =
            b" \t\r\n\"'\\#=:;[]-_./@machinedefaultloginpasswordaccountmacdef";
        let len = self.below(max_len + 1);
        (0..len)
            .map(|_| {
                if self.below(3) == 0 {
                    (self.next_u32() & 0xff) as u8
                } else {
                    INTERESTING[self.below(INTERESTING.len())]
                }
            })
            .collect()
    }

    /// A random string (lossily decoded random bytes, so it also contains
    /// U+FFFD and multi-byte sequences).
    pub fn string(&mut self, max_len: usize) -> String {
        String::from_utf8_lossy(&self.bytes(max_len)).into_owned()
    }

    /// Random text assembled from netrc/INI-ish words, to reach deeper
    /// parser states than pure noise does.
    pub fn wordy(&mut self, words: usize) -> String {
        const WORDS: &[&str] = &[
            "machine",
            "default",
            "login",
            "user",
            "password",
            "account",
            "macdef",
            "m",
            "a.b",
            "\"q w\"",
            "\"",
            "\\",
            "#",
            "# c",
            "\n",
            "\n\n",
            "\r\n",
            "\r",
            " ",
            "\t",
            "x",
            "[default]",
            "[other]",
            "key",
            "=",
            ":",
            ";",
            "value",
            "é",
            "\u{0}",
        ];
        let mut s = String::new();
        for _ in 0..self.below(words + 1) {
            s.push_str(WORDS[self.below(WORDS.len())]);
            if self.below(2) == 0 {
                s.push(' ');
            }
        }
        s
    }
}
