//! Finding the copies of known secrets in files (`wbl scan`): the forms a key leaks in
//! ([`forms`]), one multi-pattern automaton over all of them ([`Needles`]), and the search of
//! one file with bounded memory ([`Needles::search_file`]). The walk over directory trees is
//! [`walk`]. No agent, no output: the command (`cmd::scan`) brings the secrets and prints.

pub mod walk;

use std::io::Read;
use std::path::{Path, PathBuf};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Input, MatchKind};
use base64::Engine;
use zeroize::Zeroizing;

/// Secrets shorter than this (in bytes) are not searched for: a short password also occurs
/// in ordinary text, and every hit must be a real copy.
pub const MIN_SECRET_LEN: usize = 8;

/// How much of a file is read at a time. The search keeps one such buffer per thread (plus
/// the longest needle's length and a byte, carried over so that a copy across two reads is
/// found).
const CHUNK: usize = 256 * 1024;

/// The form a copy of a secret is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Form {
    /// The secret itself.
    Key,
    /// `base64(user:secret)`, as HTTP Basic authentication (`Authorization: Basic …`), a
    /// docker `config.json` `auth` entry or a git `http.extraHeader` writes it.
    BasicAuth,
    /// The secret base64-encoded inside a longer base64 text (a Kubernetes Secret's `data`,
    /// an encoded file): any of the three alignments.
    Base64,
    /// The secret (or its Basic-auth form) percent-encoded, as in a URL or a form body.
    UrlEncoded,
}

impl Form {
    /// Its name in `--json` output.
    pub fn name(self) -> &'static str {
        match self {
            Form::Key => "key",
            Form::BasicAuth => "basic-auth",
            Form::Base64 => "base64",
            Form::UrlEncoded => "url-encoded",
        }
    }

    /// Its description in text output.
    pub fn describe(self) -> &'static str {
        match self {
            Form::Key => "the key itself",
            Form::BasicAuth => "HTTP Basic auth (base64 of user:key)",
            Form::Base64 => "the key base64-encoded",
            Form::UrlEncoded => "the key URL-encoded",
        }
    }
}

/// Bits a base64 character next to a needle must have, as `(mask, value)` over its 6-bit
/// value: the partly determined characters before and after the secret's own ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Around {
    pub before: Option<(u8, u8)>,
    pub after: Option<(u8, u8)>,
}

impl Around {
    fn fits(c: Option<&u8>, want: Option<(u8, u8)>) -> bool {
        match want {
            None => true,
            Some((mask, value)) => c
                .and_then(|&c| base64_value(c))
                .is_some_and(|v| v & mask == value),
        }
    }
}

/// One string to search for: its form, its bytes (zeroed when dropped) and what the
/// characters around it must be.
pub struct Needle {
    pub form: Form,
    pub bytes: Zeroizing<Vec<u8>>,
    pub around: Around,
}

impl Needle {
    fn plain(form: Form, bytes: Zeroizing<Vec<u8>>) -> Needle {
        Needle {
            form,
            bytes,
            around: Around::default(),
        }
    }
}

/// The strings a secret leaks as, each with its form: the secret itself; with a user name,
/// `base64(user:secret)` exactly as a Basic header carries it (always encoded from the start
/// of `user:`, so one alignment); the secret inside longer base64 text in each of the three
/// alignments (the characters that depend on the secret alone, with the bits the character
/// before and after must have); and the percent-encoded secret and Basic value where
/// encoding changes them (upper- and lower-case hex).
pub fn forms(secret: &[u8], user: Option<&str>) -> Vec<Needle> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out: Vec<Needle> = Vec::new();
    out.push(Needle::plain(Form::Key, Zeroizing::new(secret.to_vec())));
    let mut basic = None;
    if let Some(user) = user {
        let mut plain = Zeroizing::new(Vec::with_capacity(user.len() + 1 + secret.len()));
        plain.extend_from_slice(user.as_bytes());
        plain.push(b':');
        plain.extend_from_slice(secret);
        let encoded = Zeroizing::new(b64.encode(&*plain).into_bytes());
        basic = Some(encoded.clone());
        out.push(Needle::plain(Form::BasicAuth, encoded));
    }
    // Inside a longer base64 text the secret starts at byte offset 0, 1 or 2 of a 3-byte
    // group. The characters that encode its bits alone are the same wherever it sits; the
    // character before and after also hold bits of the text around it, so only the bits
    // that are the secret's are checked there: a match then encodes every bit of the secret.
    out.extend((0..3usize).filter_map(|shift| base64_inside(secret, shift)));
    let mut encoded_forms = vec![Zeroizing::new(secret.to_vec())];
    encoded_forms.extend(basic);
    for plain in encoded_forms {
        for upper in [true, false] {
            let enc = percent_encode(&plain, upper);
            if enc[..] != plain[..] && !out.iter().any(|n| n.bytes[..] == enc[..]) {
                out.push(Needle::plain(Form::UrlEncoded, enc));
            }
        }
    }
    out
}

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The 6-bit value of a (standard alphabet) base64 character.
fn base64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// The needle for `secret` inside base64 text when it starts at byte `shift` of a 3-byte
/// group: the characters determined by the secret alone, and the bits of the partly
/// determined character before and after them that are the secret's.
fn base64_inside(secret: &[u8], shift: usize) -> Option<Needle> {
    let (lo, hi) = (8 * shift, 8 * (shift + secret.len()));
    // The 6 bits of character `j` (bits 6j..6j+6 of [0; shift] ++ secret ++ 0...).
    let sextet = |j: usize| -> u8 {
        (0..6).fold(0u8, |v, b| {
            let bit = 6 * j + b;
            let set =
                bit >= lo && bit < hi && secret[(bit - lo) / 8] & (0x80 >> ((bit - lo) % 8)) != 0;
            (v << 1) | u8::from(set)
        })
    };
    let (first_full, end_full) = (lo.div_ceil(6), hi / 6);
    if end_full <= first_full || end_full - first_full < MIN_SECRET_LEN {
        return None;
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(end_full - first_full));
    bytes.extend((first_full..end_full).map(|j| BASE64_ALPHABET[usize::from(sextet(j))]));
    // The character before: its low (6j+6 - lo) bits are the secret's.
    let before = (lo % 6 != 0).then(|| {
        let j = lo / 6;
        let mask = (1u8 << (6 * j + 6 - lo)) - 1;
        (mask, sextet(j) & mask)
    });
    // The character after: its high (hi - 6j) bits are the secret's.
    let after = (hi % 6 != 0).then(|| {
        let j = hi / 6;
        let mask = !((1u8 << (6 - (hi - 6 * j))) - 1) & 0x3f;
        (mask, sextet(j) & mask)
    });
    Some(Needle {
        form: Form::Base64,
        bytes,
        around: Around { before, after },
    })
}

/// `bytes` percent-encoded as a URL component: everything but ASCII letters, digits and
/// `-._~` as `%XX`.
fn percent_encode(bytes: &[u8], upper: bool) -> Zeroizing<Vec<u8>> {
    let hex: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len() * 3));
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', hex[usize::from(b >> 4)], hex[usize::from(b & 15)]]);
        }
    }
    out
}

/// What the search is told about each needle: its form and an index the caller gave it
/// (the credential it belongs to).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeedleInfo {
    pub form: Form,
    pub owner: usize,
}

/// Every needle in one automaton (leftmost-longest, so a Basic-auth value is reported as
/// such rather than as the base64 run inside it). The needles themselves are not kept.
pub struct Needles {
    ac: AhoCorasick,
    info: Vec<NeedleInfo>,
    around: Vec<Around>,
    /// The longest needle, in bytes: how much of one read is carried into the next.
    max_len: usize,
}

/// A copy found: where (1-based line, 1-based byte column) and which needle.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hit {
    pub path: PathBuf,
    pub line: u64,
    pub column: u64,
    pub needle: NeedleInfo,
}

impl PartialOrd for NeedleInfo {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for NeedleInfo {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.owner, self.form).cmp(&(other.owner, other.form))
    }
}

/// What became of one file's search.
#[derive(Debug)]
pub enum FileOutcome {
    /// Searched (possibly with hits).
    Searched { bytes: u64 },
    /// Holds a NUL byte in its first block: taken as binary and skipped.
    Binary,
}

impl Needles {
    /// The automaton over `needles`, each with its owner (duplicates are kept once: the
    /// first owner wins). `None` when there is nothing to search for.
    pub fn new(needles: &[(usize, Needle)]) -> Option<Needles> {
        let mut kept: Vec<&[u8]> = Vec::new();
        let mut info = Vec::new();
        let mut around = Vec::new();
        for (owner, n) in needles {
            if n.bytes.is_empty() || kept.contains(&&n.bytes[..]) {
                continue;
            }
            kept.push(&n.bytes[..]);
            info.push(NeedleInfo {
                form: n.form,
                owner: *owner,
            });
            around.push(n.around);
        }
        if kept.is_empty() {
            return None;
        }
        let max_len = kept.iter().map(|n| n.len()).max().unwrap_or(1);
        let ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&kept)
            .ok()?;
        Some(Needles {
            ac,
            info,
            around,
            max_len,
        })
    }

    /// How many distinct needles there are.
    pub fn len(&self) -> usize {
        self.info.len()
    }

    /// True when there are none (never: [`Needles::new`] returns `None` then).
    pub fn is_empty(&self) -> bool {
        self.info.is_empty()
    }

    /// Searches `file` (already open, regular, `len` bytes long when listed) in `CHUNK`-sized
    /// reads, pushing each copy found onto `hits`. Reads at most `len` bytes, so a file that
    /// grows while it is read does not keep the search going; one that shrinks ends early.
    /// `binary`: also search files that look binary.
    pub fn search(
        &self,
        path: &Path,
        mut file: impl Read,
        len: u64,
        binary: bool,
        buf: &mut Vec<u8>,
        hits: &mut Vec<Hit>,
    ) -> std::io::Result<FileOutcome> {
        // The longest needle and a byte on each side of it (the base64 forms check them).
        let carry_max = self.max_len + 1;
        // Every byte searched is read first: the buffer is not cleared between files.
        if buf.len() != CHUNK + carry_max {
            buf.clear();
            buf.resize(CHUNK + carry_max, 0);
        }
        let mut remaining = len;
        // Bytes at the front of `buf` kept from the previous read.
        let mut carry = 0usize;
        // The line number of buf[0], and where (in buf coordinates, possibly negative: before
        // buf[0]) the line holding buf[0] starts.
        let mut line_at_start: u64 = 1;
        let mut line_start: i64 = 0;
        let mut first = true;
        let mut total = 0u64;
        loop {
            // Fill the buffer after the carried bytes, up to `remaining`.
            let room = (buf.len() - carry).min(usize::try_from(remaining).unwrap_or(usize::MAX));
            let mut filled = 0;
            while filled < room {
                match file.read(&mut buf[carry + filled..carry + room]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            remaining -= filled as u64;
            total += filled as u64;
            let end = carry + filled;
            let eof = filled < room || remaining == 0;
            if first {
                first = false;
                if !binary && memchr::memchr(0, &buf[..end]).is_some() {
                    return Ok(FileOutcome::Binary);
                }
            }
            let hay = &buf[..end];
            // Counting lines up to each hit, from the previous one.
            let (mut counted, mut line) = (0usize, line_at_start);
            let mut pos = 0;
            while let Some(m) = self.ac.find(Input::new(hay).range(pos..)) {
                // Handled by the previous read (its next byte was there): skip.
                if m.end() < carry {
                    pos = m.end();
                    continue;
                }
                // Its next byte is not read yet: the next read handles it.
                if m.end() == end && !eof {
                    break;
                }
                let at = m.start();
                let i = m.pattern().as_usize();
                let around = self.around[i];
                if !Around::fits(at.checked_sub(1).map(|b| &hay[b]), around.before)
                    || !Around::fits(hay.get(m.end()), around.after)
                {
                    // Not this secret: a copy may still start inside it.
                    pos = at + 1;
                    continue;
                }
                pos = m.end();
                // A base64 copy starts at the character that holds the secret's first bits.
                let at = if around.before.is_some() { at - 1 } else { at };
                if at >= counted {
                    line += memchr::memchr_iter(b'\n', &hay[counted..at]).count() as u64;
                } else {
                    line -= memchr::memchr_iter(b'\n', &hay[at..counted]).count() as u64;
                }
                counted = at;
                let lstart = match memchr::memrchr(b'\n', &hay[..at]) {
                    Some(nl) => nl as i64 + 1,
                    None => line_start,
                };
                hits.push(Hit {
                    path: path.to_path_buf(),
                    line,
                    column: (at as i64 - lstart) as u64 + 1,
                    needle: self.info[i],
                });
            }
            if eof {
                return Ok(FileOutcome::Searched { bytes: total });
            }
            // Keep the last `carry_max` bytes; the line count moves to the new buf[0].
            let keep = carry_max.min(end);
            let cut = end - keep;
            line_at_start += memchr::memchr_iter(b'\n', &hay[..cut]).count() as u64;
            line_start = match memchr::memrchr(b'\n', &hay[..cut]) {
                Some(nl) => nl as i64 + 1 - cut as i64,
                None => line_start - cut as i64,
            };
            buf.copy_within(cut..end, 0);
            carry = keep;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needles(secret: &str, user: Option<&str>) -> Needles {
        let list: Vec<_> = forms(secret.as_bytes(), user)
            .into_iter()
            .map(|n| (0, n))
            .collect();
        Needles::new(&list).unwrap()
    }

    fn find(n: &Needles, text: &[u8]) -> Vec<(u64, u64, Form)> {
        let mut hits = Vec::new();
        let mut buf = Vec::new();
        n.search(
            Path::new("x"),
            text,
            text.len() as u64,
            false,
            &mut buf,
            &mut hits,
        )
        .unwrap();
        hits.into_iter()
            .map(|h| (h.line, h.column, h.needle.form))
            .collect()
    }

    const KEY: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn each_form_is_found_where_it_is() {
        let n = needles(KEY, Some("api"));
        let b64 = base64::engine::general_purpose::STANDARD;
        let basic = b64.encode(format!("api:{KEY}"));
        let text = format!(
            "a\nWANDB_API_KEY={KEY}\nAuthorization: Basic {basic}\n\
             data: {}\n",
            b64.encode(format!("xy{KEY}\n"))
        );
        assert_eq!(
            find(&n, text.as_bytes()),
            vec![
                (2, 15, Form::Key),
                (3, 22, Form::BasicAuth),
                // "xy" then the key: its encoding starts within the third character.
                (4, 9, Form::Base64),
            ]
        );
    }

    #[test]
    fn url_encoded_copies_of_a_key_with_reserved_characters() {
        let secret = "p@ss/w0rd+long";
        let n = needles(secret, Some("me"));
        let text = "https://me:p%40ss%2Fw0rd%2Blong@git.example.com\nq=p%40ss%2fw0rd%2blong";
        assert_eq!(
            find(&n, text.as_bytes()),
            vec![(1, 12, Form::UrlEncoded), (2, 3, Form::UrlEncoded)]
        );
    }

    #[test]
    fn copies_across_reads_are_found_once_with_their_line() {
        let n = needles(KEY, None);
        // Copies around every multiple of CHUNK, with newlines before them.
        let mut text = Vec::new();
        let mut expected = Vec::new();
        let mut line = 1u64;
        for i in 1..5usize {
            let target = i * CHUNK - 20;
            while text.len() < target {
                if text.len() % 100 == 99 {
                    text.push(b'\n');
                    line += 1;
                } else {
                    text.push(b'.');
                }
            }
            let col = text.len() - text.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            text.extend_from_slice(KEY.as_bytes());
            expected.push((line, col as u64 + 1, Form::Key));
        }
        assert_eq!(find(&n, &text), expected);
    }

    #[test]
    fn every_form_is_found_once_wherever_a_read_ends() {
        let n = needles(KEY, Some("api"));
        let b64 = base64::engine::general_purpose::STANDARD;
        let copies = [
            (KEY.to_owned(), Form::Key),
            (b64.encode(format!("api:{KEY}")), Form::BasicAuth),
            (b64.encode(format!("x{KEY}yz")), Form::Base64),
        ];
        for (copy, form) in &copies {
            for at in CHUNK - copy.len() - 3..CHUNK + 3 {
                let mut text = vec![b'.'; at];
                text[10] = b'\n';
                text.extend_from_slice(copy.as_bytes());
                text.extend_from_slice(b" trailing\n");
                let found = find(&n, &text);
                assert_eq!(found.len(), 1, "{form:?} at {at}: {found:?}");
                assert_eq!(found[0].0, 2);
                assert_eq!(found[0].2, *form);
            }
        }
    }

    #[test]
    fn binary_files_are_skipped_unless_asked() {
        let n = needles(KEY, None);
        let text = format!("\0\0ELF{KEY}");
        let (mut hits, mut buf) = (Vec::new(), Vec::new());
        let r = n
            .search(
                Path::new("x"),
                text.as_bytes(),
                text.len() as u64,
                false,
                &mut buf,
                &mut hits,
            )
            .unwrap();
        assert!(matches!(r, FileOutcome::Binary));
        assert!(hits.is_empty());
        n.search(
            Path::new("x"),
            text.as_bytes(),
            text.len() as u64,
            true,
            &mut buf,
            &mut hits,
        )
        .unwrap();
        assert_eq!(hits.len(), 1);
    }

    #[test]
    fn base64_inside_longer_text_in_every_alignment_and_only_the_exact_key() {
        let n = needles(KEY, None);
        let b64 = base64::engine::general_purpose::STANDARD;
        for prefix in ["", "a", "ab", "abc"] {
            for suffix in ["", "\n", "z\n", "zz\n"] {
                let text = b64.encode(format!("{prefix}{KEY}{suffix}"));
                let found = find(&n, text.as_bytes());
                assert_eq!(found.len(), 1, "{prefix:?} {suffix:?}: {found:?}");
                assert_eq!(found[0].2, Form::Base64);
                // A key differing in its first or last bit is not found.
                for other in [format!("1{}", &KEY[1..]), format!("{}6", &KEY[..39])] {
                    let text = b64.encode(format!("{prefix}{other}{suffix}"));
                    assert!(find(&n, text.as_bytes()).is_empty(), "{prefix:?} {other}");
                }
            }
        }
    }

    #[test]
    fn a_growing_file_is_read_up_to_its_length_when_opened() {
        let n = needles(KEY, None);
        let text = format!("{KEY}\n{KEY}\n");
        let (mut hits, mut buf) = (Vec::new(), Vec::new());
        let r = n
            .search(
                Path::new("x"),
                text.as_bytes(),
                41,
                false,
                &mut buf,
                &mut hits,
            )
            .unwrap();
        assert!(matches!(r, FileOutcome::Searched { bytes: 41 }));
        assert_eq!(hits.len(), 1);
    }

    #[test]
    fn nothing_else_matches_other_hex() {
        let n = needles(KEY, Some("api"));
        let text = "commit 0123456789abcdef0123456789abcdef01234568\n\
                    tree 123456789abcdef0123456789abcdef012345670\n";
        assert!(find(&n, text.as_bytes()).is_empty());
    }
}
