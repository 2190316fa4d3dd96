//! The rules of `cargo xtask tidy` that read one file's text: what a core crate may not use, and the bound
//! on a file's length. `check::tidy` walks the tree and applies them; they are plain functions of a path
//! and a text so that each rule has a test that fires and one that stays quiet.
//!
//! Easy to get wrong:
//! - test code is exempt, and "test code" must be found exactly: a whole file under a `tests/` directory
//!   or named `*tests.rs`, and the lines of an item marked `#[cfg(test)]` (a `mod x;` line, or a block to
//!   its closing brace at the attribute's indentation). Taking everything after the first
//!   `#[cfg(test)]` as test code (the old rule) exempts the rest of a file that declares its test
//!   module at the top;
//! - comments may name what they must not use (`//! does no std::io`): comment lines are not code;
//! - `use std::{env, io};` names `std::env` without writing it: grouped imports are read too;
//! - the length bound counts what is not test code: a file whose trailing `#[cfg(test)] mod tests { ... }`
//!   makes it long is not long. A file over the bound passes when its opening `//!` block has a line
//!   starting `Why this file is long:` (a reader deserves the reason before the 800 lines).

/// What a core crate's code may not name: core crates take time from packets and do no IO.
pub const CORE_FORBIDDEN: &[&str] = &[
    "std::fs",
    "std::io",
    "std::env",
    "std::net::TcpStream",
    "std::net::TcpListener",
    "std::net::UdpSocket",
    "std::process",
    "SystemTime::now",
    "Instant::now",
    "thread::spawn",
    "println!",
    "eprintln!",
    "print!",
    "eprint!",
];

/// Modules of `std` that a grouped import (`use std::{fs, io};`) may not name in a core crate.
const CORE_FORBIDDEN_STD_MODULES: &[&str] = &["fs", "io", "env", "process"];

/// Lines of code (test code aside) a source file in agent/ may have without saying why.
pub const MAX_FILE_LINES: usize = 800;

/// The justification a long file gives in its opening `//!` block.
pub const LONG_FILE_WHY: &str = "//! Why this file is long:";

/// Whether the whole file is test code (`rel` is the path from the repository root, `/`-separated).
pub fn is_test_file(rel: &str) -> bool {
    rel.split('/').any(|c| c == "tests") || rel.ends_with("tests.rs")
}

/// For each line of `text`, whether it belongs to an item marked `#[cfg(test)]`.
pub fn test_lines(text: &str) -> Vec<bool> {
    let lines: Vec<&str> = text.lines().collect();
    let mut test = vec![false; lines.len()];
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if l.trim() != "#[cfg(test)]" {
            i += 1;
            continue;
        }
        let indent = l.len() - l.trim_start().len();
        // The attribute, any further attributes, then the item's first line.
        let mut j = i;
        while j + 1 < lines.len() && lines[j].trim_start().starts_with("#[") {
            j += 1;
        }
        let head = lines[j].trim_end();
        let mut end = j;
        if head.ends_with('{') {
            // The block ends at the first closing brace at the attribute's indentation.
            end = lines.len() - 1;
            for (k, line) in lines.iter().enumerate().skip(j + 1) {
                let t = line.trim_start();
                if line.len() - t.len() == indent && t.starts_with('}') {
                    end = k;
                    break;
                }
            }
        }
        for t in &mut test[i..=end] {
            *t = true;
        }
        i = end + 1;
    }
    test
}

/// What a core crate's file `rel` uses that it may not (nothing for test code).
pub fn core_problems(rel: &str, text: &str) -> Vec<String> {
    if is_test_file(rel) {
        return Vec::new();
    }
    let test = test_lines(text);
    let mut found: Vec<&str> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if test[n] || code.starts_with("//") {
            continue;
        }
        for f in CORE_FORBIDDEN {
            if names(code, f) && !found.contains(f) {
                found.push(f);
            }
        }
        if let Some(group) = std_group(code) {
            for m in group {
                if let Some(f) = CORE_FORBIDDEN
                    .iter()
                    .find(|f| f.strip_prefix("std::") == Some(m))
                {
                    if !found.contains(f) {
                        found.push(f);
                    }
                }
            }
        }
    }
    found
        .into_iter()
        .map(|f| format!("{rel}: uses {f} (core crates take time from packets and do no IO)"))
        .collect()
}

/// Whether `code` names `what`: `print!` is not found inside `eprint!` or `println!`'s name, nor
/// `std::io` inside `std::iox`.
fn names(code: &str, what: &str) -> bool {
    code.match_indices(what).any(|(i, _)| {
        let before = code[..i].chars().next_back();
        let after = code[i + what.len()..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !word(before) && (what.ends_with('!') || !word(after))
    })
}

/// The std modules a grouped import names: `use std::{fs, io::Write};` gives `fs`, `io`.
fn std_group(code: &str) -> Option<Vec<&str>> {
    let rest = code.split_once("std::{")?.1;
    let inner = rest.split('}').next().unwrap_or("");
    Some(
        inner
            .split(',')
            .map(|p| p.trim().split("::").next().unwrap_or("").trim())
            .filter(|m| CORE_FORBIDDEN_STD_MODULES.contains(m))
            .collect(),
    )
}

/// Lines of `text` that count toward the length bound: all but those of `#[cfg(test)]` items.
pub fn code_lines(text: &str) -> usize {
    test_lines(text).iter().filter(|t| !**t).count()
}

/// The length rule for a source file in agent/: over [`MAX_FILE_LINES`] lines of non-test code, it must
/// say why in its opening `//!` block.
pub fn long_file_problem(rel: &str, text: &str) -> Option<String> {
    if is_test_file(rel) {
        return None;
    }
    let n = code_lines(text);
    if n <= MAX_FILE_LINES {
        return None;
    }
    let says_why = text
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .any(|l| l.starts_with(LONG_FILE_WHY));
    (!says_why).then(|| {
        format!(
            "{rel}: {n} lines (test code aside), over {MAX_FILE_LINES}: split it, or say at its top why not (a `{LONG_FILE_WHY} ...` line in its //! doc)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_code_may_not_do_io_or_print() {
        let text = "//! Does no std::io (a comment may say so).\nuse std::io::Write;\nfn f() { println!(\"x\"); }\n";
        assert_eq!(
            core_problems("agent/kwire-flow/src/x.rs", text),
            vec![
                "agent/kwire-flow/src/x.rs: uses std::io (core crates take time from packets and do no IO)",
                "agent/kwire-flow/src/x.rs: uses println! (core crates take time from packets and do no IO)",
            ]
        );
        // Grouped imports name the module without writing `std::env`.
        let grouped = "use std::{collections::BTreeMap, env};\n";
        assert_eq!(
            core_problems("agent/kwire-engine/src/y.rs", grouped),
            vec!["agent/kwire-engine/src/y.rs: uses std::env (core crates take time from packets and do no IO)"]
        );
        // `print!` found on its own, not only as part of `eprint!`.
        let p = "fn f() { print!(\"a\"); }\n";
        assert_eq!(core_problems("agent/kwire-kafka/src/z.rs", p).len(), 1);
    }

    #[test]
    fn core_test_code_and_comments_may_do_io() {
        let text = "\
//! Module doc naming std::env.
#[cfg(test)]
mod loss_tests;
use std::collections::BTreeMap;
// eprintln! in a comment
pub fn f() -> u32 {
    1
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    #[test]
    fn t() {
        println!(\"ok\");
    }
}
";
        assert!(core_problems("agent/kwire-flow/src/x.rs", text).is_empty());
        assert!(core_problems("agent/kwire-flow/src/tests/packet.rs", "use std::fs;\n").is_empty());
        assert!(core_problems("agent/kwire-kafka/src/body/tests.rs", "use std::fs;\n").is_empty());
        // `std::iox` is not `std::io`, `eprint!` inside `eprintln!` is the same finding once.
        assert!(core_problems("agent/kwire-flow/src/x.rs", "use std::iox;\n").is_empty());
    }

    /// A `#[cfg(test)] mod x;` at the top exempts that one line, not the rest of the file (the old
    /// rule's hole).
    #[test]
    fn a_test_module_declared_at_the_top_does_not_exempt_the_file() {
        let text = "#[cfg(test)]\nmod loss_tests;\nfn f() { let _ = std::time::Instant::now(); }\n";
        assert_eq!(core_problems("agent/kwire-engine/src/a.rs", text).len(), 1);
        assert_eq!(test_lines(text), vec![true, true, false]);
    }

    fn file(code: usize, tests: usize, why: bool) -> String {
        let mut s = String::from("//! A module.\n");
        if why {
            s.push_str("//! Why this file is long: one grammar, one table.\n");
        }
        s.push_str("//!\n//! Easy to get wrong: nothing.\n\n");
        let head = s.lines().count();
        for i in head..code {
            s.push_str(&format!("const C{i}: u32 = {i};\n"));
        }
        if tests > 0 {
            s.push_str("#[cfg(test)]\nmod tests {\n");
            for i in 0..tests.saturating_sub(3) {
                s.push_str(&format!("    const T{i}: u32 = 0;\n"));
            }
            s.push_str("}\n");
        }
        s
    }

    #[test]
    fn a_long_file_must_say_why() {
        let long = file(MAX_FILE_LINES + 1, 0, false);
        assert_eq!(code_lines(&long), MAX_FILE_LINES + 1);
        assert_eq!(
            long_file_problem("agent/kwire/src/run.rs", &long).unwrap(),
            "agent/kwire/src/run.rs: 801 lines (test code aside), over 800: split it, or say at its top why not (a `//! Why this file is long: ...` line in its //! doc)"
        );
        // The reason given at the top: it passes.
        let why = file(MAX_FILE_LINES + 1, 0, true);
        assert!(long_file_problem("agent/kwire/src/run.rs", &why).is_none());
    }

    #[test]
    fn test_code_does_not_make_a_file_long() {
        // 790 lines of code and 300 of trailing tests: not long.
        let text = file(790, 300, false);
        assert!(text.lines().count() > MAX_FILE_LINES);
        assert_eq!(code_lines(&text), 790);
        assert!(long_file_problem("agent/kwire-export/src/settings.rs", &text).is_none());
        // A file of tests is never long.
        let tests = file(2000, 0, false);
        assert!(long_file_problem("agent/kwire-kafka/src/body/tests.rs", &tests).is_none());
        assert!(long_file_problem("agent/kwire/tests/golden.rs", &tests).is_none());
        // At the bound exactly: fine.
        assert!(long_file_problem("agent/x/src/a.rs", &file(MAX_FILE_LINES, 0, false)).is_none());
    }

    /// The reason must be in the opening doc block, not somewhere below it.
    #[test]
    fn the_reason_must_be_at_the_top() {
        let mut text = file(MAX_FILE_LINES + 5, 0, false);
        text.push_str("//! Why this file is long: too late.\n");
        assert!(long_file_problem("agent/x/src/a.rs", &text).is_some());
    }
}
