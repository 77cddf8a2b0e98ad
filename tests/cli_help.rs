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

fn stance(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stance"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn explain_n_is_honoured_in_json_and_bad_names_list_the_valid_ones() {
    for (n, want) in [(None, 3), (Some("0"), 0), (Some("1"), 1), (Some("5"), 5)] {
        let mut args = vec!["classify", "seeds/001_e4b1f6cbe6b8503a.txt", "--format", "json"];
        if let Some(n) = n {
            args.extend(["--explain", n]);
        }
        let out = stance(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for side in ["openness", "regulation"] {
            assert_eq!(v[0]["explain"][side].as_array().unwrap().len(), want, "--explain {n:?} {side}");
        }
    }
    let out = stance(&["classify", "--model", "bogus", "seeds/001_e4b1f6cbe6b8503a.txt"]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(e.contains("known: e5-small-q4") && e.contains("e5-small-q4+stance"), "{e}");
    let out = stance(&["classify", "--head", "nosuch", "seeds/001_e4b1f6cbe6b8503a.txt"]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        e.contains("available: default,") && e.contains("fused") && e.trim().lines().count() == 1,
        "{e}"
    );
}

#[test]
fn models_list_columns_line_up() {
    let out = stance(&["models", "list"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    // The "present" column starts at the same place on every row, adapters included.
    let col = |l: &str| l.find("  yes").or_else(|| l.find("  no")).or_else(|| l.find("  present"));
    let first = col(rows[0]).unwrap();
    for r in &rows {
        assert_eq!(col(r), Some(first), "{text}");
    }
    assert!(rows.iter().any(|r| r.contains("+stance")), "{text}");
}

/// A backend the model cannot run with is an error naming the option, never silently
/// replaced by another.
#[test]
fn impossible_backend_combinations_are_refused() {
    let out = stance(&[
        "classify",
        "--model",
        "e5-small-q4+stance",
        "--backend",
        "candle",
        "seeds/001_e4b1f6cbe6b8503a.txt",
    ]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.contains("--backend candle") && e.contains("adapter") && e.trim().lines().count() == 1,
        "{e}"
    );
    // The base variant runs on candle as asked.
    let out = stance(&["embed", "--backend", "candle", "seeds/001_e4b1f6cbe6b8503a.txt"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
