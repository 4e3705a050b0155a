//! The docs stay true to the tree (issue 24): what ARCHITECTURE.md names exists, relative links
//! in the docs lead somewhere, every `wbl` command the README and `docs/` show parses with the
//! real command-line definition, and the two entry documents stay short. No agent, no
//! processes: it reads files and runs clap's parser.
//!
//! Conventions ARCHITECTURE.md is written to (and checked by):
//! - a backticked path starting with `src/`, `tests/`, `proto/`, `scripts/`, `benches/`,
//!   `fuzz/`, `systemd/`, `launchd/` or `docs/` exists; `path::name` also names `name` in
//!   that file (a test, a function, a type);
//! - a backticked bare file name (`dispatch.rs`) exists in (or below) a directory its
//!   section's heading names;
//! - a backticked Rust path (`crate::agent::run_with`, `wbl_proto::account_user`,
//!   `forward::permit`, `Request::Hello`) resolves: its modules are files or directories under
//!   `src/` (or `proto/src/`), and the names after them appear in that module.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn root() -> &'static Path {
    Path::new(ROOT)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// README.md and every page under docs/.
fn user_docs() -> Vec<String> {
    let mut docs = vec!["README.md".to_owned()];
    let mut pages: Vec<String> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.ends_with(".md").then(|| format!("docs/{name}"))
        })
        .collect();
    pages.sort();
    docs.extend(pages);
    docs
}

/// Fails with every problem found, one per line.
fn report(what: &str, problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// Lines outside fenced code blocks, with their 1-based numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((i + 1, line));
        }
    }
    out
}

/// The backticked spans of a line (single backticks; a double-backtick span is skipped whole).
fn code_spans(line: &str) -> Vec<String> {
    let mut spans = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        let run = rest[start..].chars().take_while(|c| *c == '`').count();
        let after = &rest[start + run..];
        let fence = "`".repeat(run);
        let Some(end) = after.find(&fence) else { break };
        if run == 1 {
            spans.push(after[..end].to_owned());
        }
        rest = &after[end + run..];
    }
    spans
}

// ---------------------------------------------------------------------------------------------
// Line counts.

#[test]
fn readme_and_architecture_stay_short() {
    let mut problems = Vec::new();
    for (doc, max) in [("README.md", 300), ("ARCHITECTURE.md", 300)] {
        let n = read(doc).lines().count();
        if n > max {
            problems.push(format!(
                "{doc} has {n} lines, more than {max}: move a long topic to docs/"
            ));
        }
    }
    report("length", problems);
}

#[test]
fn the_readme_starts_with_the_newcomer_commands() {
    let readme = read("README.md");
    let block = "```sh\nscripts/install && wbl login ";
    let first = readme.find("```").expect("README.md has no code block");
    assert!(
        readme[first..].starts_with(block) && readme[first..].contains("\nscripts/test "),
        "README.md must start with the block of `scripts/install && wbl login` and \
         `scripts/test` (CI runs them)"
    );
}

// ---------------------------------------------------------------------------------------------
// ARCHITECTURE.md's paths and modules.

const TREE_ROOTS: &[&str] = &[
    "src/", "tests/", "proto/", "scripts/", "benches/", "fuzz/", "systemd/", "launchd/", "docs/",
];

/// Crates and std paths ARCHITECTURE.md may name that are not ours.
const EXTERNAL: &[&str] = &[
    "std", "core", "alloc", "tokio", "clap", "clippy", "serde", "libc", "rustix", "tracing", "zbus",
];

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `word` occurs in `text` as a whole identifier.
fn has_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        let part = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        !part(before) && !part(after)
    })
}

/// Whether `text` defines `item`: `fn`/`mod` for a lower-case name, `const`/`static` for an
/// upper-case one, a type (or a variant, or a re-export) for a capitalised one.
fn defines(text: &str, item: &str) -> bool {
    let kinds: &[&str] = if item.starts_with(|c: char| c.is_ascii_lowercase() || c == '_') {
        &["fn", "mod"]
    } else if item
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    {
        &["const", "static"]
    } else {
        return has_word(text, item);
    };
    kinds.iter().any(|k| has_word(text, &format!("{k} {item}")))
}

/// Every `.rs` file at or under `path`.
fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_owned()];
    }
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(rust_files(&p));
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The text of a module: its file, and the files of its directory (`foo.rs` + `foo/`, or
/// `foo/mod.rs` and its siblings).
fn module_text(base: &Path, segments: &[&str]) -> String {
    let mut rel = base.to_owned();
    for s in segments {
        rel.push(s);
    }
    let mut files = rust_files(&rel.with_extension("rs"));
    files.extend(rust_files(&rel));
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every module directory or file named `name` under `src/` (relative paths of the module,
/// as segments from `src/`).
fn modules_named(name: &str) -> Vec<Vec<String>> {
    fn walk(dir: &Path, prefix: &mut Vec<String>, name: &str, out: &mut Vec<Vec<String>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let p = e.unwrap().path();
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            let is_mod = p.is_dir() || p.extension().is_some_and(|x| x == "rs");
            if is_mod && stem == name {
                let mut m = prefix.clone();
                m.push(stem.clone());
                if !out.contains(&m) {
                    out.push(m);
                }
            }
            if p.is_dir() {
                prefix.push(stem);
                walk(&p, prefix, name, out);
                prefix.pop();
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("src"), &mut Vec::new(), name, &mut out);
    out
}

/// Resolves `segments` (module path, then item names) from `base`: the modules must exist and
/// every remaining name must occur in the last module's text.
fn resolves_from(base: &Path, segments: &[&str]) -> bool {
    let mut depth = 0;
    let mut dir = base.to_owned();
    while depth < segments.len() {
        let next = dir.join(segments[depth]);
        if next.is_dir() || next.with_extension("rs").is_file() {
            dir = next;
            depth += 1;
        } else {
            break;
        }
    }
    if depth == 0 {
        return false;
    }
    let text = module_text(base, &segments[..depth]);
    // The first name is an item of the module; any after it (`Type::method`) are named in it.
    segments[depth..].iter().enumerate().all(|(i, item)| {
        if i == 0 {
            defines(&text, item)
        } else {
            has_word(&text, item)
        }
    })
}

/// All Rust sources of the crate and the protocol crate.
fn all_sources() -> Vec<(PathBuf, String)> {
    let mut files = rust_files(&root().join("src"));
    files.extend(rust_files(&root().join("proto/src")));
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            (f, text)
        })
        .collect()
}

fn check_rust_path(span: &str, sources: &[(PathBuf, String)]) -> Result<(), String> {
    let segments: Vec<&str> = span.split("::").collect();
    let head = segments[0];
    let src = root().join("src");
    match head {
        "crate" | "wbl" => {
            if resolves_from(&src, &segments[1..]) {
                return Ok(());
            }
            return Err("no such module or item under src/".into());
        }
        "wbl_proto" => {
            let text = module_text(&root().join("proto"), &["src"]);
            return if segments.len() > 1
                && defines(&text, segments[1])
                && segments[2..].iter().all(|s| has_word(&text, s))
            {
                Ok(())
            } else {
                Err("not in proto/src".into())
            };
        }
        h if EXTERNAL.contains(&h) => return Ok(()),
        _ => {}
    }
    if head.starts_with(|c: char| c.is_ascii_uppercase()) {
        // `Type::item`: a type of ours, the item named in the file that defines it.
        let found: Vec<&(PathBuf, String)> = sources
            .iter()
            .filter(|(_, t)| {
                ["struct", "enum", "trait", "type"]
                    .iter()
                    .any(|k| has_word(t, &format!("{k} {head}")))
            })
            .collect();
        if found.is_empty() {
            return Err(format!("no type `{head}` is defined in src/ or proto/src/"));
        }
        return if found
            .iter()
            .any(|(_, t)| segments[1..].iter().all(|s| has_word(t, s)))
        {
            Ok(())
        } else {
            Err(format!(
                "`{head}` is defined, but not with {}",
                segments[1..].join("::")
            ))
        };
    }
    // `module::item`, the module found anywhere under src/.
    let candidates = modules_named(head);
    if candidates.is_empty() {
        return Err(format!("no module `{head}` under src/"));
    }
    for m in candidates {
        let mut full: Vec<&str> = m.iter().map(String::as_str).collect();
        full.extend(&segments[1..]);
        if resolves_from(&src, &full) {
            return Ok(());
        }
    }
    Err(format!(
        "module `{head}` has no {}",
        segments[1..].join("::")
    ))
}

/// The directories a section's heading names (`### `src/agent/``, `### `src/config.rs`, …``).
fn heading_dirs(heading: &str) -> Vec<PathBuf> {
    code_spans(heading)
        .iter()
        .filter(|s| TREE_ROOTS.iter().any(|r| s.starts_with(r)))
        .map(|s| {
            let p = root().join(s.trim_end_matches('/'));
            if p.is_dir() {
                p
            } else {
                p.parent().unwrap().to_owned()
            }
        })
        .collect()
}

#[test]
fn every_path_and_module_architecture_names_exists() {
    let text = read("ARCHITECTURE.md");
    let sources = all_sources();
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut dirs: Vec<PathBuf> = Vec::new();
    for (n, line) in prose_lines(&text) {
        if line.starts_with('#') {
            dirs = heading_dirs(line);
        }
        for span in code_spans(line) {
            let span = span.trim();
            let bad = |why: String| format!("ARCHITECTURE.md:{n}: `{span}`: {why}");
            if span.contains(['<', '*', '{', ' ', '…']) {
                continue;
            }
            if TREE_ROOTS.iter().any(|r| span.starts_with(r)) {
                checked += 1;
                let (path, item) = match span.split_once("::") {
                    Some((p, i)) => (p, Some(i)),
                    None => (span, None),
                };
                let full = root().join(path.trim_end_matches('/'));
                if !full.exists() {
                    problems.push(bad("no such file or directory".into()));
                } else if path.ends_with('/') && !full.is_dir() {
                    problems.push(bad("not a directory".into()));
                } else if let Some(item) = item {
                    let t = rust_files(&full)
                        .iter()
                        .map(|f| std::fs::read_to_string(f).unwrap())
                        .collect::<String>();
                    if !defines(&t, item) {
                        problems.push(bad(format!("{path} does not name `{item}`")));
                    }
                }
            } else if span.ends_with(".rs") && !span.contains('/') {
                checked += 1;
                let found = if dirs.is_empty() {
                    !rust_files(&root().join("src"))
                        .iter()
                        .chain(rust_files(&root().join("tests")).iter())
                        .all(|f| f.file_name().unwrap() != span)
                } else {
                    dirs.iter().any(|d| {
                        d.join(span).is_file()
                            || rust_files(d).iter().any(|f| f.file_name().unwrap() == span)
                    })
                };
                if !found {
                    problems.push(bad(format!(
                        "no such file in {}",
                        if dirs.is_empty() {
                            "src/ or tests/".to_owned()
                        } else {
                            dirs.iter()
                                .map(|d| d.strip_prefix(root()).unwrap().display().to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    )));
                }
            } else if span.contains("::") && span.split("::").all(is_ident) {
                checked += 1;
                if let Err(why) = check_rust_path(span, &sources) {
                    problems.push(bad(why));
                }
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} names checked: is the parser broken?"
    );
    report("ARCHITECTURE.md names what does not exist", problems);
}

// ---------------------------------------------------------------------------------------------
// Relative links.

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim_start_matches('#')
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        if line.starts_with('#') {
            let base = anchor(line);
            let mut a = base.clone();
            let mut i = 1;
            while seen.contains(&a) {
                a = format!("{base}-{i}");
                i += 1;
            }
            seen.insert(a);
        }
    }
    seen
}

/// The targets of `[text](target)` links on a line.
fn link_targets(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let Some(end) = after.find(')') else { break };
        out.push(after[..end].trim().to_owned());
        rest = &after[end..];
    }
    out
}

#[test]
fn every_relative_link_in_the_docs_leads_somewhere() {
    let mut docs = user_docs();
    docs.extend(
        [
            "ARCHITECTURE.md",
            "SECURITY.md",
            "BENCHMARKS.md",
            "tests/README.md",
        ]
        .map(String::from),
    );
    let mut problems = Vec::new();
    for doc in &docs {
        let text = read(doc);
        let here = root().join(doc).parent().unwrap().to_owned();
        for (n, line) in prose_lines(&text) {
            for target in link_targets(line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (file, frag) = match target.split_once('#') {
                    Some((f, a)) => (f, Some(a)),
                    None => (target.as_str(), None),
                };
                let path = if file.is_empty() {
                    root().join(doc)
                } else {
                    here.join(file)
                };
                if !path.exists() {
                    problems.push(format!("{doc}:{n}: ({target}): {file} does not exist"));
                    continue;
                }
                if let Some(frag) = frag
                    && path.extension().is_some_and(|x| x == "md")
                    && !anchors(&std::fs::read_to_string(&path).unwrap()).contains(frag)
                {
                    problems.push(format!("{doc}:{n}: ({target}): no heading #{frag} there"));
                }
            }
        }
    }
    report("broken links", problems);
}

// ---------------------------------------------------------------------------------------------
// Commands in the docs.

/// One shell command: its words, and the commands found inside it (`$(…)`, and quoted
/// arguments that are themselves command lines, as `wbl ssh HOST 'wbl exec -- …'` has).
#[derive(Default)]
struct Parsed {
    commands: Vec<Vec<String>>,
    nested: Vec<String>,
}

/// A small POSIX-shell word splitter: quotes, backslashes, comments, `$(…)`, the operators
/// that separate commands (`|`, `&&`, `||`, `;`, `&`) and redirections (dropped with their
/// target). Enough for the commands the docs show.
fn parse_shell(line: &str) -> Parsed {
    let mut parsed = Parsed::default();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut skip_next_word = false;
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let end_word =
        |words: &mut Vec<String>, word: &mut String, in_word: &mut bool, skip: &mut bool| {
            if *in_word {
                if *skip {
                    *skip = false;
                } else {
                    words.push(std::mem::take(word));
                }
            }
            word.clear();
            *in_word = false;
        };
    let end_command = |words: &mut Vec<String>, parsed: &mut Parsed| {
        if !words.is_empty() {
            parsed.commands.push(std::mem::take(words));
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '#' if !in_word => break,
            ' ' | '\t' => end_word(&mut words, &mut word, &mut in_word, &mut skip_next_word),
            '\'' => {
                in_word = true;
                let start = i + 1;
                i = start;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                let quoted: String = chars[start..i.min(chars.len())].iter().collect();
                if quoted.contains("wbl ") {
                    parsed.nested.push(quoted.clone());
                }
                word.push_str(&quoted);
            }
            '"' => {
                in_word = true;
                i += 1;
                let start = word.len();
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    } else if chars[i] == '$' && chars.get(i + 1) == Some(&'(') {
                        let (inner, next) = substitution(&chars, i + 2);
                        parsed.nested.push(inner);
                        word.push('x');
                        i = next;
                        continue;
                    }
                    word.push(chars[i]);
                    i += 1;
                }
                if word[start..].contains("wbl ") {
                    parsed.nested.push(word[start..].to_owned());
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.get(i + 1) {
                    word.push(*n);
                    i += 1;
                }
            }
            '$' if chars.get(i + 1) == Some(&'(') => {
                in_word = true;
                let (inner, next) = substitution(&chars, i + 2);
                parsed.nested.push(inner);
                word.push('x');
                i = next;
                continue;
            }
            '|' | '&' | ';' => {
                end_word(&mut words, &mut word, &mut in_word, &mut skip_next_word);
                end_command(&mut words, &mut parsed);
                if chars.get(i + 1) == Some(&c) {
                    i += 1;
                }
            }
            '>' | '<' => {
                // A redirection: `2>` / `>>` / `<`, then its target word.
                if in_word && word.chars().all(|d| d.is_ascii_digit()) {
                    word.clear();
                    in_word = false;
                } else {
                    end_word(&mut words, &mut word, &mut in_word, &mut skip_next_word);
                }
                while chars.get(i + 1) == Some(&'>') || chars.get(i + 1) == Some(&'&') {
                    i += 1;
                }
                skip_next_word = true;
            }
            _ => {
                in_word = true;
                word.push(c);
            }
        }
        i += 1;
    }
    end_word(&mut words, &mut word, &mut in_word, &mut skip_next_word);
    end_command(&mut words, &mut parsed);
    parsed
}

/// The text of `$(…)` starting at `start` (after the parenthesis) and the index after it.
fn substitution(chars: &[char], start: usize) -> (String, usize) {
    let mut depth = 1;
    let mut i = start;
    while i < chars.len() {
        match chars[i] {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
        i += 1;
    }
    (chars[start..i.min(chars.len())].iter().collect(), i + 1)
}

/// The `wbl` or `wbl-agent` invocation of a command: assignments (`VAR=x`) and wrappers
/// (`srun`, `exec`, `sudo`, `env`, `nohup`, `time`) skipped.
fn invocation(words: &[String]) -> Option<&[String]> {
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        let assignment = w
            .split_once('=')
            .is_some_and(|(name, _)| is_ident(name) && !w.starts_with('-'));
        if assignment || ["srun", "exec", "sudo", "env", "nohup", "time"].contains(&w.as_str()) {
            i += 1;
            continue;
        }
        break;
    }
    let rest = &words[i..];
    matches!(rest.first().map(String::as_str), Some("wbl" | "wbl-agent")).then_some(rest)
}

/// A placeholder stands for a value (`<host>`, `URL`, `NAME`): replaced by a plain word.
fn unplaceholder(word: &str) -> String {
    if word.starts_with('<') && word.ends_with('>') {
        "x".to_owned()
    } else {
        word.to_owned()
    }
}

fn command_of(program: &str) -> clap::Command {
    match program {
        "wbl" => wbl::cli::Cli::command(),
        _ => wbl::agent::cli::Args::command(),
    }
}

fn check_invocation(args: &[String]) -> Result<(), String> {
    let words: Vec<String> = args.iter().map(|w| unplaceholder(w)).collect();
    match command_of(&words[0]).try_get_matches_from(&words) {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e.to_string().lines().next().unwrap_or_default().to_owned()),
    }
}

/// Checks one shell line and what is nested in it; returns how many invocations it checked.
fn check_shell_line(line: &str, at: &str, problems: &mut Vec<String>) -> usize {
    let parsed = parse_shell(line);
    let mut checked = 0;
    for words in &parsed.commands {
        if let Some(inv) = invocation(words) {
            checked += 1;
            if let Err(e) = check_invocation(inv) {
                problems.push(format!("{at}: `{}`: {e}", line.trim()));
            }
        }
    }
    for nested in &parsed.nested {
        checked += check_shell_line(nested, at, problems);
    }
    checked
}

#[test]
fn every_wbl_command_in_the_docs_sh_blocks_parses() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for doc in user_docs() {
        let text = read(&doc);
        let mut lang: Option<String> = None;
        for (i, line) in text.lines().enumerate() {
            if let Some(info) = line.trim_start().strip_prefix("```") {
                lang = match lang {
                    Some(_) => None,
                    None => Some(info.trim().to_owned()),
                };
                continue;
            }
            if matches!(lang.as_deref(), Some("sh" | "bash" | "shell")) {
                checked += check_shell_line(line, &format!("{doc}:{}", i + 1), &mut problems);
            }
        }
    }
    assert!(
        checked > 30,
        "only {checked} commands checked: is the parser broken?"
    );
    report("commands in the docs' sh blocks", problems);
}

/// `wbl …` in backticks in the prose and tables: the subcommands exist and every option named
/// is one of theirs (the rest of a synopsis — `[KEY | -]`, `URL`, `…` — is not checked).
#[test]
fn every_wbl_option_named_in_the_docs_prose_exists() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for doc in user_docs() {
        let text = read(&doc);
        for (n, line) in prose_lines(&text) {
            for span in code_spans(line) {
                let span = span.replace("\\|", "|");
                let mut words = span.split_whitespace();
                let program = match words.next() {
                    Some(p @ ("wbl" | "wbl-agent")) => p,
                    _ => continue,
                };
                checked += 1;
                let mut cmd = command_of(program);
                let mut path = vec![program.to_owned()];
                let mut descending = true;
                for w in words {
                    if w == "--" {
                        break;
                    }
                    if descending && !w.starts_with('-') {
                        let sub = cmd
                            .get_subcommands()
                            .find(|s| s.get_name() == w || s.get_all_aliases().any(|a| a == w))
                            .cloned();
                        if let Some(sub) = sub {
                            path.push(w.to_owned());
                            cmd = sub;
                            continue;
                        }
                        descending = false;
                        continue;
                    }
                    let flag = w
                        .trim_start_matches('[')
                        .split(['=', ']', ',', ')', '…'])
                        .next()
                        .unwrap_or_default();
                    if !flag.starts_with('-') || flag == "-" {
                        continue;
                    }
                    descending = false;
                    let known = if let Some(long) = flag.strip_prefix("--") {
                        long == "help"
                            || long == "version"
                            || cmd.get_arguments().any(|a| {
                                a.get_long() == Some(long)
                                    || a.get_all_aliases().is_some_and(|al| al.contains(&long))
                            })
                    } else {
                        let short = flag.trim_start_matches('-');
                        short.chars().count() != 1
                            || short == "h"
                            || cmd
                                .get_arguments()
                                .any(|a| a.get_short().is_some_and(|s| short.starts_with(s)))
                    };
                    if !known {
                        problems.push(format!(
                            "{doc}:{n}: `{span}`: `{}` has no option {flag}",
                            path.join(" ")
                        ));
                    }
                }
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} spans checked: is the parser broken?"
    );
    report("options named in the docs", problems);
}

// ---------------------------------------------------------------------------------------------
// The checker itself.

#[test]
fn the_shell_splitter_finds_every_command() {
    let p = parse_shell(
        "cd ~/w && WBL_X=1 wbl exec -- python 'a b' | jq -r '.x' > out 2>&1 # wbl nope",
    );
    assert_eq!(
        p.commands,
        vec![
            vec!["cd", "~/w"],
            vec!["WBL_X=1", "wbl", "exec", "--", "python", "a b"],
            vec!["jq", "-r", ".x"],
        ]
    );
    let p = parse_shell("export K=$(wbl token --host x); wbl ssh -- h 'wbl exec -- t'");
    assert_eq!(p.nested, vec!["wbl token --host x", "wbl exec -- t"]);
    let mut problems = Vec::new();
    assert_eq!(
        check_shell_line("wbl logn --bogus", "here", &mut problems),
        1
    );
    assert!(
        problems[0].starts_with("here: `wbl logn --bogus`: error:"),
        "{problems:?}"
    );
    assert!(check_invocation(&["wbl".into(), "login".into(), "--no-such".into()]).is_err());
    let ok = ["wbl", "ssh", "--ttl", "8h", "--", "h"].map(String::from);
    assert_eq!(check_invocation(&ok), Ok(()));
}

#[test]
fn rust_paths_resolve_only_when_they_exist() {
    let sources = all_sources();
    for good in [
        "crate::agent::run_with",
        "crate::wandb::resolver",
        "wbl_proto::account_user",
        "forward::permit",
        "dispatch::answer",
        "Request::Hello",
    ] {
        assert_eq!(check_rust_path(good, &sources), Ok(()), "{good}");
    }
    for bad in [
        "crate::agent::peer",
        "crate::agent::no_such_function",
        "forward::no_such",
        "nosuchmodule::x",
        "NoSuchType::x",
    ] {
        assert!(check_rust_path(bad, &sources).is_err(), "{bad}");
    }
}
