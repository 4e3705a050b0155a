//! W&B settings files (`~/.config/wandb/settings`, `<root>/wandb/settings`):
//! read the `[default]` section like Python's `configparser`, and edit single
//! keys while keeping every unrelated line (other sections, comments, blank
//! lines, line endings) byte for byte.
//!
//! The SDK itself rewrites the whole file from its parsed contents (losing
//! comments); we edit in place instead, but produce the same text as the SDK
//! for files it wrote (`[default]\nkey = value\n\n`).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The only section the SDK reads.
pub const SECTION: &str = "default";

/// Errors reading, parsing or saving a settings file. Messages follow the
/// SDK's warnings and never include values (which may be an `api_key`).
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file exists but could not be read.
    #[error("Error reading settings at {}: {source}", path.display())]
    Read {
        /// The settings file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file is not valid configparser syntax.
    #[error("Error reading settings at {}: line {line}: {msg}", path.display())]
    Parse {
        /// The settings file (empty if parsed from a string).
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// The file could not be written.
    #[error("Error updating settings at {}: {source}", path.display())]
    Write {
        /// The settings file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A key that cannot be written as an INI option name.
    #[error(
        "invalid settings key {key:?}: keys must be non-empty, without '=', ':', '[' at the start, or line breaks"
    )]
    InvalidKey {
        /// The rejected key.
        key: String,
    },
}

/// What a physical line is.
#[derive(Clone, PartialEq, Eq)]
enum Kind {
    /// Blank or comment line (or any line kept verbatim).
    Other,
    /// `[name]`.
    Section(String),
    /// `key = value` / `key: value` (key lowercased, value trimmed).
    Option { key: String, value: String },
    /// An indented line continuing the previous option's value.
    Continuation(String),
}

#[derive(Clone, PartialEq, Eq)]
struct Line {
    /// The line exactly as read, including its terminator.
    raw: String,
    kind: Kind,
    /// Section this line belongs to (`None` before the first header).
    section: Option<String>,
}

/// A settings file: its lines, parsed, with the raw text kept.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SettingsFile {
    path: Option<PathBuf>,
    lines: Vec<Line>,
}

impl fmt::Debug for SettingsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be secrets (api_key): show keys only.
        let keys: Vec<&str> = self
            .lines
            .iter()
            .filter_map(|l| match &l.kind {
                Kind::Option { key, .. } if l.section.as_deref() == Some(SECTION) => {
                    Some(key.as_str())
                }
                _ => None,
            })
            .collect();
        f.debug_struct("SettingsFile")
            .field("path", &self.path)
            .field("default_keys", &keys)
            .finish()
    }
}

/// Splits text into lines that keep their terminators (`\n`, `\r\n`, `\r`).
fn split_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end = match rest.find(['\n', '\r']) {
            Some(i) if rest[i..].starts_with("\r\n") => i + 2,
            Some(i) => i + 1,
            None => rest.len(),
        };
        let (line, tail) = rest.split_at(end);
        out.push(line);
        rest = tail;
    }
    out
}

/// Python `str.strip()` whitespace is Unicode whitespace; `char::is_whitespace` matches it closely.
fn strip(s: &str) -> &str {
    s.trim()
}

fn indent_of(s: &str) -> usize {
    s.len() - s.trim_start().len()
}

impl SettingsFile {
    /// Loads `path`; a missing file is an empty settings file.
    pub fn load(path: &Path) -> Result<SettingsFile, SettingsError> {
        let text = match std::fs::read(path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(SettingsError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let mut file = Self::parse_with_path(&text, path)?;
        file.path = Some(path.to_path_buf());
        Ok(file)
    }

    /// Parses settings text (configparser syntax).
    pub fn parse(text: &str) -> Result<SettingsFile, SettingsError> {
        Self::parse_with_path(text, Path::new(""))
    }

    fn parse_with_path(text: &str, path: &Path) -> Result<SettingsFile, SettingsError> {
        let err = |line: usize, msg: &str| SettingsError::Parse {
            path: path.to_path_buf(),
            line,
            msg: msg.to_owned(),
        };
        let mut lines = Vec::new();
        let mut section: Option<String> = None;
        // Indentation of the current option line, if the previous
        // non-blank line was part of an option's value.
        let mut option_indent: Option<usize> = None;
        for (i, raw) in split_lines(text).into_iter().enumerate() {
            let lineno = i + 1;
            let body = raw.trim_end_matches(['\r', '\n']);
            let value = strip(body);
            let kind = if value.is_empty() {
                option_indent = None;
                Kind::Other
            } else if value.starts_with('#') || value.starts_with(';') {
                Kind::Other
            } else if option_indent.is_some_and(|ind| indent_of(body) > ind) {
                Kind::Continuation(value.to_owned())
            } else if let Some(name) = section_header(value) {
                option_indent = None;
                section = Some(name.to_owned());
                Kind::Section(name.to_owned())
            } else {
                if section.is_none() {
                    return Err(err(lineno, "file contains no section headers"));
                }
                let Some(pos) = body.find(['=', ':']) else {
                    return Err(err(lineno, "line is not 'key = value'"));
                };
                let key = body[..pos].trim();
                if key.is_empty() {
                    return Err(err(lineno, "line is not 'key = value'"));
                }
                option_indent = Some(indent_of(body));
                Kind::Option {
                    key: key.to_lowercase(),
                    value: strip(&body[pos + 1..]).to_owned(),
                }
            };
            lines.push(Line {
                raw: raw.to_owned(),
                kind,
                section: section.clone(),
            });
        }
        Ok(SettingsFile { path: None, lines })
    }

    /// The file this was loaded from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Indices of `[default]` option lines for `key` (already lowercased).
    fn option_lines(&self, key: &str) -> Vec<usize> {
        self.lines
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                l.section.as_deref() == Some(SECTION)
                    && matches!(&l.kind, Kind::Option { key: k, .. } if k == key)
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Continuation lines right after line `i`.
    /// How many lines after option line `i` belong to its value: continuation lines, and the
    /// comment or blank lines between them (the parser attributes a continuation to the option
    /// above it across such lines, so removing the option must take them along — found by
    /// the settings fuzz target).
    fn continuation_count(&self, i: usize) -> usize {
        let mut last = 0;
        for (n, l) in self.lines.iter().skip(i + 1).enumerate() {
            match l.kind {
                Kind::Continuation(_) => last = n + 1,
                Kind::Other => {}
                Kind::Option { .. } | Kind::Section(_) => break,
            }
        }
        last
    }

    /// The value of `key` in `[default]` (keys are case-insensitive; the
    /// last occurrence wins). Multi-line values are not joined: only the
    /// first line is returned.
    pub fn get(&self, key: &str) -> Option<&str> {
        let key = key.to_lowercase();
        let i = *self.option_lines(&key).last()?;
        match &self.lines.get(i)?.kind {
            Kind::Option { value, .. } => Some(value.as_str()),
            _ => None,
        }
    }

    /// All `[default]` keys with their values, in file order.
    pub fn items(&self) -> Vec<(&str, &str)> {
        self.lines
            .iter()
            .filter(|l| l.section.as_deref() == Some(SECTION))
            .filter_map(|l| match &l.kind {
                Kind::Option { key, value } => Some((key.as_str(), value.as_str())),
                _ => None,
            })
            .collect()
    }

    /// The line terminator to use for new lines: the file's first one, or `\n`.
    fn newline(&self) -> &'static str {
        match self.lines.first().map(|l| l.raw.as_str()) {
            Some(r) if r.ends_with("\r\n") => "\r\n",
            _ => "\n",
        }
    }

    /// Sets `key = value` in `[default]`: the first existing occurrence is
    /// rewritten in place (later duplicates are removed); otherwise the line
    /// is added after the section's last option, creating `[default]` at
    /// the end of the file if needed. Keys are stored lowercased, like
    /// configparser. Line breaks in `value` become continuation lines.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), SettingsError> {
        let k = key.to_lowercase();
        if k.trim().is_empty()
            || k.trim() != k
            || k.contains(['=', ':', '\n', '\r'])
            || k.starts_with(['[', '#', ';'])
        {
            return Err(SettingsError::InvalidKey {
                key: key.to_owned(),
            });
        }
        let nl = self.newline();
        let value = value.trim().replace("\r\n", "\n").replace('\r', "\n");
        let mut new_lines = vec![Line {
            raw: String::new(),
            kind: Kind::Option {
                key: k.clone(),
                value: value.split('\n').next().unwrap_or("").trim().to_owned(),
            },
            section: Some(SECTION.to_owned()),
        }];
        let mut parts = value.split('\n');
        let first = parts.next().unwrap_or("");
        new_lines[0].raw = format!("{k} = {first}{nl}");
        for cont in parts {
            new_lines.push(Line {
                raw: format!("\t{cont}{nl}"),
                kind: Kind::Continuation(cont.trim().to_owned()),
                section: Some(SECTION.to_owned()),
            });
        }

        let existing = self.option_lines(&k);
        if let Some(&first_i) = existing.first() {
            // Remove later duplicates first (from the back, so indices hold).
            for &i in existing.iter().skip(1).rev() {
                let n = self.continuation_count(i);
                self.lines.drain(i..=i + n);
            }
            let n = self.continuation_count(first_i);
            self.lines.splice(first_i..=first_i + n, new_lines);
            self.anchor_indented_lines();
            return Ok(());
        }

        // Insert after the last option (or its continuation) of the last
        // [default] section, or right after its header.
        let header = self
            .lines
            .iter()
            .rposition(|l| matches!(&l.kind, Kind::Section(s) if s == SECTION));
        if let Some(h) = header {
            let mut at = h + 1;
            for (i, l) in self.lines.iter().enumerate().skip(h + 1) {
                match l.kind {
                    Kind::Section(_) => break,
                    Kind::Option { .. } | Kind::Continuation(_) => at = i + 1,
                    Kind::Other => {}
                }
            }
            self.ensure_terminated(at);
            self.lines.splice(at..at, new_lines);
            self.anchor_indented_lines();
            return Ok(());
        }

        // No [default]: append a new section, separated by a blank line,
        // ending with a blank line like configparser's writer.
        let n = self.lines.len();
        self.ensure_terminated(n);
        if let Some(last) = self.lines.last()
            && !strip(&last.raw).is_empty()
        {
            self.lines.push(Line {
                raw: nl.to_owned(),
                kind: Kind::Other,
                section: last.section.clone(),
            });
        }
        self.lines.push(Line {
            raw: format!("[{SECTION}]{nl}"),
            kind: Kind::Section(SECTION.to_owned()),
            section: Some(SECTION.to_owned()),
        });
        self.lines.extend(new_lines);
        self.lines.push(Line {
            raw: nl.to_owned(),
            kind: Kind::Other,
            section: Some(SECTION.to_owned()),
        });
        Ok(())
    }

    /// Removes the leading white space of indented option and section lines. Such a line was
    /// not a continuation where it stood, but after an edit puts an option above it (or removes
    /// the more-indented option that shielded it), configparser would read it as one — changing
    /// what the file means (found by the settings fuzz target). Without the indent it means
    /// the same and stays so.
    fn anchor_indented_lines(&mut self) {
        for line in &mut self.lines {
            // The same notion of indent as the parser's (`indent_of`: any Unicode space).
            if matches!(line.kind, Kind::Option { .. } | Kind::Section(_))
                && indent_of(&line.raw) > 0
            {
                line.raw = line.raw.trim_start().to_owned();
            }
        }
    }

    /// Makes sure the line before index `at` ends with a line break, so a
    /// line inserted at `at` starts on its own line.
    fn ensure_terminated(&mut self, at: usize) {
        let nl = self.newline();
        if let Some(prev) = at.checked_sub(1).and_then(|i| self.lines.get_mut(i))
            && !prev.raw.ends_with(['\n', '\r'])
        {
            prev.raw.push_str(nl);
        }
    }

    /// Removes every occurrence of `key` in `[default]` (with continuation
    /// lines). Returns whether anything was removed. The section header
    /// stays, as configparser keeps empty sections.
    pub fn remove(&mut self, key: &str) -> bool {
        let k = key.to_lowercase();
        let existing = self.option_lines(&k);
        for &i in existing.iter().rev() {
            let n = self.continuation_count(i);
            self.lines.drain(i..=i + n);
        }
        if !existing.is_empty() {
            self.anchor_indented_lines();
        }
        !existing.is_empty()
    }

    /// Writes the file atomically (creating parent directories), keeping
    /// the existing file's permissions; new files get mode 0644 like
    /// Python's default `open(…, "w")` under a typical umask.
    pub fn save(&self, path: &Path) -> Result<(), SettingsError> {
        let werr = |source| SettingsError::Write {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(werr)?;
        }
        crate::wandb::fsutil::write_atomic(path, self.to_string().as_bytes(), 0o644).map_err(werr)
    }
}

impl fmt::Display for SettingsFile {
    /// The file text: unchanged lines verbatim, edited lines in
    /// configparser's `key = value` format.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.lines {
            f.write_str(&l.raw)?;
        }
        Ok(())
    }
}

/// configparser's `SECTCRE` (`\[(?P<header>.+)\]`, matched at the start of
/// the stripped line): the name runs to the LAST `]`.
fn section_header(value: &str) -> Option<&str> {
    let inner = value.strip_prefix('[')?;
    let close = inner.rfind(']')?;
    let name = &inner[..close];
    (!name.is_empty()).then_some(name)
}

/// Expands a leading `~` like Python's `expanduser` for the current user.
fn expand_user(p: &str, home: &Path) -> PathBuf {
    if p == "~" {
        return home.to_path_buf();
    }
    match p.strip_prefix("~/").or_else(|| p.strip_prefix("~\\")) {
        Some(r) => home.join(r),
        None => PathBuf::from(p),
    }
}

/// The global ("system") settings file: `$WANDB_CONFIG_DIR/settings` if the
/// variable is set and non-empty (`~` expanded), else
/// `~/.config/wandb/settings`.
pub fn global_settings_path(env_config_dir: Option<&str>, home: &Path) -> PathBuf {
    match env_config_dir.filter(|d| !d.is_empty()) {
        Some(dir) => expand_user(dir, home).join("settings"),
        None => home.join(".config").join("wandb").join("settings"),
    }
}

/// The workspace settings file for `root` (WANDB_DIR or the current
/// directory): `<root>/.wandb/settings` if a `.wandb` directory exists,
/// else `<root>/wandb/settings`.
pub fn workspace_settings_path(root: &Path) -> PathBuf {
    let hidden = root.join(".wandb");
    if hidden.is_dir() {
        hidden.join("settings")
    } else {
        root.join("wandb").join("settings")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> SettingsFile {
        match SettingsFile::parse(s) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn empty_then_set_matches_sdk_output() {
        let mut f = parse("");
        assert_eq!(f.get("base_url"), None);
        f.set("base_url", "https://my.host:8443").ok();
        assert_eq!(
            f.to_string(),
            "[default]\nbase_url = https://my.host:8443\n\n"
        );
        assert_eq!(f.get("base_url"), Some("https://my.host:8443"));
    }

    #[test]
    fn sdk_written_file_roundtrip() {
        let text = "[default]\nbase_url = https://h\nentity = me\n\n";
        let mut f = parse(text);
        assert_eq!(f.to_string(), text);
        assert_eq!(f.items(), vec![("base_url", "https://h"), ("entity", "me")]);
        f.set("mode", "offline").ok();
        assert_eq!(
            f.to_string(),
            "[default]\nbase_url = https://h\nentity = me\nmode = offline\n\n"
        );
        assert!(f.remove("base_url"));
        assert!(!f.remove("base_url"));
        assert_eq!(f.to_string(), "[default]\nentity = me\nmode = offline\n\n");
        assert!(f.remove("entity"));
        assert!(f.remove("mode"));
        assert_eq!(f.to_string(), "[default]\n\n");
    }

    #[test]
    fn configparser_syntax() {
        let f = parse(
            "# top comment\n; other comment\n[default]\n  Base_URL :  https://x  \nanonymous=never\n\
             api_key: k1\n[other]\nbase_url = nope\n",
        );
        assert_eq!(f.get("base_url"), Some("https://x"));
        assert_eq!(f.get("BASE_URL"), Some("https://x"));
        assert_eq!(f.get("anonymous"), Some("never"));
        assert_eq!(f.get("api_key"), Some("k1"));
        assert_eq!(f.get("missing"), None);
        // `key = a:b` splits at the first delimiter only.
        let f = parse("[default]\nbase_url = http://h:1\n");
        assert_eq!(f.get("base_url"), Some("http://h:1"));
        // Empty value.
        let f = parse("[default]\nentity =\n");
        assert_eq!(f.get("entity"), Some(""));
    }

    #[test]
    fn edits_preserve_other_sections_and_comments() {
        let text = "# my settings\r\n[other]\r\nbase_url = keep\r\n\r\n[default]\r\n\
                    ; comment in default\r\nbase_url = old\r\nentity = e\r\n\r\n[third]\r\nx = 1\r\n";
        let mut f = parse(text);
        f.set("base_url", "https://new").ok();
        assert_eq!(
            f.to_string(),
            "# my settings\r\n[other]\r\nbase_url = keep\r\n\r\n[default]\r\n\
             ; comment in default\r\nbase_url = https://new\r\nentity = e\r\n\r\n[third]\r\nx = 1\r\n"
        );
        f.set("anonymous", "false").ok();
        assert_eq!(
            f.to_string(),
            "# my settings\r\n[other]\r\nbase_url = keep\r\n\r\n[default]\r\n\
             ; comment in default\r\nbase_url = https://new\r\nentity = e\r\nanonymous = false\r\n\
             \r\n[third]\r\nx = 1\r\n"
        );
        assert!(f.remove("BASE_URL"));
        assert!(f.remove("anonymous"));
        assert_eq!(
            f.to_string(),
            "# my settings\r\n[other]\r\nbase_url = keep\r\n\r\n[default]\r\n\
             ; comment in default\r\nentity = e\r\n\r\n[third]\r\nx = 1\r\n"
        );
        // Keys in other sections are never touched.
        assert!(!f.remove("x"));
    }

    #[test]
    fn adds_default_section_when_missing() {
        let mut f = parse("[other]\na = 1");
        f.set("base_url", "https://h").ok();
        assert_eq!(
            f.to_string(),
            "[other]\na = 1\n\n[default]\nbase_url = https://h\n\n"
        );
        let mut f = parse("# just a comment\n\n");
        f.set("k", "v").ok();
        assert_eq!(f.to_string(), "# just a comment\n\n[default]\nk = v\n\n");
    }

    #[test]
    fn empty_default_section_gets_key_after_header() {
        let mut f = parse("[default]\n\n[other]\nk = 1\n");
        f.set("K2", "v").ok();
        assert_eq!(f.to_string(), "[default]\nk2 = v\n\n[other]\nk = 1\n");
        let mut f = parse("[default]");
        f.set("a", "b").ok();
        assert_eq!(f.to_string(), "[default]\na = b\n");
    }

    #[test]
    fn duplicates_and_continuations() {
        let mut f = parse("[default]\na = 1\n  more\nb = 2\na = 3\n");
        assert_eq!(f.get("a"), Some("3"));
        f.set("a", "x\ny").ok();
        assert_eq!(f.to_string(), "[default]\na = x\n\ty\nb = 2\n");
        assert_eq!(f.get("a"), Some("x"));
        let mut f = parse("[default]\na = 1\n  more\nb = 2\n");
        assert!(f.remove("a"));
        assert_eq!(f.to_string(), "[default]\nb = 2\n");
    }

    #[test]
    fn invalid_keys_rejected() {
        let mut f = parse("");
        assert!(f.set("", "v").is_err());
        assert!(f.set("a=b", "v").is_err());
        assert!(f.set("a:b", "v").is_err());
        assert!(f.set("a\nb", "v").is_err());
        assert!(f.set("[x]", "v").is_err());
        assert!(f.set(" a", "v").is_err());
        assert_eq!(f.to_string(), "");
    }

    #[test]
    fn parse_errors_have_lines_and_no_values() {
        match SettingsFile::parse("api_key = SECRETVALUE\n") {
            Err(SettingsError::Parse { line, msg, .. }) => {
                assert_eq!(line, 1);
                assert!(!msg.contains("SECRET"));
            }
            other => panic!("{other:?}"),
        }
        match SettingsFile::parse("[default]\nok = 1\nSECRETNOEQUALS\n") {
            Err(e @ SettingsError::Parse { line: 3, .. }) => {
                assert!(!e.to_string().contains("SECRET"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn debug_hides_values() {
        let f = parse("[default]\napi_key = SECRETVALUE\n");
        let dbg = format!("{f:?}");
        assert!(dbg.contains("api_key"));
        assert!(!dbg.contains("SECRETVALUE"));
    }

    #[test]
    fn load_missing_and_save() {
        let dir = tempfile::tempdir().ok();
        let Some(dir) = dir else { return };
        let path = dir.path().join("sub").join("settings");
        let mut f = match SettingsFile::load(&path) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(f.to_string(), "");
        f.set("base_url", "https://h").ok();
        if let Err(e) = f.save(&path) {
            panic!("{e}");
        }
        let back = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(back, "[default]\nbase_url = https://h\n\n");
        let f2 = SettingsFile::load(&path).ok();
        assert_eq!(
            f2.and_then(|f| f.get("base_url").map(str::to_owned))
                .as_deref(),
            Some("https://h")
        );
    }

    #[test]
    fn paths() {
        let home = Path::new("/home/u");
        assert_eq!(
            global_settings_path(None, home),
            PathBuf::from("/home/u/.config/wandb/settings")
        );
        assert_eq!(
            global_settings_path(Some(""), home),
            PathBuf::from("/home/u/.config/wandb/settings")
        );
        assert_eq!(
            global_settings_path(Some("/etc/wb"), home),
            PathBuf::from("/etc/wb/settings")
        );
        assert_eq!(
            global_settings_path(Some("~/cfg"), home),
            PathBuf::from("/home/u/cfg/settings")
        );
        let Ok(dir) = tempfile::tempdir() else { return };
        assert_eq!(
            workspace_settings_path(dir.path()),
            dir.path().join("wandb").join("settings")
        );
        std::fs::create_dir(dir.path().join(".wandb")).ok();
        assert_eq!(
            workspace_settings_path(dir.path()),
            dir.path().join(".wandb").join("settings")
        );
    }

    #[test]
    fn random_inputs_never_panic() {
        let mut rng = crate::wandb::testutil::Lcg::new(5);
        for i in 0..3000 {
            let s = if i % 2 == 0 {
                rng.string(80)
            } else {
                rng.wordy(30)
            };
            if let Ok(mut f) = SettingsFile::parse(&s) {
                assert_eq!(f.to_string(), s);
                let _ = f.get("key");
                let _ = f.set("key", "v\nw");
                assert_eq!(f.get("key"), Some("v"));
                assert!(f.remove("key"));
                let _ = SettingsFile::parse(&f.to_string());
            }
        }
    }

    /// Fuzz regression (fuzz/regressions/settings-continuation-after-comment): a continuation
    /// line after a comment belongs to the option above; removing the option removes it too,
    /// and the result parses again.
    #[test]
    fn remove_takes_continuations_after_comments() {
        let text = "[default]\n  ltpth=s://x\napi_key: k\n; c\n k\n; c\n[otr]\na=b\n";
        let mut s = SettingsFile::parse(text).unwrap();
        assert!(s.remove("api_key"));
        let again = SettingsFile::parse(&s.to_string()).unwrap();
        assert_eq!(again.get("api_key"), None);
        assert_eq!(again.get("ltpth"), Some("s://x"));
    }
}
