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
        let (code, _, err) = run(&["batch", cs, "--shard", &format!("{k}/3"), "--out", p.to_str().unwrap(), "--quiet"]);
        // The exit code follows the shard's own records (the README's rules): 0 all
        // scored, 2 some failed and others scored, 1 none scored. Which records a shard
        // gets depends on the ids' hashes (the temporary folder's name), so any may occur.
        let body = std::fs::read_to_string(&p).unwrap();
        let records = body.lines().count();
        let errors = body.lines().filter(|l| l.contains("\"error\":")).count();
        let expected = if errors == 0 {
            0
        } else if errors == records {
            1
        } else {
            2
        };
        assert_eq!(code, expected, "shard {k} ({errors} of {records} failed): {err}");
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
        assert_eq!(
            run(&["report", "merge", out1.to_str().unwrap(), "--out", single.to_str().unwrap()]).0,
            0
        );
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
    // What an analyst reads first: the summary with its counts (7 scored, 2 errors).
    assert!(page.contains("id=\"summary\""), "no summary section");
    let lean: Vec<usize> = ["regulation", "neutral", "openness", "errors"]
        .iter()
        .map(|k| tile_count(&page, k).unwrap_or_else(|| panic!("no {k} count in the summary")))
        .collect();
    assert_eq!(lean[0] + lean[1] + lean[2], 7, "{lean:?}");
    assert_eq!(lean[3], 2, "{lean:?}");
    assert!(page.contains("Strongest for regulation") && page.contains("Strongest for openness"));
    assert!(page.contains("Actors most often on the regulation side") && page.contains("Actors most often on the openness side"));
    // The scatter: one tooltip per scored article, points in the key's colours.
    let scatter = svg_of(&page, "scatter");
    assert_eq!(scatter.matches("<title>").count(), 7, "one tooltip per scored article");
    assert_eq!(scatter.matches("<circle").count(), 7);
    for fill in scatter
        .split("<circle")
        .skip(1)
        .map(|c| c.split("fill=\"").nth(1).unwrap()[..7].to_string())
    {
        assert!(["#d73027", "#2c7bb6", "#8c8c8c"].contains(&fill.as_str()), "{fill}");
    }
    // The histogram in the same key, with clean tick labels.
    let histogram = svg_of(&page, "histogram");
    assert!(
        histogram.contains("#d73027") || histogram.contains("#2c7bb6"),
        "histogram bars in the key colours"
    );
    for chart in [scatter, histogram] {
        let labels = svg_texts(chart);
        assert!(labels.iter().any(|l| l == "0"), "no \"0\" tick: {labels:?}");
        assert!(
            !labels.iter().any(|l| l.starts_with('+') || l == "−0" || l.contains(".0 ")),
            "{labels:?}"
        );
    }
    assert!(page.contains("#d73027") && page.contains("#2c7bb6"), "the red and blue key");
    // Stance by source and by actor; no dates in this corpus, so no chart over time.
    for id in ["by-source", "by-actor"] {
        let chart = svg_of(&page, id);
        assert!(chart.contains("<rect") && chart.contains("<title>"), "{id} has no bars");
    }
    assert!(!page.contains("id=\"months\"") && page.contains("No dates in the input"));
    // Article sections headed by names relative to the corpus folder, with verdicts.
    let sections: Vec<&str> = page.split("<section class=\"art\"").skip(1).collect();
    assert_eq!(sections.len(), 7, "one section per scored article");
    for sec in &sections {
        let h3 = sec.split("<h3>").nth(1).unwrap().split("</h3>").next().unwrap();
        assert!(!h3.contains('/') && (h3.ends_with(".txt") || h3.ends_with(".html")), "heading {h3}");
        let verdict = sec
            .split("<p class=\"verdict\">")
            .nth(1)
            .expect("a verdict")
            .split("</p>")
            .next()
            .unwrap();
        assert!(verdict.contains("stance: ") && verdict.contains("sentiment: "), "{verdict}");
    }
    assert!(page.contains("<h3>hostile.html</h3>") && page.contains("<h3>unique.txt</h3>"));
    // Every internal link has its target.
    assert_eq!(missing_link_targets(&page), Vec::<String>::new(), "links to missing ids");
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

/// `classify` and `batch` run one article pipeline: the same inputs give the same
/// sentences, the same sentence and article judgments, written with the same digits.
#[test]
fn classify_and_batch_give_identical_judgments() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("b.jsonl");
    let root = env!("CARGO_MANIFEST_DIR");
    let files: Vec<String> = (0..5)
        .map(|i| {
            std::fs::read_dir(seeds())
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.to_string_lossy().contains(&format!("/00{i}_")))
                .next()
                .unwrap()
        })
        .map(|p| p.strip_prefix(root).unwrap().to_string_lossy().into_owned())
        .collect();
    let b = stance()
        .current_dir(root)
        .args(["batch", "seeds", "-q", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(b.status.code(), Some(0), "{}", String::from_utf8_lossy(&b.stderr));
    let c = stance()
        .current_dir(root)
        .arg("classify")
        .args(&files)
        .args(["--format", "jsonl"])
        .output()
        .unwrap();
    assert_eq!(c.status.code(), Some(0), "{}", String::from_utf8_lossy(&c.stderr));
    let batch_text = std::fs::read_to_string(&out).unwrap();
    let batch: Vec<serde_json::Value> = batch_text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let classify: Vec<serde_json::Value> = String::from_utf8(c.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(batch.len(), 5);
    for a in &classify {
        let id = a["id"].as_str().unwrap();
        let b = batch
            .iter()
            .find(|b| b["path"].as_str().unwrap().ends_with(id))
            .unwrap_or_else(|| panic!("{id} not in batch"));
        for key in ["lang", "stance", "sentiment", "counts", "model"] {
            assert_eq!(a[key], b[key], "{id}: {key}");
        }
        let (sa, sb) = (a["sentences"].as_array().unwrap(), b["sentences"].as_array().unwrap());
        assert_eq!(sa.len(), sb.len(), "{id}");
        for (x, y) in sa.iter().zip(sb) {
            for key in ["index", "start", "end", "text", "stance", "sentiment"] {
                assert_eq!(x[key], y[key], "{id}: sentence {}: {key}", x["index"]);
            }
        }
    }
    // Numbers are written with at most 4 decimals in both (no f32 noise such as
    // 0.07270000129938126).
    fn four_decimals(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Number(n) => n.to_string().split('.').nth(1).is_none_or(|f| f.len() <= 4),
            serde_json::Value::Array(a) => a.iter().all(four_decimals),
            serde_json::Value::Object(o) => o.values().all(four_decimals),
            _ => true,
        }
    }
    assert!(batch.iter().all(four_decimals), "more than 4 decimals in batch output");
    assert!(classify.iter().all(four_decimals), "more than 4 decimals in classify output");
}

/// The inputs where the two commands' paths once differed: HTML markup is stripped and
/// a lossy decoding is warned about, by both, with the same records.
#[test]
fn classify_and_batch_read_html_and_lossy_text_alike() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("page.html"),
        "<html><head><title>t</title><script>var x = 1;</script></head><body><p>The European Commission wants strict rules for artificial intelligence.</p><p>Startups say the rules will slow innovation.</p></body></html>",
    )
    .unwrap();
    // "Città" in Latin-1: not UTF-8, so decoded with a replacement and a warning.
    std::fs::write(
        dir.join("latin1.txt"),
        b"La citt\xe0 chiede regole per l'intelligenza artificiale. Il governo esita.\n",
    )
    .unwrap();
    let out = d.path().join("b.jsonl");
    let b = stance()
        .args(["batch", "-q", "--lossy", "--no-cache", "--out"])
        .arg(&out)
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(b.status.code(), Some(0), "{}", String::from_utf8_lossy(&b.stderr));
    let c = stance()
        .args(["classify", "--lossy", "--no-cache", "--format", "jsonl"])
        .arg(dir.join("latin1.txt"))
        .arg(dir.join("page.html"))
        .output()
        .unwrap();
    assert_eq!(c.status.code(), Some(0), "{}", String::from_utf8_lossy(&c.stderr));
    for stderr in [&b.stderr, &c.stderr] {
        let e = String::from_utf8_lossy(stderr);
        assert!(e.contains("warning") && e.contains("latin1.txt"), "no lossy warning: {e}");
    }
    let parse = |t: &str| -> Vec<serde_json::Value> { t.lines().map(|l| serde_json::from_str(l).unwrap()).collect() };
    let mut batch = parse(&std::fs::read_to_string(&out).unwrap());
    let mut classify = parse(&String::from_utf8(c.stdout).unwrap());
    let by_id = |v: &serde_json::Value| v["id"].as_str().unwrap().to_string();
    batch.sort_by_key(by_id);
    classify.sort_by_key(by_id);
    assert_eq!(batch.len(), 2);
    // `source` differs by how a file was reached: its folder below the walked root
    // ("in") or, for a file named on the command line, its parent path.
    for r in batch.iter_mut().chain(classify.iter_mut()) {
        r.as_object_mut().unwrap().remove("source");
    }
    assert_eq!(batch, classify, "the two commands' records differ");
    let html = batch.iter().find(|r| r["id"].as_str().unwrap().ends_with("page.html")).unwrap();
    let texts: Vec<&str> = html["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    assert!(
        texts.iter().all(|t| !t.contains('<') && !t.contains("var x")),
        "markup or script scored: {texts:?}"
    );
    let lossy = batch.iter().find(|r| r["id"].as_str().unwrap().ends_with("latin1.txt")).unwrap();
    assert!(!lossy["warnings"].as_array().unwrap().is_empty(), "the record keeps the warning");
}

/// Two real processes on one `--out`: the second is refused at once (the first holds
/// the output's lock while it waits for its standard input), the first then completes
/// with all its records; bad outputs fail before any scoring.
#[test]
fn a_second_run_on_the_same_output_is_refused_and_bad_outputs_fail_first() {
    use std::io::Write as _;
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out.jsonl");
    let mut first = stance()
        .args(["batch", "-", "-q", "--no-cache", "--out"])
        .arg(&out)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first run has claimed the output.
    let lock = d.path().join(".out.jsonl.lock");
    let t0 = std::time::Instant::now();
    while !lock.exists() && t0.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let second = stance()
        .args(["batch", "seeds", "-q", "--out"])
        .arg(&out)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{e}");
    assert!(e.contains("another stance run is writing") && e.trim().lines().count() == 1, "{e}");
    let mut stdin = first.stdin.take().unwrap();
    stdin
        .write_all(
            b"{\"id\":\"a\",\"text\":\"La UE deve regolamentare l'IA.\"}\n{\"id\":\"b\",\"text\":\"Meno regole, piu innovazione.\"}\n",
        )
        .unwrap();
    drop(stdin);
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", String::from_utf8_lossy(&first.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    let ids: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, ["a", "b"]);
    // An existing directory, or an extension that names no format, fails at once.
    for (bad, msg) in [
        (d.path().to_path_buf(), "is a directory"),
        (d.path().join("report.txt"), "unknown report extension"),
    ] {
        let o = stance()
            .args(["batch", "seeds", "-q", "--out"])
            .arg(&bad)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{e}");
        assert!(e.contains(msg) && e.trim().lines().count() == 1, "{e}");
        assert!(!d.path().join("report.txt").exists());
    }
}

/// Ctrl-C (SIGINT) and SIGTERM inside one long article: the stop is honoured between
/// encoder batches, so no article is finished (the old behaviour ran the article to
/// its end first), the run says so and exits 130, keeping its `.partial` file.
#[test]
fn a_stop_inside_one_long_article_is_honoured_between_batches() {
    let d = tempfile::tempdir().unwrap();
    let article = d.path().join("long.txt");
    std::fs::write(&article, "parola ".repeat(300_000) + "fine.").unwrap();
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let out = d.path().join(format!("out{signal}.jsonl"));
        let child = stance()
            .args(["batch", "--no-cache", "-q", "--out"])
            .arg(&out)
            .arg(&article)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Once the output is claimed, the model loads and the article is being encoded.
        let lock = d.path().join(format!(".out{signal}.jsonl.lock"));
        while !lock.exists() {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(child.id() as i32, signal) };
        let o = child.wait_with_output().unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(130), "{e}");
        assert!(e.contains("interrupted after 0 of 1 articles"), "{e}");
        assert!(!e.contains("cached vectors"), "--no-cache promises no cache: {e}");
        assert!(d.path().join(format!("out{signal}.jsonl.partial")).exists() && !out.exists());
    }
}

/// A symbolic link in a folder is named as not followed (an error record, exit 2),
/// never skipped in silence.
#[test]
fn links_in_a_folder_are_named_not_skipped() {
    let d = tempfile::tempdir().unwrap();
    let corpus = d.path().join("corpus");
    std::fs::create_dir(&corpus).unwrap();
    let seed = std::fs::read_dir(seeds()).unwrap().next().unwrap().unwrap().path();
    std::fs::copy(&seed, corpus.join("a.txt")).unwrap();
    std::os::unix::fs::symlink(corpus.join("a.txt"), corpus.join("link.txt")).unwrap();
    let out = d.path().join("r.jsonl");
    let o = stance().args(["batch", "-q", "--out"]).arg(&out).arg(&corpus).output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("link.txt: symbolic link, not followed"), "{e}");
    let recs: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs.iter().filter(|r| r.get("error").is_some()).count(), 1);
}

/// Standard error that cannot be written (`2>/dev/full`) stops nothing: results still
/// reach standard output and the exit code says a file failed; a closed standard
/// output ends `embed` and `batch` quietly.
#[test]
fn failing_streams_never_panic() {
    let root = env!("CARGO_MANIFEST_DIR");
    for cmd in [&["classify", "--format", "csv"][..], &["batch", "-q"][..]] {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let o = stance()
            .current_dir(root)
            .args(cmd)
            .args(["seeds/000_dd4dafae28c34c02.txt", "no-such-file.txt"])
            .stderr(full)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{cmd:?}");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("seeds/000_dd4dafae28c34c02.txt"),
            "{cmd:?}"
        );
    }
    for cmd in [&["embed"][..], &["batch", "-q"][..], &["classify", "--format", "jsonl"][..]] {
        let inputs: Vec<String> = if cmd[0] == "batch" {
            vec!["seeds".into()]
        } else {
            std::fs::read_dir(seeds())
                .unwrap()
                .map(|e| e.unwrap().path().display().to_string())
                .collect()
        };
        let mut child = stance()
            .current_dir(root)
            .args(cmd)
            .args(&inputs)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Read one byte, then close the pipe, as `| head -c 1` does.
        use std::io::Read as _;
        let mut one = [0u8; 1];
        child.stdout.take().unwrap().read_exact(&mut one).unwrap();
        let o = child.wait_with_output().unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{cmd:?}: {e}");
        assert!(!e.contains("Broken pipe") && !e.contains("panicked"), "{cmd:?}: {e}");
    }
}

/// The number in the summary's tile for `key` (regulation, neutral, openness, errors).
fn tile_count(page: &str, key: &str) -> Option<usize> {
    let at = page.find(&format!("id=\"n-{key}\"><b>"))?;
    let rest = &page[at..];
    rest[rest.find("<b>")? + 3..rest.find("</b>")?].parse().ok()
}

/// The inline SVG with the given id, whole.
fn svg_of<'a>(page: &'a str, id: &str) -> &'a str {
    let at = page.find(&format!("<svg id=\"{id}\"")).unwrap_or_else(|| panic!("no chart {id}"));
    let end = page[at..].find("</svg>").unwrap();
    &page[at..at + end + 6]
}

/// The text of every `<text>` element of an SVG (tick labels, captions), tags inside dropped.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .map(|t| {
            let body = &t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()];
            let mut out = String::new();
            let mut in_tag = false;
            for c in body.chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => out.push(c),
                    _ => {}
                }
            }
            out
        })
        .collect()
}

/// Every `href="#x"` whose `id="x"` is not on the page.
fn missing_link_targets(page: &str) -> Vec<String> {
    let values = |attr: &str| -> Vec<String> {
        page.split(attr)
            .skip(1)
            .map(|rest| rest[..rest.find('"').unwrap()].to_string())
            .collect()
    };
    let ids: std::collections::BTreeSet<String> = values(" id=\"").into_iter().collect();
    let hrefs = values("href=\"#");
    assert!(!hrefs.is_empty(), "no internal links at all");
    hrefs.into_iter().filter(|h| !ids.contains(h)).collect()
}

/// Hand-written batch records (no model needed): four scored articles in two
/// folders, two sources, dates over two months, and one error.
fn synthetic_records(dir: &Path) -> PathBuf {
    // A judgment as records hold it: a label, a score and the three probabilities.
    let judgment = |labels: [&str; 3], score: f64| {
        let label = if score < -0.1 {
            labels[0]
        } else if score > 0.1 {
            labels[2]
        } else {
            labels[1]
        };
        let probs = serde_json::json!({labels[0]: (1.0 - score) / 3.0, labels[1]: 1.0 / 3.0, labels[2]: (1.0 + score) / 3.0});
        serde_json::json!({"label": label, "score": score, "probs": probs})
    };
    let stance = |score: f64| judgment(["regulation", "neutral", "openness"], score);
    let sentiment = |score: f64| judgment(["negative", "neutral", "positive"], score);
    let sentence = |i: usize, start: usize, text: &str, score: f64, actors: &[&str]| {
        serde_json::json!({"index": i, "start": start, "end": start + text.len(), "text": text,
            "stance": stance(score), "sentiment": sentiment(0.0), "actors": actors})
    };
    let article = |path: &str, source: &str, date: &str, score: f64| {
        let (a, b, c) = (
            "La UE deve regolamentare l'IA.",
            "Gli Stati Uniti chiedono <b>meno</b> regole.",
            "Un nuovo paragrafo.",
        );
        serde_json::json!({"id": path, "path": path, "source": source, "date": date, "lang": "it",
            "stance": stance(score), "sentiment": sentiment(0.3),
            "counts": {"stance": {"regulation": 1, "neutral": 1, "openness": 1}, "sentiment": {"negative": 0, "neutral": 3, "positive": 0}},
            "explain": {"openness": [], "regulation": []},
            "sentences": [sentence(0, 0, a, -0.6, &["European Union"]), sentence(1, a.len() + 1, b, 0.5, &["United States"]),
                sentence(2, a.len() + b.len() + 3, c, score, &[])]})
    };
    let recs = [
        article("/data/news/x/a.txt", "Il Foglio", "2025-03-14", -0.4),
        article("/data/news/x/b.txt", "Il Foglio", "2025-03-20", 0.05),
        article("/data/news/y/c.txt", "Wired", "2025-04-02", 0.3),
        article("/data/news/y/d.txt", "Wired", "2025-04-28", 0.6),
        serde_json::json!({"id": "/data/news/y/e.txt", "path": "/data/news/y/e.txt", "source": "Wired", "error": "no sentences found"}),
    ];
    let p = dir.join("records.jsonl");
    std::fs::write(&p, recs.iter().map(|r| format!("{r}\n")).collect::<String>()).unwrap();
    p
}

/// The HTML report of records (through `report merge`, so no model runs): texts capped
/// with a visible note and no dangling links, names relative to the common folder,
/// paragraphs where the source had blank lines, a chart of stance by month.
#[test]
fn html_report_caps_texts_names_articles_and_charts_months() {
    let d = tempfile::tempdir().unwrap();
    let recs = synthetic_records(d.path());
    let render = |name: &str, texts: &str| {
        let html = d.path().join(name);
        let (code, _, err) = run(&[
            "report",
            "merge",
            recs.to_str().unwrap(),
            "--out",
            html.to_str().unwrap(),
            "--html-texts",
            texts,
        ]);
        assert_eq!(code, 0, "{err}");
        std::fs::read_to_string(&html).unwrap()
    };
    let page = render("r.html", "2");
    assert_eq!(page, render("again.html", "2"), "two renders, two different pages");
    assert!(
        page.contains("Texts shown for the first 2 of 4 articles"),
        "no note on the capped texts"
    );
    assert!(page.contains("id=\"a0\"") && page.contains("id=\"a1\"") && !page.contains("id=\"a2\""));
    let table = &page[page.find("id=\"articles\"").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    assert_eq!(table.matches("<a href=").count(), 2, "only shown articles are links");
    assert!(
        table.contains("<td>y/c.txt</td>") && table.contains("<td>y/d.txt</td>"),
        "rows beyond the cap are plain names"
    );
    assert_eq!(missing_link_targets(&page), Vec::<String>::new(), "links to missing ids");
    assert!(
        page.contains("<h3>x/a.txt</h3>") && !page.contains("<h3>/data"),
        "names relative to /data/news/"
    );
    assert!(page.contains("<li>y/e.txt: no sentences found</li>"));
    // Counts: a.txt leans to regulation, b.txt is neutral, c and d lean to openness.
    assert_eq!(
        ["regulation", "neutral", "openness", "errors"].map(|k| tile_count(&page, k).unwrap()),
        [1, 1, 2, 1]
    );
    // The sentence after a blank line (a two-byte gap) opens a new paragraph; markup
    // in a sentence is text.
    let first = &page[page.find("id=\"a0\"").unwrap()..];
    let first = &first[..first.find("</section>").unwrap()];
    assert_eq!(first.matches("<p>").count(), 2, "{first}");
    assert!(first.contains("&lt;b&gt;meno&lt;/b&gt;") && !first.contains("<b>meno"));
    // Stance by month: March and April.
    let months = svg_of(&page, "months");
    assert!(months.contains(">2025-03<") && months.contains(">2025-04<") && months.matches("<title>").count() == 2);
    assert!(
        months.contains("#d73027") && months.contains("#2c7bb6"),
        "March leans to regulation, April to openness"
    );
    let sources = svg_of(&page, "by-source");
    assert!(sources.contains("Il Foglio") && sources.contains("Wired"));
    let actors = svg_of(&page, "by-actor");
    assert!(actors.contains("European Union") && actors.contains("United States"));
    assert_eq!(svg_of(&page, "scatter").matches("<title>").count(), 4);
}

/// A screenshot of the report in headless Chromium (as a person would see it) is not
/// blank: well above the size of a screenshot of an empty page taken the same way.
#[test]
fn html_report_screenshot_is_not_blank() {
    let Some(chrome) = chromium() else {
        eprintln!("chromium not installed: skipping the screenshot test");
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let recs = synthetic_records(d.path());
    let html = d.path().join("report.html");
    let (code, _, err) = run(&["report", "merge", recs.to_str().unwrap(), "--out", html.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let empty = d.path().join("empty.html");
    std::fs::write(
        &empty,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>empty</title></head><body></body></html>",
    )
    .unwrap();
    let shot = |page: &Path, png: &Path| {
        let profile = tempfile::tempdir().unwrap();
        let out = Command::new(&chrome)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                &format!("--user-data-dir={}", profile.path().display()),
                "--virtual-time-budget=3000",
                &format!("--screenshot={}", png.display()),
                "--window-size=1280,2000",
                &format!("file://{}", page.display()),
            ])
            .output()
            .unwrap();
        let len = std::fs::metadata(png).map(|m| m.len()).unwrap_or(0);
        assert!(
            len > 0,
            "no screenshot of {}: {}",
            page.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        len
    };
    let blank = shot(&empty, &d.path().join("empty.png"));
    let report = shot(&html, &d.path().join("report.png"));
    assert!(report > 20_000, "a report screenshot of {report} bytes");
    assert!(
        report > 5 * blank,
        "the report's screenshot ({report} bytes) is hardly bigger than a blank page's ({blank} bytes)"
    );
}
