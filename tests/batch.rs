//! `stance batch` end to end with the real model: a bad file among good ones, the
//! vector cache on a second run, sharded runs merged, and the HTML report in headless
//! Chromium (no network, no console errors, nothing from the articles executes).

use std::path::{Path, PathBuf};
use std::process::Command;

fn stance() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stance"))
}

fn seeds() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds")
}

/// A corpus folder: the seeds, one article unique to this run (so the cache has
/// something new to embed), an HTML page with hostile markup, and bad files.
fn corpus(dir: &Path) {
    for e in std::fs::read_dir(seeds()).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    let nonce = format!("{:?}", std::time::SystemTime::now());
    std::fs::write(
        dir.join("unique.txt"),
        format!("La Commissione propone nuove regole per l'IA ({nonce}). Gli Stati Uniti chiedono meno vincoli."),
    )
    .unwrap();
    std::fs::write(
        dir.join("hostile.html"),
        "<html><head><script>document.title='pwned'</script></head><body><h1>Titolo</h1><p>La UE deve regolamentare l'IA. <img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">Gli Stati Uniti chiedono meno regole.</p><p>&lt;script&gt;document.body.setAttribute('data-pwned','1')&lt;/script&gt; e &lt;a href=\"javascript:alert(1)\"&gt;link&lt;/a&gt;. Fine del testo.</p></body></html>",
    )
    .unwrap();
    std::fs::write(dir.join("binary.txt"), b"\x00\x01\x02binary\x00").unwrap();
    std::fs::write(dir.join("empty.txt"), b"").unwrap();
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = stance().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn embedded_new(stderr: &str) -> usize {
    let i = stderr.find("embedded ").expect("summary line");
    stderr[i + 9..].split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn bad_files_cache_and_shards() {
    let d = tempfile::tempdir().unwrap();
    let c = d.path().join("corpus");
    std::fs::create_dir(&c).unwrap();
    corpus(&c);
    let cs = c.to_str().unwrap();
    let out1 = d.path().join("one.jsonl");
    let (code, _, err) = run(&["batch", cs, "--out", out1.to_str().unwrap(), "--quiet"]);
    let (code_q, _, err_q) = (code, (), err.clone());
    let _ = code_q;
    assert_eq!(code, 2, "some files failed, the others scored: {err}");
    assert!(err.contains("binary.txt") && err.contains("empty.txt"), "{err_q}");
    assert!(!err.contains("panicked"));
    let text = std::fs::read_to_string(&out1).unwrap();
    let recs: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(recs.len(), 9);
    let ok = recs.iter().filter(|r| r.get("error").is_none()).count();
    assert_eq!(ok, 7, "5 seeds + unique + html");
    let bad: Vec<&str> = recs
        .iter()
        .filter_map(|r| r.get("error").map(|_| r["id"].as_str().unwrap()))
        .collect();
    assert!(bad.iter().any(|b| b.ends_with("binary.txt")) && bad.iter().any(|b| b.ends_with("empty.txt")));

    // A second run embeds nothing new and scores identically.
    let out2 = d.path().join("two.jsonl");
    let (_, _, err2) = run(&["batch", cs, "--out", out2.to_str().unwrap()]);
    assert_eq!(embedded_new(&err2), 0, "{err2}");
    assert_eq!(std::fs::read_to_string(&out2).unwrap(), text);

    // Three shards merged give the same report as one run.
    let mut parts = Vec::new();
    for k in 1..=3 {
        let p = d.path().join(format!("shard{k}.jsonl"));
        run(&["batch", cs, "--shard", &format!("{k}/3"), "--out", p.to_str().unwrap(), "--quiet"]);
        parts.push(p);
    }
    let total: usize = parts.iter().map(|p| std::fs::read_to_string(p).unwrap().lines().count()).sum();
    assert_eq!(total, 9, "shards partition the corpus");
    for fmt in ["md", "jsonl", "csv"] {
        let merged = d.path().join(format!("merged.{fmt}"));
        let single = d.path().join(format!("single.{fmt}"));
        let mut args = vec!["report", "merge"];
        let names: Vec<String> = parts.iter().map(|p| p.display().to_string()).collect();
        args.extend(names.iter().map(String::as_str));
        args.extend(["--out", merged.to_str().unwrap()]);
        assert_eq!(run(&args).0, 0);
        run(&["report", "merge", out1.to_str().unwrap(), "--out", single.to_str().unwrap()]);
        assert_eq!(std::fs::read(&merged).unwrap(), std::fs::read(&single).unwrap(), "{fmt}");
    }
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

#[test]
fn html_report_in_headless_chromium() {
    let d = tempfile::tempdir().unwrap();
    let c = d.path().join("corpus");
    std::fs::create_dir(&c).unwrap();
    corpus(&c);
    let html = d.path().join("report.html");
    let (code, _, err) = run(&["batch", c.to_str().unwrap(), "--out", html.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 2, "{err}");
    let page = std::fs::read_to_string(&html).unwrap();
    // Reproducible: the same corpus gives the same bytes (the charts included).
    let again = d.path().join("again.html");
    let (code, _, err) = run(&["batch", c.to_str().unwrap(), "--out", again.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 2, "{err}");
    assert!(page == std::fs::read_to_string(&again).unwrap(), "two runs, two different reports");
    // Self-contained: nothing to fetch, and a policy that forbids fetching.
    assert!(page.contains("Content-Security-Policy") && page.contains("default-src 'none'"));
    for bad in ["src=\"http", "href=\"http", "<link", "src=x onerror"] {
        assert!(!page.contains(bad), "{bad}");
    }
    assert!(page.matches("<svg").count() >= 2, "two charts");
    assert!(page.contains("&lt;script&gt;"), "article markup shown as text");
    let Some(chrome) = chromium() else {
        eprintln!("chromium not installed: skipping the browser half of this test");
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            &format!("--user-data-dir={}", profile.path().display()),
            "--virtual-time-budget=3000",
            "--dump-dom",
            &format!("file://{}", html.display()),
        ])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    // Our script ran to its end (no exception), and no article content ran.
    assert!(dom.contains("data-ready=\"1\""), "report script did not finish; log: {log}");
    assert!(!dom.contains("data-pwned=\"1\""), "article markup executed");
    assert!(
        dom.contains("setAttribute('data-pwned','1')"),
        "the hostile markup is shown as text"
    );
    assert!(dom.contains("<title>Stance report</title>"));
    for id in [
        "id=\"articles\"",
        "id=\"actors\"",
        "id=\"sources\"",
        "id=\"charts\"",
        "id=\"errors\"",
    ] {
        assert!(dom.contains(id), "{id} missing");
    }
    let console_errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") && (l.contains("Uncaught") || l.contains("Error") || l.contains("Refused")))
        .collect();
    assert!(console_errors.is_empty(), "console errors: {console_errors:?}");
}
