//! The command line explains itself: every option and argument of every command has a
//! description in `--help`.

use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_stance"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The option and argument entries of a long help text that have no description (only
/// a default or the possible values, or nothing).
fn undescribed(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut missing = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        let entry = l.starts_with("  ") && !l.starts_with("      ") || l.starts_with("      --");
        let trimmed = l.trim_start();
        if entry && (trimmed.starts_with('-') || trimmed.starts_with('<') || trimmed.starts_with('[')) {
            let mut j = i + 1;
            // Short layout: the description follows the entry on its own line.
            let inline = trimmed.split("  ").map(str::trim).filter(|p| !p.is_empty()).nth(1);
            let mut described = inline.is_some_and(|d| !(d.starts_with("[default:") || d.starts_with("[possible values:")));
            // Long layout: description lines below, indented deeper than any entry.
            while j < lines.len() && !lines[j].trim().is_empty() && lines[j].starts_with("        ") {
                let d = lines[j].trim();
                if !(d.starts_with("[default:") || d.starts_with("[possible values:")) {
                    described = true;
                }
                j += 1;
            }
            if !described {
                missing.push(trimmed.split("  ").next().unwrap().to_string());
            }
            i = j;
        } else {
            i += 1;
        }
    }
    missing
}

#[test]
fn every_option_of_every_command_is_described() {
    let commands: &[&[&str]] = &[
        &[],
        &["segment"],
        &["embed"],
        &["classify"],
        &["batch"],
        &["report", "merge"],
        &["train"],
        &["eval"],
        &["select"],
        &["bench"],
        &["models", "list"],
        &["models", "fetch"],
        &["models", "distill"],
    ];
    let mut all = Vec::new();
    for c in commands {
        for m in undescribed(&help(c)) {
            all.push(format!("stance {}: {m}", c.join(" ")));
        }
    }
    assert!(all.is_empty(), "options without a description:\n{}", all.join("\n"));
    // Standard input is documented where files are read.
    for c in ["segment", "embed", "classify"] {
        assert!(help(&[c]).contains("`-` or none reads standard input"), "{c}");
    }
}

#[test]
fn the_checker_sees_a_bare_option() {
    let text = "Options:\n      --good <X>\n          Does a thing\n\n      --bare <Y>\n          [default: 3]\n\n  -h, --help\n          Print help\n";
    assert_eq!(undescribed(text), vec!["--bare <Y>".to_string()]);
    let short = "Options:\n      --good <X>  Does a thing\n      --bare <Y>  [default: 3]\n  -h, --help  Print help\n";
    assert_eq!(undescribed(short), vec!["--bare <Y>".to_string()]);
}
