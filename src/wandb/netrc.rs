//! A netrc reader/editor that keeps the original text, so `wbl` can read
//! credentials exactly like the SDK (Python's `netrc` module) and remove one
//! machine's entries while leaving every other byte of the file untouched.
//!
//! Tokenizer and grammar follow CPython 3.11's `netrc` module:
//! whitespace is space, tab, CR and LF; a token is either `"quoted"` (with
//! `\` escaping the next character) or a run of non-whitespace (with `\`
//! escaping too); `machine NAME`, `default` and `macdef NAME` start top-level
//! items; `login`/`user`, `password`, `account` are entry fields; a `macdef`
//! body runs until a blank line and is never tokenized. Line endings are read
//! like Python's text mode (universal newlines: `\r\n`, `\r`, `\n`).
//!
//! Deliberate differences from CPython, all in the direction of being more
//! predictable:
//! - a token starting with `#` where a keyword is expected always comments
//!   out the rest of its line (CPython sometimes parses the rest of such a
//!   line as tokens, depending on earlier blank lines);
//! - an empty quoted token (`""`) where a keyword is expected is an error
//!   (CPython silently stops reading the file there);
//! - error line numbers are the physical line of the offending token
//!   (CPython's counter is off after comments/macdefs and points past a
//!   token that ends a line);
//! - error messages never quote the offending token, because a bad token
//!   is usually half of a password containing a space.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// A syntax error in a netrc file. Display: `error on line N: msg`, so a
/// caller can print the SDK's
/// `Failed to read netrc file at {path}, error on line {N}: {msg}` from the
/// fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("error on line {line}: {msg}")]
pub struct NetrcParseError {
    /// 1-based physical line number.
    pub line: usize,
    /// What is wrong (never contains token text).
    pub msg: String,
}

impl NetrcParseError {
    fn new(line: usize, msg: impl Into<String>) -> Self {
        NetrcParseError {
            line,
            msg: msg.into(),
        }
    }
}

/// One `machine …` or `default` entry.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// The machine name; `None` for the `default` entry.
    pub machine: Option<String>,
    /// `login` (or `user`) value; empty if absent, like Python.
    pub login: String,
    /// `password` value; empty if absent. Zeroized on drop.
    pub password: Zeroizing<String>,
    /// `account` value; empty if absent.
    pub account: String,
    /// Byte range of the entry in the original text: from the `machine` /
    /// `default` keyword to the end of its last token (closing quote
    /// included). Comments after the last token are not part of it.
    pub span: Range<usize>,
    /// 1-based line on which the entry starts.
    pub line: usize,
}

impl Entry {
    /// The key CPython's `netrc.hosts` uses: the machine name, or
    /// `"default"` for the default entry.
    fn python_key(&self) -> &str {
        self.machine.as_deref().unwrap_or("default")
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let password = if self.password.is_empty() {
            "<empty>"
        } else {
            "<redacted>"
        };
        f.debug_struct("Entry")
            .field("machine", &self.machine)
            .field("login", &self.login)
            .field("password", &password)
            .field("account", &self.account)
            .field("span", &self.span)
            .field("line", &self.line)
            .finish()
    }
}

/// A parsed netrc file together with its original text.
#[derive(Clone, PartialEq, Eq)]
pub struct Netrc {
    text: Zeroizing<String>,
    entries: Vec<Entry>,
}

impl fmt::Debug for Netrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The text holds passwords: show only the redacted entries.
        f.debug_struct("Netrc")
            .field("len", &self.text.len())
            .field("entries", &self.entries)
            .finish()
    }
}

impl Netrc {
    /// Parses netrc text. Never panics; malformed input gives an error with
    /// the line number.
    pub fn parse(text: &str) -> Result<Netrc, NetrcParseError> {
        let entries = Parser::new(text).parse()?;
        Ok(Netrc {
            text: Zeroizing::new(text.to_owned()),
            entries,
        })
    }

    /// All entries in file order (duplicates included).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Python's `netrc.authenticators(machine)`: the entry for exactly
    /// `machine` (the last one if repeated, as later entries overwrite
    /// earlier ones in Python's dict), else the `default` entry.
    pub fn lookup(&self, machine: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.python_key() == machine)
            .or_else(|| {
                self.entries
                    .iter()
                    .rev()
                    .find(|e| e.python_key() == "default")
            })
    }

    /// The (last) entry for exactly `machine`, without `default` fallback.
    pub fn lookup_exact(&self, machine: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.machine.as_deref() == Some(machine))
    }

    /// Removes every `machine` entry named exactly `machine`; see
    /// [`remove_machine`].
    pub fn remove(&self, machine: &str) -> (String, usize) {
        self.remove_where(|e| e.machine.as_deref() == Some(machine))
    }

    /// Removes the entries `pred` selects, keeping every other byte (as [`Netrc::remove`]).
    /// Returns the new text and the number of entries removed.
    pub fn remove_where(&self, pred: impl Fn(&Entry) -> bool) -> (String, usize) {
        let spans: Vec<Range<usize>> = self
            .entries
            .iter()
            .filter(|e| pred(e))
            .map(|e| e.span.clone())
            .collect();
        let n = spans.len();
        (cut_spans(&self.text, spans), n)
    }
}

// ---------------------------------------------------------------------------
// Lexer

/// A token with its position in the original text.
struct Token {
    text: String,
    /// Byte offset of the first character (the opening quote if quoted).
    start: usize,
    /// Byte offset just past the last character (closing quote included).
    end: usize,
    /// Line of `start`.
    line: usize,
    /// Whether the whitespace that ended the token was a newline (which the
    /// lexer has consumed).
    ended_line: bool,
    /// Whether the token was written in quotes (so `""` is a token).
    quoted: bool,
}

/// CPython's `_netrclex`, over a `&str` with universal-newline translation
/// and byte positions.
struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Lexer {
            text,
            pos: 0,
            line: 1,
        }
    }

    /// Next character with `\r\n` and lone `\r` read as `\n`.
    fn read_char(&mut self) -> Option<char> {
        let c = self.text.get(self.pos..)?.chars().next()?;
        self.pos += c.len_utf8();
        match c {
            '\r' => {
                if self.text.as_bytes().get(self.pos) == Some(&b'\n') {
                    self.pos += 1;
                }
                self.line += 1;
                Some('\n')
            }
            '\n' => {
                self.line += 1;
                Some('\n')
            }
            c => Some(c),
        }
    }

    fn is_ws(c: char) -> bool {
        matches!(c, ' ' | '\t' | '\n' | '\r')
    }

    fn next_token(&mut self) -> Option<Token> {
        // Skip whitespace.
        let first = loop {
            let start = self.pos;
            let line = self.line;
            match self.read_char() {
                None => return None,
                Some(c) if Self::is_ws(c) => continue,
                Some(c) => break (c, start, line),
            }
        };
        let (c, start, line) = first;
        let mut text = String::new();
        if c == '"' {
            loop {
                match self.read_char() {
                    // Unterminated quote: CPython returns what it has.
                    None => break,
                    Some('"') => break,
                    Some('\\') => {
                        if let Some(e) = self.read_char() {
                            text.push(e);
                        }
                    }
                    Some(ch) => text.push(ch),
                }
            }
            return Some(Token {
                text,
                start,
                end: self.pos,
                line,
                ended_line: false,
                quoted: true,
            });
        }
        let mut x = c;
        loop {
            if x == '\\' {
                if let Some(e) = self.read_char() {
                    text.push(e);
                }
            } else {
                text.push(x);
            }
            let tok_end = self.pos;
            match self.read_char() {
                None => return Some(self.finish(text, start, tok_end, line, false)),
                Some(n) if Self::is_ws(n) => {
                    return Some(self.finish(text, start, tok_end, line, n == '\n'));
                }
                Some(n) => x = n,
            }
        }
    }

    fn finish(&self, text: String, start: usize, end: usize, line: usize, nl: bool) -> Token {
        Token {
            text,
            start,
            end,
            line,
            ended_line: nl,
            quoted: false,
        }
    }

    /// Python's `instream.readline()`: consume through the next newline.
    /// Returns `None` at EOF, else whether the line was exactly a newline.
    fn read_line(&mut self) -> Option<bool> {
        let mut first = true;
        loop {
            match self.read_char() {
                None => return if first { None } else { Some(false) },
                Some('\n') => return Some(first),
                Some(_) => first = false,
            }
        }
    }

    /// Skip the rest of the line of a `#` comment token.
    fn skip_comment(&mut self, tok: &Token) {
        if !tok.ended_line {
            let _ = self.read_line();
        }
    }
}

// ---------------------------------------------------------------------------
// Parser

struct Parser<'a> {
    lex: Lexer<'a>,
    pushed: Option<Token>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            lex: Lexer::new(text),
            pushed: None,
        }
    }

    fn next(&mut self) -> Option<Token> {
        self.pushed.take().or_else(|| self.lex.next_token())
    }

    fn parse(mut self) -> Result<Vec<Entry>, NetrcParseError> {
        let mut entries = Vec::new();
        while let Some(tok) = self.next() {
            if tok.text.starts_with('#') {
                self.lex.skip_comment(&tok);
                continue;
            }
            let machine = match tok.text.as_str() {
                _ if tok.text.is_empty() => {
                    return Err(NetrcParseError::new(tok.line, "bad toplevel token"));
                }
                "machine" => match self.next() {
                    Some(name) if !name.text.is_empty() => Some(name),
                    Some(name) => {
                        return Err(NetrcParseError::new(name.line, "missing 'machine' name"));
                    }
                    None => {
                        return Err(NetrcParseError::new(tok.line, "missing 'machine' name"));
                    }
                },
                "default" => None,
                "macdef" => {
                    self.skip_macdef(&tok)?;
                    continue;
                }
                _ => return Err(NetrcParseError::new(tok.line, "bad toplevel token")),
            };
            let mut entry = Entry {
                span: tok.start..machine.as_ref().map_or(tok.end, |m| m.end),
                machine: machine.map(|m| m.text),
                login: String::new(),
                password: Zeroizing::new(String::new()),
                account: String::new(),
                line: tok.line,
            };
            self.parse_fields(&mut entry)?;
            entries.push(entry);
        }
        Ok(entries)
    }

    /// Reads `login`/`user`/`password`/`account` fields until the next
    /// top-level keyword (pushed back) or EOF.
    fn parse_fields(&mut self, entry: &mut Entry) -> Result<(), NetrcParseError> {
        while let Some(tok) = self.next() {
            if tok.text.starts_with('#') {
                self.lex.skip_comment(&tok);
                continue;
            }
            if tok.text.is_empty() && tok.quoted {
                return Err(NetrcParseError::new(tok.line, "bad follower token"));
            }
            match tok.text.as_str() {
                "machine" | "default" | "macdef" => {
                    self.pushed = Some(tok);
                    return Ok(());
                }
                "login" | "user" | "account" | "password" => {
                    entry.span.end = tok.end;
                    let value = match self.next() {
                        Some(v) => {
                            entry.span.end = v.end;
                            v.text
                        }
                        None => String::new(),
                    };
                    match tok.text.as_str() {
                        "password" => entry.password = Zeroizing::new(value),
                        "account" => entry.account = value,
                        _ => entry.login = value,
                    }
                }
                _ => return Err(NetrcParseError::new(tok.line, "bad follower token")),
            }
        }
        Ok(())
    }

    /// Skips `macdef NAME` and its body (lines up to a blank line).
    fn skip_macdef(&mut self, kw: &Token) -> Result<(), NetrcParseError> {
        // If the name ended its line, the body starts on the next line;
        // otherwise the rest of this line is the body's first line
        // (CPython reads it with readline() either way).
        let _name = self.next();
        loop {
            match self.lex.read_line() {
                None => {
                    return Err(NetrcParseError::new(
                        kw.line,
                        "Macro definition missing null line terminator.",
                    ));
                }
                Some(true) => return Ok(()),
                Some(false) => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Removal

fn is_hws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn all_hws(s: &str) -> bool {
    s.bytes().all(is_hws)
}

/// Start of the line containing `pos`.
fn line_start(text: &str, pos: usize) -> usize {
    text.as_bytes()
        .get(..pos)
        .and_then(|b| b.iter().rposition(|&c| c == b'\n' || c == b'\r'))
        .map_or(0, |i| i + 1)
}

/// Position of the line terminator at or after `pos` (or the text length).
fn line_end(text: &str, pos: usize) -> usize {
    text.as_bytes()
        .get(pos..)
        .and_then(|b| b.iter().position(|&c| c == b'\n' || c == b'\r'))
        .map_or(text.len(), |i| pos + i)
}

/// Just past the line terminator starting at `le` (`\r\n`, `\r` or `\n`).
fn past_terminator(text: &str, le: usize) -> usize {
    let b = text.as_bytes();
    match (b.get(le), b.get(le + 1)) {
        (Some(b'\r'), Some(b'\n')) => le + 2,
        (Some(b'\r' | b'\n'), _) => le + 1,
        _ => le,
    }
}

/// Removes the given entry spans from `text`, together with the whitespace
/// and line breaks that only existed to hold them:
/// - an entry alone on its line(s) is removed with those whole lines;
/// - an entry sharing a line with other content loses only its own tokens
///   and the blanks that separated it from that content.
fn cut_spans(text: &str, mut spans: Vec<Range<usize>>) -> String {
    spans.retain(|s| s.start < s.end && s.end <= text.len());
    spans.sort_by_key(|s| s.start);
    // Merge spans separated only by spaces/tabs (removed entries side by
    // side on one line) so they are handled as one block.
    let mut merged: Vec<Range<usize>> = Vec::new();
    for s in spans {
        if let Some(last) = merged.last_mut()
            && s.start >= last.end
            && text.get(last.end..s.start).is_some_and(all_hws)
        {
            last.end = s.end;
            continue;
        }
        merged.push(s);
    }
    let mut cuts: Vec<Range<usize>> = Vec::new();
    for Range { start: s, end: e } in merged {
        let ls = line_start(text, s);
        let le = line_end(text, e);
        let before_clean = text.get(ls..s).is_some_and(all_hws);
        let after_clean = text.get(e..le).is_some_and(all_hws);
        let cut = if before_clean && after_clean {
            ls..past_terminator(text, le)
        } else if after_clean {
            let b = text.as_bytes();
            let mut p = s;
            while p > ls && b.get(p - 1).is_some_and(|&c| is_hws(c)) {
                p -= 1;
            }
            p..le
        } else {
            let b = text.as_bytes();
            let mut q = e;
            while q < le && b.get(q).is_some_and(|&c| is_hws(c)) {
                q += 1;
            }
            s..q
        };
        cuts.push(cut);
    }
    cuts.sort_by_key(|c| c.start);
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for c in cuts {
        if c.start > pos {
            out.push_str(text.get(pos..c.start).unwrap_or(""));
        }
        pos = pos.max(c.end);
    }
    out.push_str(text.get(pos..).unwrap_or(""));
    out
}

/// Removes every entry for exactly `machine` (a `machine api.wandb.ai.x`
/// entry is not `api.wandb.ai`; `default` is never removed) and keeps every
/// other byte: other entries, `default`, comments, blank lines, macdefs,
/// order and line endings. Returns the new text and the number of entries
/// removed.
///
/// If the text does not parse, falls back to the SDK's own line-based
/// algorithm (`_update_netrc` in `wandb/sdk/lib/wbauth/wbnetrc.py`, wandb 0.31.0): a block starts at a line whose
/// shell-style tokens begin `machine <machine>` and runs until the next line
/// whose first token is `machine` or `default`.
pub fn remove_machine(text: &str, machine: &str) -> (String, usize) {
    match Netrc::parse(text) {
        Ok(n) => n.remove(machine),
        Err(_) => remove_machine_linewise(text, machine),
    }
}

/// The SDK's line-based block removal, used for files we cannot parse.
fn remove_machine_linewise(text: &str, machine: &str) -> (String, usize) {
    let mut out = String::with_capacity(text.len());
    let mut removed = 0;
    let mut in_old = false;
    for line in split_lines_keep_ends(text) {
        let content = line.trim_end_matches(['\r', '\n']);
        let tokens = crate::shell::shlex_split(content)
            .unwrap_or_else(|| content.split_whitespace().map(str::to_owned).collect());
        let first = tokens.first().map(String::as_str);
        if tokens.len() >= 2 && first == Some("machine") && tokens[1] == machine {
            in_old = true;
            removed += 1;
            continue;
        }
        if matches!(first, Some("machine" | "default")) {
            in_old = false;
        }
        if !in_old {
            out.push_str(line);
        }
    }
    (out, removed)
}

/// Lines with their terminators (`\n`, `\r\n` or lone `\r`).
fn split_lines_keep_ends(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let le = line_end(text, start);
        let end = past_terminator(text, le).max(le);
        let end = if end == start { text.len() } else { end };
        lines.push(text.get(start..end).unwrap_or(""));
        start = end;
    }
    lines
}

/// Expands a leading `~` (alone or followed by a path separator) to `home`,
/// like Python's `Path.expanduser()` for the current user. `~user` forms are
/// left unchanged.
fn expand_user(p: &str, home: &Path, windows: bool) -> PathBuf {
    if p == "~" {
        return home.to_path_buf();
    }
    let rest = p
        .strip_prefix("~/")
        .or_else(|| if windows { p.strip_prefix("~\\") } else { None });
    match rest {
        Some(r) => home.join(r),
        None => PathBuf::from(p),
    }
}

/// The netrc file the SDK uses (`_get_netrc_file_path` in
/// `wandb/sdk/lib/wbauth/wbnetrc.py`, wandb 0.31.0): `$NETRC` (if non-empty, `~`
/// expanded, whether or not it exists); else `~/.netrc` if it exists; else
/// `~/_netrc` if it exists (on every platform); else `~/_netrc` on Windows
/// and `~/.netrc` elsewhere.
pub fn netrc_path(env_netrc: Option<&str>, home: &Path, windows: bool) -> PathBuf {
    if let Some(n) = env_netrc.filter(|s| !s.is_empty()) {
        return expand_user(n, home, windows);
    }
    let unix = home.join(".netrc");
    if unix.exists() {
        return unix;
    }
    let win = home.join("_netrc");
    if win.exists() {
        return win;
    }
    if windows { win } else { unix }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::shell_quote;

    fn parse(text: &str) -> Netrc {
        match Netrc::parse(text) {
            Ok(n) => n,
            Err(e) => panic!("{text:?}: {e}"),
        }
    }

    fn perr(text: &str) -> NetrcParseError {
        match Netrc::parse(text) {
            Ok(n) => panic!("{text:?} parsed: {n:?}"),
            Err(e) => e,
        }
    }

    fn pw(n: &Netrc, m: &str) -> Option<String> {
        n.lookup(m).map(|e| e.password.to_string())
    }

    // The SDK-style writer (`_update_netrc`): only the tests use it, to build files the way
    // the SDK writes them.

    /// The block the SDK writes: `machine H\n  login user\n  password K\n`,
    /// with machine and password quoted by [`shell_quote`] when needed.
    ///
    /// The result contains the secret; callers should zeroize it after use.
    fn sdk_entry(machine: &str, password: &str) -> String {
        format!(
            "machine {}\n  login user\n  password {}\n",
            shell_quote(machine),
            shell_quote(password)
        )
    }

    /// Appends `entry` at the end of `text` the way the SDK's line join does:
    /// a `\n` is inserted first if the text is non-empty and doesn't end with
    /// a line break. Unlike the SDK, existing line endings are kept as they are.
    fn append_entry(text: &str, entry: &str) -> String {
        let mut out = String::with_capacity(text.len() + entry.len() + 1);
        out.push_str(text);
        if !text.is_empty() && !text.ends_with(['\n', '\r']) {
            out.push('\n');
        }
        out.push_str(entry);
        out
    }

    /// The SDK's write (`_update_netrc`): remove old entries for `machine`,
    /// append the SDK-format block at the end. Returns the new text and the
    /// number of old entries removed. The result contains the secret.
    fn upsert_sdk_entry(text: &str, machine: &str, password: &str) -> (String, usize) {
        let (rest, n) = remove_machine(text, machine);
        (append_entry(&rest, &sdk_entry(machine, password)), n)
    }

    const SDK: &str = "machine api.wandb.ai\n  login user\n  password K\n";

    #[test]
    fn sdk_format_entry() {
        assert_eq!(sdk_entry("api.wandb.ai", "K"), SDK);
        let n = parse(SDK);
        let e = &n.entries()[0];
        assert_eq!(e.machine.as_deref(), Some("api.wandb.ai"));
        assert_eq!(e.login, "user");
        assert_eq!(e.password.as_str(), "K");
        assert_eq!(e.account, "");
        assert_eq!(&SDK[e.span.clone()], SDK.trim_end());
        assert_eq!(e.line, 1);
    }

    #[test]
    fn sdk_entry_quoting() {
        // From the SDK's test_write_shell_quoting.
        assert_eq!(
            sdk_entry(
                "api.wandb.ai",
                "pass machine attacker password actual-api-key"
            ),
            "machine api.wandb.ai\n  login user\n  password 'pass machine attacker password actual-api-key'\n"
        );
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("my.host:8080"), "my.host:8080");
        assert_eq!(shell_quote("it's"), "'it'\"'\"'s'");
        assert_eq!(shell_quote("é"), "'é'");
    }

    #[test]
    fn one_line_and_multi_line_entries() {
        let n = parse(
            "machine a.example login ua password pa account aa\n\
             machine b.example\n\tlogin ub\n\tpassword pb\n",
        );
        assert_eq!(n.entries().len(), 2);
        assert_eq!(pw(&n, "a.example").as_deref(), Some("pa"));
        assert_eq!(
            n.lookup("a.example").map(|e| e.account.as_str()),
            Some("aa")
        );
        assert_eq!(pw(&n, "b.example").as_deref(), Some("pb"));
        assert_eq!(n.lookup("b.example").map(|e| e.line), Some(2));
        assert!(n.lookup("c.example").is_none());
        // `user` is an alias for `login`.
        let n = parse("machine h user bob password p");
        assert_eq!(n.lookup("h").map(|e| e.login.as_str()), Some("bob"));
    }

    #[test]
    fn default_fallback_and_exact() {
        let n = parse("default login anon password dp\nmachine h password hp\n");
        assert_eq!(pw(&n, "h").as_deref(), Some("hp"));
        assert_eq!(pw(&n, "other").as_deref(), Some("dp"));
        assert!(n.lookup_exact("other").is_none());
        assert_eq!(
            n.lookup_exact("h")
                .map(|e| e.password.to_string())
                .as_deref(),
            Some("hp")
        );
        assert_eq!(n.entries()[0].machine, None);
    }

    #[test]
    fn later_duplicate_wins() {
        let n = parse("machine h password one\nmachine h password two\n");
        assert_eq!(pw(&n, "h").as_deref(), Some("two"));
        assert_eq!(n.entries().len(), 2);
    }

    #[test]
    fn comments_and_blank_lines() {
        let n = parse(
            "# leading comment\n\n# another machine x password y\nmachine h # trailing words\n\n  # inside\n  password p # after\n#end",
        );
        assert_eq!(n.entries().len(), 1);
        assert_eq!(pw(&n, "h").as_deref(), Some("p"));
        assert!(n.lookup_exact("x").is_none());
        // A `#` inside a value is part of it.
        let n = parse("machine h password a#b\nmachine g password #c\n");
        assert_eq!(pw(&n, "h").as_deref(), Some("a#b"));
        assert_eq!(pw(&n, "g").as_deref(), Some("#c"));
    }

    #[test]
    fn macdef_body_is_not_parsed() {
        let text = "macdef init\nmachine evil password stolen\ncd /tmp\n\nmachine h password p\n";
        let n = parse(text);
        assert!(n.lookup_exact("evil").is_none());
        assert_eq!(n.entries().len(), 1);
        assert_eq!(pw(&n, "h").as_deref(), Some("p"));
        // The rest of the macdef line is the first body line.
        let n = parse("macdef m machine x password y\nbody\n\nmachine h password p");
        assert!(n.lookup_exact("x").is_none());
        // Macdef right after an entry ends that entry.
        let n = parse("machine h password p\nmacdef m\nmachine z\n\n");
        assert_eq!(n.entries().len(), 1);
        // A line with spaces does not end a macdef; CRLF blank line does.
        assert_eq!(
            perr("macdef m\nx\n  \nmachine h\n"),
            NetrcParseError::new(1, "Macro definition missing null line terminator.")
        );
        let n = parse("macdef m\r\nmachine evil\r\n\r\nmachine h password p\r\n");
        assert_eq!(n.entries().len(), 1);
        assert_eq!(pw(&n, "h").as_deref(), Some("p"));
    }

    #[test]
    fn quoted_tokens() {
        let n = parse(
            "machine h login \"a user\" password \"pass with spaces\"\n\
             machine e password \"q\\\"uote\\\\\" account \"\"\n\
             machine u password un\\ quoted\n",
        );
        assert_eq!(pw(&n, "h").as_deref(), Some("pass with spaces"));
        assert_eq!(n.lookup("h").map(|e| e.login.as_str()), Some("a user"));
        assert_eq!(pw(&n, "e").as_deref(), Some("q\"uote\\"));
        assert_eq!(pw(&n, "u").as_deref(), Some("un quoted"));
        let n = parse("machine \"my host\" password p");
        assert_eq!(pw(&n, "my host").as_deref(), Some("p"));
        // Unterminated quote: CPython takes the rest of the file.
        let n = parse("machine h password \"abc def");
        assert_eq!(pw(&n, "h").as_deref(), Some("abc def"));
        // Empty password value is allowed (caller warns).
        let n = parse("machine h login u password \"\"\n");
        assert_eq!(pw(&n, "h").as_deref(), Some(""));
        let n = parse("machine h login u password");
        assert_eq!(pw(&n, "h").as_deref(), Some(""));
    }

    #[test]
    fn crlf_and_cr_line_endings() {
        let text = "machine a\r\n  login user\r\n  password A\r\nmachine b\r\n  password B\r\n";
        let n = parse(text);
        assert_eq!(pw(&n, "a").as_deref(), Some("A"));
        assert_eq!(pw(&n, "b").as_deref(), Some("B"));
        assert_eq!(n.lookup("b").map(|e| e.line), Some(4));
        let n = parse("machine a password A\rmachine b password B\r");
        assert_eq!(n.lookup("b").map(|e| e.line), Some(2));
        assert_eq!(
            remove_machine(text, "a"),
            ("machine b\r\n  password B\r\n".to_owned(), 1)
        );
        assert_eq!(
            remove_machine(text, "b"),
            (
                "machine a\r\n  login user\r\n  password A\r\n".to_owned(),
                1
            )
        );
    }

    #[test]
    fn errors_have_lines() {
        assert_eq!(
            perr("machine h foo bar\n"),
            NetrcParseError::new(1, "bad follower token")
        );
        assert_eq!(
            perr("machine h\n  login u\n  passwd p\n"),
            NetrcParseError::new(3, "bad follower token")
        );
        assert_eq!(
            perr("\n\nhello"),
            NetrcParseError::new(3, "bad toplevel token")
        );
        assert_eq!(
            perr("machine"),
            NetrcParseError::new(1, "missing 'machine' name")
        );
        assert_eq!(
            perr("machine \"\" password p"),
            NetrcParseError::new(1, "missing 'machine' name")
        );
        assert_eq!(
            perr("macdef x\nbody"),
            NetrcParseError::new(1, "Macro definition missing null line terminator.")
        );
        assert_eq!(
            perr("machine h\n\"\" password p"),
            NetrcParseError::new(2, "bad follower token")
        );
    }

    #[test]
    fn error_display_and_no_secret() {
        let e = perr("machine h password two words\n");
        assert_eq!(e.to_string(), "error on line 1: bad follower token");
        assert!(!e.to_string().contains("words"));
    }

    #[test]
    fn debug_redacts_passwords() {
        let n = parse("machine h login u password SUPERSECRET\ndefault password ALSOSECRET\n");
        let dbg = format!("{n:?}");
        assert!(!dbg.contains("SUPERSECRET"), "{dbg}");
        assert!(!dbg.contains("ALSOSECRET"), "{dbg}");
        assert!(dbg.contains("<redacted>"));
        let dbg = format!("{:?}", n.entries()[0]);
        assert!(!dbg.contains("SUPERSECRET"));
    }

    // ---- removal ----

    fn rm(text: &str, m: &str) -> (String, usize) {
        remove_machine(text, m)
    }

    #[test]
    fn remove_sdk_block_keeps_others_exactly() {
        // Scenario O.7 (removal half).
        let text = "machine github.com\n  login me\n  password ghp_x\n\
                    machine api.wandb.ai\n  login user\n  password OLD\n\
                    # trailing comment\n";
        assert_eq!(
            rm(text, "api.wandb.ai"),
            (
                "machine github.com\n  login me\n  password ghp_x\n# trailing comment\n".to_owned(),
                1
            )
        );
        assert_eq!(
            rm(text, "github.com"),
            (
                "machine api.wandb.ai\n  login user\n  password OLD\n# trailing comment\n"
                    .to_owned(),
                1
            )
        );
        assert_eq!(rm(text, "nothing"), (text.to_owned(), 0));
    }

    #[test]
    fn remove_keeps_prefix_named_machines() {
        let text = "machine api.wandb.ai.example.com password a\nmachine api.wandb.ai password b\n\
                    machine test-host.corp.internal password c\n";
        assert_eq!(
            rm(text, "api.wandb.ai"),
            (
                "machine api.wandb.ai.example.com password a\nmachine test-host.corp.internal password c\n"
                    .to_owned(),
                1
            )
        );
        assert_eq!(rm(text, "test-host"), (text.to_owned(), 0));
        assert_eq!(rm(text, "api.wandb"), (text.to_owned(), 0));
    }

    #[test]
    fn remove_all_duplicates_and_account_line() {
        let text = "machine h\n  login user\n  account acct\n  password one\n\n\
                    machine keep password k\n\nmachine h login user password two\n";
        assert_eq!(
            rm(text, "h"),
            ("\nmachine keep password k\n\n".to_owned(), 2)
        );
    }

    #[test]
    fn remove_keeps_default_comments_blank_lines_macdefs() {
        let text = "# header comment\n\n\
                    default\n  login anonymous\n  password anon\n\n\
                    macdef init\nmachine api.wandb.ai password in-macro\n\n\
                    machine api.wandb.ai\n  # note inside\n  login user\n  password K\n\
                    \n# footer\nmachine other password o\n";
        let expected = "# header comment\n\n\
                        default\n  login anonymous\n  password anon\n\n\
                        macdef init\nmachine api.wandb.ai password in-macro\n\n\
                        \n# footer\nmachine other password o\n";
        assert_eq!(rm(text, "api.wandb.ai"), (expected.to_owned(), 1));
        // `default` is never removed, even when asked for "default".
        let (out, n) = rm(text, "default");
        assert_eq!((out.as_str(), n), (text, 0));
    }

    #[test]
    fn remove_on_shared_lines() {
        assert_eq!(
            rm("machine a password x machine b password y\n", "a"),
            ("machine b password y\n".to_owned(), 1)
        );
        assert_eq!(
            rm("machine a password x machine b password y\n", "b"),
            ("machine a password x\n".to_owned(), 1)
        );
        assert_eq!(
            rm(
                "machine a p1 x machine b password y machine c password z",
                "b"
            )
            .0,
            // `p1` is a bad follower token → unparseable → SDK line-based fallback.
            "machine a p1 x machine b password y machine c password z"
        );
        assert_eq!(
            rm(
                "machine a password x  machine b password y\tmachine c password z\n",
                "b"
            ),
            ("machine a password x  machine c password z\n".to_owned(), 1)
        );
        assert_eq!(
            rm(
                "  machine b password y machine b password z  \nmachine c password q\n",
                "b"
            ),
            ("machine c password q\n".to_owned(), 2)
        );
        assert_eq!(
            rm(
                "machine c login u password v machine b\n  password y\nmachine d password e\n",
                "b"
            ),
            (
                "machine c login u password v\nmachine d password e\n".to_owned(),
                1
            )
        );
        assert_eq!(
            rm("machine b password y # my key\n", "b"),
            ("# my key\n".to_owned(), 1)
        );
    }

    #[test]
    fn remove_edges() {
        assert_eq!(rm("", "h"), (String::new(), 0));
        assert_eq!(rm("machine h", "h"), (String::new(), 1));
        assert_eq!(rm("machine h password p", "h"), (String::new(), 1));
        assert_eq!(
            rm("machine g password q\nmachine h password p", "h"),
            ("machine g password q\n".to_owned(), 1)
        );
        assert_eq!(
            rm("machine h password \"a b\"\n\n", "h"),
            ("\n".to_owned(), 1)
        );
        assert_eq!(
            rm("machine \"h\" password p\nmachine x password y\n", "h"),
            ("machine x password y\n".to_owned(), 1)
        );
    }

    #[test]
    fn remove_falls_back_linewise_on_malformed() {
        let text = "machine other password o\nmachine h\n  login user\n  password K\n  bogus line\n\
                    default password d\n";
        assert!(Netrc::parse(text).is_err());
        assert_eq!(
            rm(text, "h"),
            (
                "machine other password o\ndefault password d\n".to_owned(),
                1
            )
        );
        // shlex quote error → whitespace split fallback.
        let text = "machine h password 'unterminated\nmachine k password k\n";
        assert_eq!(rm(text, "h"), ("machine k password k\n".to_owned(), 1));
    }

    #[test]
    fn upsert_like_sdk() {
        // Scenario O.2: no file yet.
        assert_eq!(
            upsert_sdk_entry("", "api.wandb.ai", &"a".repeat(40)).0,
            format!(
                "machine api.wandb.ai\n  login user\n  password {}\n",
                "a".repeat(40)
            )
        );
        // Scenario O.7: old block removed, new one appended at the end.
        let text = "machine github.com\n  login me\n  password g\nmachine api.wandb.ai\n  login user\n  password OLD\nmachine z password z";
        assert_eq!(
            upsert_sdk_entry(text, "api.wandb.ai", "NEW"),
            (
                "machine github.com\n  login me\n  password g\nmachine z password z\n\
                 machine api.wandb.ai\n  login user\n  password NEW\n"
                    .to_owned(),
                1
            )
        );
        // Default entry kept, new block after it.
        let (out, _) = upsert_sdk_entry("default password d\n", "h:8080", "K");
        assert_eq!(
            out,
            "default password d\nmachine h:8080\n  login user\n  password K\n"
        );
        // The new text parses back to the new key.
        let n = parse(&out);
        assert_eq!(
            n.lookup_exact("h:8080")
                .map(|e| e.password.to_string())
                .as_deref(),
            Some("K")
        );
    }

    #[test]
    fn netrc_paths() {
        let Ok(d) = tempfile::tempdir() else { return };
        let home = d.path();
        assert_eq!(
            netrc_path(Some("/tmp/n"), home, false),
            PathBuf::from("/tmp/n")
        );
        assert_eq!(netrc_path(Some("~/x/n"), home, false), home.join("x/n"));
        assert_eq!(netrc_path(Some("~"), home, false), home.to_path_buf());
        assert_eq!(
            netrc_path(Some("~bob/n"), home, false),
            PathBuf::from("~bob/n")
        );
        assert_eq!(netrc_path(Some(""), home, false), home.join(".netrc"));
        assert_eq!(netrc_path(None, home, false), home.join(".netrc"));
        assert_eq!(netrc_path(None, home, true), home.join("_netrc"));
        std::fs::write(home.join("_netrc"), "").ok();
        assert_eq!(netrc_path(None, home, false), home.join("_netrc"));
        std::fs::write(home.join(".netrc"), "").ok();
        assert_eq!(netrc_path(None, home, true), home.join(".netrc"));
    }

    #[test]
    fn append_entry_separates_lines() {
        assert_eq!(append_entry("", "E\n"), "E\n");
        assert_eq!(append_entry("a\n", "E\n"), "a\nE\n");
        assert_eq!(append_entry("a", "E\n"), "a\nE\n");
        assert_eq!(append_entry("a\r\n", "E\n"), "a\r\nE\n");
    }

    #[test]
    fn random_inputs_never_panic() {
        let mut rng = crate::wandb::testutil::Lcg::new(3);
        for i in 0..4000 {
            let text = if i % 2 == 0 {
                rng.string(120)
            } else {
                rng.wordy(40)
            };
            let parsed = Netrc::parse(&text);
            let (out, n) = remove_machine(&text, "m");
            assert!(out.len() <= text.len());
            if let Ok(p) = parsed {
                for e in p.entries() {
                    assert!(e.span.start < e.span.end && e.span.end <= text.len());
                    assert!(
                        text.is_char_boundary(e.span.start) && text.is_char_boundary(e.span.end)
                    );
                }
                let _ = p.lookup("m");
                // After removal no entry for the machine is left.
                if let Ok(after) = Netrc::parse(&out) {
                    assert!(after.lookup_exact("m").is_none(), "{text:?} -> {out:?}");
                    // Other entries are all still there.
                    let before = p
                        .entries()
                        .iter()
                        .filter(|e| e.machine.as_deref() != Some("m"))
                        .count();
                    assert_eq!(after.entries().len(), before, "{text:?} -> {out:?}");
                }
                assert_eq!(
                    n,
                    p.entries()
                        .iter()
                        .filter(|e| e.machine.as_deref() == Some("m"))
                        .count()
                );
            }
            let _ = upsert_sdk_entry(&text, "m", "k k");
        }
    }
}
