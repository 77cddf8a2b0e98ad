//! Hostile input, end to end through the real binary. Every input is generated here,
//! in a temporary folder. Each case asserts correct output, or one stderr line that
//! names the file and the problem (and a non-zero exit where nothing could be done);
//! never a panic, never a death by signal.
//!
//! `stance segment` (no model) covers decoding and segmentation; a few `stance
//! classify` runs (the real model, several files per run) cover scoring, exit codes,
//! determinism and a closed output pipe; `stance batch -` covers malformed JSON Lines;
//! `stance train` / `stance eval` cover labeled-data errors (refused before any model
//! is loaded).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use stance::segment::Segmenter;

const BIN: &str = env!("CARGO_BIN_EXE_stance");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// A hang fails its test instead of stalling the suite.
const LIMIT: Duration = Duration::from_secs(900);

macro_rules! args {
    ($($a:expr),* $(,)?) => { vec![$(OsString::from(&$a)),*] };
}

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

fn stance_cmd() -> Command {
    let mut c = Command::new(BIN);
    // From the source tree, so models/heads and models/actors.tsv are found.
    c.current_dir(ROOT)
        .env("NO_COLOR", "1")
        .env_remove("STANCE_LOG")
        .env_remove("RAYON_NUM_THREADS");
    c
}

fn drain(mut r: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

fn wait_limited(child: &mut Child, what: &str) -> ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for stance") {
            return status;
        }
        if t0.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{what}` did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Run {
    what: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(args: Vec<OsString>) -> Run {
    run_with(args, None)
}

fn run_with(args: Vec<OsString>, stdin: Option<Vec<u8>>) -> Run {
    let mut what = format!(
        "stance {}",
        args.iter().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
    );
    if what.len() > 400 {
        let mut cut = 400;
        while !what.is_char_boundary(cut) {
            cut -= 1;
        }
        what.truncate(cut);
        what.push_str(" …");
    }
    let mut cmd = stance_cmd();
    cmd.args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
    let feeder = stdin.map(|bytes| {
        let mut w = child.stdin.take().expect("child stdin");
        std::thread::spawn(move || {
            let _ = w.write_all(&bytes);
        })
    });
    let out = drain(child.stdout.take().expect("child stdout"));
    let err = drain(child.stderr.take().expect("child stderr"));
    let status = wait_limited(&mut child, &what);
    if let Some(f) = feeder {
        let _ = f.join();
    }
    Run {
        what,
        code: status.code(),
        stdout: String::from_utf8_lossy(&out.join().expect("stdout reader")).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().expect("stderr reader")).into_owned(),
    }
}

impl Run {
    fn context(&self) -> String {
        let err: String = self.stderr.chars().take(6000).collect();
        let out: String = self.stdout.chars().take(1500).collect();
        format!(
            "`{}` exited with {:?}\n--- stderr ---\n{err}\n--- stdout (start) ---\n{out}",
            self.what, self.code
        )
    }

    /// No panic and no death by signal (a stack overflow aborts).
    fn assert_sane(&self) {
        assert!(
            self.code.is_some(),
            "killed by a signal (crash, abort or stack overflow): {}",
            self.context()
        );
        for bad in ["panicked", "overflowed its stack", "RUST_BACKTRACE", "fatal runtime error"] {
            assert!(!self.stderr.contains(bad), "{bad:?} in stderr: {}", self.context());
        }
    }

    fn assert_code(&self, code: i32) {
        self.assert_sane();
        assert_eq!(self.code, Some(code), "exit code: {}", self.context());
    }

    /// Every stderr line is one of the program's own one-line messages
    /// (`stance: error: …`, `stance: warning: …`): no message spills onto a second line.
    /// Only for commands that load no model (the model may log).
    fn assert_one_line_messages(&self) {
        for l in self.stderr.lines() {
            assert!(
                l.starts_with("stance: "),
                "stderr line {l:?} is not a one-line `stance:` message: {}",
                self.context()
            );
        }
    }

    /// The one stderr line that names `path`.
    fn line_for(&self, path: &Path) -> String {
        let p = path.display().to_string();
        let lines: Vec<&str> = self.stderr.lines().filter(|l| l.contains(&p)).collect();
        assert_eq!(lines.len(), 1, "expected exactly one stderr line naming {p}: {}", self.context());
        lines[0].to_string()
    }

    /// The one error line that names `path`; it must contain each of `what`.
    fn error_for(&self, path: &Path, what: &[&str]) -> String {
        let l = self.line_for(path);
        assert!(l.contains("error"), "{l:?} is not an error line: {}", self.context());
        for w in what {
            assert!(l.contains(w), "error line {l:?} lacks {w:?}: {}", self.context());
        }
        l
    }

    fn mentions(&self, path: &Path) -> bool {
        self.stderr.contains(&path.display().to_string())
    }
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    p
}

fn utf16(text: &str, le: bool) -> Vec<u8> {
    let mut b: Vec<u8> = if le { vec![0xFF, 0xFE] } else { vec![0xFE, 0xFF] };
    for u in text.encode_utf16() {
        b.extend_from_slice(&if le { u.to_le_bytes() } else { u.to_be_bytes() });
    }
    b
}

fn seeds() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("seeds"))
        .expect("seeds folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no seeds/*.txt");
    v
}

// ---------------------------------------------------------------------------
// Segmentation output and its invariants
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
struct Seg {
    start: usize,
    end: usize,
    text: String,
}

fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{200B}' || c == '\u{FEFF}'
}

/// Visible characters: not whitespace, and not a format character that shows nothing
/// by itself (joiners, direction marks, soft hyphen, BOM); a piece of only those is
/// not a sentence.
fn nonspace(s: &str) -> usize {
    s.chars()
        .filter(|&c| {
            !is_space(c)
                && !matches!(c, '\u{00AD}' | '\u{200C}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}')
        })
        .count()
}

fn collapse(s: &str) -> String {
    s.split(is_space).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// `stance segment --format jsonl [extra…] PATH`.
fn segment(path: &Path, extra: &[&str]) -> Run {
    let mut a = args!["segment", "--format", "jsonl"];
    a.extend(extra.iter().map(OsString::from));
    a.push(path.into());
    run(a)
}

/// The sentences `stance segment --format jsonl` printed for `path`, in order.
fn segs_of(r: &Run, path: &Path) -> Vec<Seg> {
    let name = path.display().to_string();
    let mut out = Vec::new();
    for line in r.stdout.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        if v["file"].as_str() != Some(name.as_str()) {
            continue;
        }
        assert_eq!(v["index"].as_u64(), Some(out.len() as u64), "index of {line}");
        out.push(Seg {
            start: v["start"].as_u64().expect("start") as usize,
            end: v["end"].as_u64().expect("end") as usize,
            text: v["text"].as_str().expect("text").to_string(),
        });
    }
    out
}

/// Offsets slice the decoded text on char boundaries, in order, trimmed, without
/// overlap; each `text` is its slice with whitespace collapsed; every visible character
/// is in exactly one sentence.
fn check_segments(text: &str, segs: &[Seg], what: &str) {
    let mut prev = 0;
    let mut covered = 0;
    for (i, s) in segs.iter().enumerate() {
        assert!(
            s.start < s.end && s.start >= prev && s.end <= text.len(),
            "{what}: sentence {i} span {}..{} (previous end {prev}, text {} bytes)",
            s.start,
            s.end,
            text.len()
        );
        let slice = text
            .get(s.start..s.end)
            .unwrap_or_else(|| panic!("{what}: {}..{} is not on char boundaries", s.start, s.end));
        assert!(
            !slice.starts_with(is_space) && !slice.ends_with(is_space),
            "{what}: sentence {i} not trimmed: {slice:?}"
        );
        assert_eq!(collapse(slice), s.text, "{what}: text of sentence {i}");
        covered += nonspace(slice);
        prev = s.end;
    }
    assert_eq!(covered, nonspace(text), "{what}: visible characters covered by the sentences");
}

fn library_segs(text: &str, lang: &str) -> Vec<Seg> {
    Segmenter::new(lang)
        .segment(text)
        .into_iter()
        .map(|s| Seg {
            start: s.start,
            end: s.end,
            text: s.text,
        })
        .collect()
}

/// Segments `path` with `--lang lang`, expects success, silence on stderr, the
/// invariants on `decoded` and the same sentences as the library gives for `decoded`.
fn segment_ok(path: &Path, decoded: &str, lang: &str) -> Vec<Seg> {
    let r = segment(path, &["--lang", lang]);
    r.assert_code(0);
    assert!(r.stderr.trim().is_empty(), "unexpected stderr: {}", r.context());
    let segs = segs_of(&r, path);
    assert!(!segs.is_empty(), "no sentences: {}", r.context());
    check_segments(decoded, &segs, &path.display().to_string());
    assert_eq!(segs, library_segs(decoded, lang), "CLI and library disagree on {}", path.display());
    segs
}

fn texts(segs: &[Seg]) -> Vec<&str> {
    segs.iter().map(|s| s.text.as_str()).collect()
}

const EMOJI: &str = "Che bella giornata 😀! Domani piove 🌧️ e fa freddo. La famiglia 👨‍👩‍👧 è felice 👍🏽.\n🎉🎉🎉\n";
const RTL: &str = "هذه جملة أولى عن تنظيم الذكاء الاصطناعي. هذه جملة ثانية؟ وهذه ثالثة!\n\u{200F}זה משפט ראשון על רגולציה. זה משפט שני.\u{200F}\nMixed \u{202B}עברית\u{202C} and English text.\n";
const CJK: &str = "今天天气很好。我们去公园吧！你觉得怎么样？\n今日は晴れです。明日は雨でしょう。\n오늘은 날씨가 좋다. 내일은 비가 온다.\n";
const ZW: &str = "Prima\u{200B}frase\u{00A0}del testo. Seconda frase\u{200B}.\u{00A0}Terza\u{2009}frase.\n\u{200B}\u{00A0}\n\u{FEFF}Ultima\u{202F}frase del testo.\n";
const INVISIBLE_ONLY: &str = "\u{200B}\u{200B}\n\u{FEFF}\u{200B}\n\u{2060}\u{00AD}\u{200E}\n";

// ---------------------------------------------------------------------------
// segment: decoding and odd text
// ---------------------------------------------------------------------------

#[test]
fn segment_empty_and_whitespace_only_files_are_refused() {
    let d = tempfile::tempdir().unwrap();
    for (name, body) in [("empty.txt", ""), ("blank.txt", " \t\n\r\n \u{A0}\u{3000}\n  ")] {
        let p = write(d.path(), name, body);
        let r = segment(&p, &[]);
        r.assert_code(1);
        r.assert_one_line_messages();
        assert!(r.stdout.trim().is_empty(), "output for {name}: {}", r.context());
        r.error_for(&p, &["empty"]);
    }
}

#[test]
fn segment_refuses_binary_data() {
    let d = tempfile::tempdir().unwrap();
    let nul = write(d.path(), "nul.bin", b"Ciao\0mondo.\0\x01\x02\x03 Fine.");
    let mut noboms = Vec::new();
    for u in "Testo UTF-16 senza BOM.".encode_utf16() {
        noboms.extend_from_slice(&u.to_le_bytes());
    }
    let u16_no_bom = write(d.path(), "utf16_no_bom.txt", noboms);
    for p in [nul, u16_no_bom] {
        let r = segment(&p, &[]);
        r.assert_code(1);
        r.assert_one_line_messages();
        assert!(r.stdout.trim().is_empty(), "{}", r.context());
        r.error_for(&p, &["binary"]);
    }
}

#[test]
fn segment_invalid_utf8_needs_lossy() {
    let d = tempfile::tempdir().unwrap();
    let bytes: &[u8] = b"Prima frase valida. Poi un byte \xff rotto qui. Fine del testo.";
    let p = write(d.path(), "latin.txt", bytes);
    let r = segment(&p, &["--lang", "it"]);
    r.assert_code(1);
    r.assert_one_line_messages();
    assert!(r.stdout.trim().is_empty(), "{}", r.context());
    r.error_for(&p, &["not valid UTF-8", "--lossy"]);

    let r = segment(&p, &["--lang", "it", "--lossy"]);
    r.assert_code(0);
    r.assert_one_line_messages();
    let w = r.line_for(&p);
    assert!(w.contains("warning") && !w.contains("error"), "{w:?}: {}", r.context());
    let decoded = String::from_utf8_lossy(bytes).into_owned();
    let segs = segs_of(&r, &p);
    check_segments(&decoded, &segs, "lossy");
    assert_eq!(segs, library_segs(&decoded, "it"));
    assert!(segs.iter().any(|s| s.text.contains('\u{FFFD}')), "{segs:?}");
}

#[test]
fn segment_utf8_bom_is_dropped() {
    let d = tempfile::tempdir().unwrap();
    let text = "Prima frase del testo. Seconda frase del testo.";
    let p = write(d.path(), "bom.txt", format!("\u{FEFF}{text}"));
    let segs = segment_ok(&p, text, "it");
    assert_eq!(texts(&segs), ["Prima frase del testo.", "Seconda frase del testo."]);
    assert_eq!(segs[0].start, 0, "offsets refer to the text without its BOM");
}

#[test]
fn segment_utf16_with_bom_both_byte_orders() {
    let d = tempfile::tempdir().unwrap();
    let text = "Il governo è pronto. La città approva!\nSecondo paragrafo con 😀 e 𝄞 fuori dal piano base.\n";
    for (name, le) in [("utf16le.txt", true), ("utf16be.txt", false)] {
        let p = write(d.path(), name, utf16(text, le));
        let segs = segment_ok(&p, text, "it");
        assert_eq!(texts(&segs)[..2], ["Il governo è pronto.", "La città approva!"], "{name}");
        assert!(segs.iter().any(|s| s.text.contains("😀 e 𝄞")), "{name}: {segs:?}");
    }
}

#[test]
fn segment_invalid_utf16_needs_lossy() {
    let d = tempfile::tempdir().unwrap();
    let mut units: Vec<u16> = "Ciao ".encode_utf16().collect();
    units.push(0xD800); // an unpaired surrogate
    units.extend(" mondo. Seconda frase.".encode_utf16());
    let mut bytes = vec![0xFF, 0xFE];
    for u in &units {
        bytes.extend_from_slice(&u.to_le_bytes());
    }
    let p = write(d.path(), "bad16.txt", &bytes);
    let r = segment(&p, &["--lang", "it"]);
    r.assert_code(1);
    r.assert_one_line_messages();
    r.error_for(&p, &["UTF-16", "--lossy"]);

    let r = segment(&p, &["--lang", "it", "--lossy"]);
    r.assert_code(0);
    r.assert_one_line_messages();
    assert!(r.line_for(&p).contains("warning"), "{}", r.context());
    let decoded = String::from_utf16_lossy(&units);
    let segs = segs_of(&r, &p);
    check_segments(&decoded, &segs, "lossy UTF-16");
    assert!(segs.iter().any(|s| s.text.contains('\u{FFFD}')), "{segs:?}");
}

#[test]
fn segment_crlf_and_lone_cr_line_ends() {
    let d = tempfile::tempdir().unwrap();
    let crlf = "Prima frase del testo.\r\nSeconda frase del testo.\r\n\r\nNuovo paragrafo.\r\n";
    let p = write(d.path(), "crlf.txt", crlf);
    let segs = segment_ok(&p, crlf, "it");
    assert_eq!(
        texts(&segs),
        ["Prima frase del testo.", "Seconda frase del testo.", "Nuovo paragrafo."]
    );

    // Old Mac line ends: a heading, then a paragraph hard-wrapped with lone CRs.
    let cr = "Titolo senza punto\rLa Commissione europea ha deciso\rdi rinviare il voto. Poi basta.\r";
    let p = write(d.path(), "cr.txt", cr);
    let segs = segment_ok(&p, cr, "it");
    assert_eq!(
        texts(&segs),
        [
            "Titolo senza punto",
            "La Commissione europea ha deciso di rinviare il voto.",
            "Poi basta."
        ]
    );
    assert!(segs.iter().all(|s| !s.text.contains('\r')));
}

#[test]
fn segment_zero_width_and_non_breaking_spaces() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "zw.txt", ZW);
    // The BOM character here is not at the start of the file: it stays in the text.
    let segs = segment_ok(&p, ZW, "it");
    for s in &segs {
        assert!(
            !s.text.contains(['\u{200B}', '\u{A0}', '\u{FEFF}', '\u{2009}', '\u{202F}']),
            "{:?}",
            s.text
        );
    }
}

#[test]
fn segment_text_of_only_invisible_characters() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "invisible.txt", INVISIBLE_ONLY);
    let r = segment(&p, &[]);
    r.assert_sane();
    r.assert_one_line_messages();
    // Refused like an empty file: nothing visible to score (exit 1, one line naming it).
    r.assert_code(1);
    r.error_for(&p, &["empty"]);
    assert!(segs_of(&r, &p).is_empty(), "{}", r.context());
}

#[test]
fn segment_emoji() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "emoji.txt", EMOJI);
    let segs = segment_ok(&p, EMOJI, "auto");
    let all: String = texts(&segs).join(" ");
    for e in ["😀", "🌧️", "👨‍👩‍👧", "👍🏽", "🎉🎉🎉"] {
        assert!(all.contains(e), "{e} lost: {all:?}");
    }
}

#[test]
fn segment_right_to_left_scripts() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "rtl.txt", RTL);
    segment_ok(&p, RTL, "auto");
    segment_ok(&p, RTL, "ar");
}

#[test]
fn segment_cjk_without_spaces() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "cjk.txt", CJK);
    segment_ok(&p, CJK, "auto");
    segment_ok(&p, CJK, "ja");
}

#[test]
fn segment_many_byte_order_marks() {
    // 100,000 UTF-8 BOMs in a row, then text: decoding must not recurse once per BOM
    // (a stack overflow kills the process by signal).
    let d = tempfile::tempdir().unwrap();
    let mut bytes = "\u{FEFF}".repeat(100_000).into_bytes();
    bytes.extend_from_slice("Prima frase del testo. Seconda frase.".as_bytes());
    let p = write(d.path(), "boms.txt", &bytes);
    let r = segment(&p, &["--lang", "it"]);
    r.assert_sane();
    r.assert_one_line_messages();
    // Read as text: the two sentences, no BOM left in them.
    r.assert_code(0);
    let segs = segs_of(&r, &p);
    assert_eq!(texts(&segs), ["Prima frase del testo.", "Seconda frase."], "{}", r.context());
}

// ---------------------------------------------------------------------------
// segment: size
// ---------------------------------------------------------------------------

#[test]
fn segment_one_megabyte_line_without_punctuation() {
    let d = tempfile::tempdir().unwrap();
    const WORDS: [&str; 10] = [
        "governo",
        "regole",
        "intelligenza",
        "artificiale",
        "città",
        "mercato",
        "innovazione",
        "europea",
        "dati",
        "sicurezza",
    ];
    const MB: usize = 1 << 20;
    let mut line = String::with_capacity(MB + 16);
    let mut i = 0;
    while line.len() < MB {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(WORDS[i % WORDS.len()]);
        i += 1;
    }
    let text = format!("{line}\n");
    let p = write(d.path(), "long_line.txt", &text);
    let t0 = Instant::now();
    let r = segment(&p, &["--lang", "it"]);
    eprintln!("1 MB line segmented in {:.1}s", t0.elapsed().as_secs_f64());
    r.assert_code(0);
    let segs = segs_of(&r, &p);
    // Cut into bounded pieces at spaces (no sentence is this long), every byte of text
    // in one of them, in order.
    let max = stance::segment::MAX_SENTENCE_BYTES;
    assert!(segs.len() >= MB / max, "{} pieces", segs.len());
    assert!(segs.iter().all(|s| s.end - s.start <= max));
    assert_eq!((segs[0].start, segs.last().unwrap().end), (0, line.len()));
    for w in segs.windows(2) {
        assert!(
            line[w[0].end..w[1].start].chars().all(char::is_whitespace),
            "text lost between pieces"
        );
    }
    check_segments(&text, &segs, "1 MB line");
}

#[test]
fn segment_fifty_thousand_sentences() {
    let d = tempfile::tempdir().unwrap();
    const SENTENCE: &str = "Il consiglio ha approvato la proposta.";
    let paragraph = vec![SENTENCE; 10].join(" ");
    let text = vec![paragraph.as_str(); 5_000].join("\n\n") + "\n";
    let p = write(d.path(), "article.txt", &text);
    let t0 = Instant::now();
    let r = segment(&p, &["--lang", "it"]);
    eprintln!("50,000 sentences segmented in {:.1}s", t0.elapsed().as_secs_f64());
    r.assert_code(0);
    let segs = segs_of(&r, &p);
    assert_eq!(segs.len(), 50_000);
    assert!(segs.iter().all(|s| s.text == SENTENCE));
    check_segments(&text, &segs, "50,000 sentences");
}

#[test]
fn segment_file_over_max_bytes_names_the_option() {
    let d = tempfile::tempdir().unwrap();
    let mut body = "Una frase breve. ".repeat(200);
    body.truncate(2048);
    let p = write(d.path(), "big.txt", &body);
    let r = segment(&p, &["--max-bytes", "1000"]);
    r.assert_code(1);
    r.assert_one_line_messages();
    assert!(r.stdout.trim().is_empty(), "{}", r.context());
    r.error_for(&p, &["--max-bytes"]);
}

#[test]
fn segment_missing_file_and_directory() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("missing.txt");
    let dir = d.path().join("a_folder");
    std::fs::create_dir(&dir).unwrap();
    for (p, what) in [(&missing, "no such file"), (&dir, "directory")] {
        let r = segment(p, &[]);
        r.assert_code(1);
        r.assert_one_line_messages();
        assert!(r.stdout.trim().is_empty(), "{}", r.context());
        r.error_for(p, &[what]);
    }
}

#[test]
fn segment_good_and_bad_files_together_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let good = write(d.path(), "good.txt", "Una frase. Un'altra frase.");
    let empty = write(d.path(), "empty.txt", "");
    let missing = d.path().join("missing.txt");
    let r = run(args!["segment", "--format", "jsonl", "--lang", "it", &good, &empty, &missing]);
    r.assert_code(2);
    r.assert_one_line_messages();
    assert_eq!(segs_of(&r, &good).len(), 2, "{}", r.context());
    assert!(!r.mentions(&good), "{}", r.context());
    r.error_for(&empty, &["empty"]);
    r.error_for(&missing, &["no such file"]);
}

// ---------------------------------------------------------------------------
// classify (the real model)
// ---------------------------------------------------------------------------

/// One sentence of about 5,000 tokens: no punctuation until the final stop.
fn long_sentence() -> String {
    const W: [&str; 12] = [
        "la",
        "commissione",
        "europea",
        "propone",
        "regole",
        "severe",
        "per",
        "intelligenza",
        "artificiale",
        "mentre",
        "le",
        "imprese",
    ];
    let mut s = String::from("Nel dibattito");
    for i in 0..4_600 {
        s.push(' ');
        s.push_str(W[i % W.len()]);
    }
    s.push_str(".\n");
    s
}

fn articles(r: &Run) -> BTreeMap<String, Value> {
    let v: Vec<Value> =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("--format json output is not a JSON array ({e}): {}", r.context()));
    v.into_iter()
        .map(|a| (a["id"].as_str().expect("article id").to_string(), a))
        .collect()
}

fn check_article(a: &Value) {
    let sents = a["sentences"].as_array().expect("sentences");
    assert!(!sents.is_empty(), "{a}");
    for task in ["stance", "sentiment"] {
        let score = a[task]["score"].as_f64().unwrap_or(f64::NAN);
        assert!(
            score.is_finite() && (-1.0..=1.0).contains(&score),
            "{task} score {score} of {}",
            a["id"]
        );
        for s in sents {
            let probs = s[task]["probs"].as_object().expect("probs");
            assert_eq!(probs.len(), 3);
            let sum: f64 = probs.values().map(|p| p.as_f64().unwrap_or(f64::NAN)).sum();
            assert!((sum - 1.0).abs() < 1e-3, "{task} probabilities sum to {sum} in {s}");
        }
    }
}

#[test]
fn classify_hostile_files_together() {
    let d = tempfile::tempdir().unwrap();
    let good = write(
        d.path(),
        "good.txt",
        "Il governo vuole regole più severe per l'intelligenza artificiale. Le aziende chiedono più libertà di innovare.",
    );
    let long = write(d.path(), "long_sentence.txt", long_sentence());
    let emoji = write(d.path(), "emoji.txt", EMOJI);
    let rtl = write(d.path(), "rtl.txt", RTL);
    let cjk = write(d.path(), "cjk.txt", CJK);
    let utf16_file = write(
        d.path(),
        "utf16.txt",
        utf16("La Commissione propone nuove regole. Le imprese protestano.", true),
    );
    let invisible = write(d.path(), "invisible.txt", INVISIBLE_ONLY);
    let empty = write(d.path(), "empty.txt", "");
    let binary = write(d.path(), "binary.bin", b"\0\x01\x02binary\0");
    let missing = d.path().join("missing.txt");
    let folder = d.path().join("a_folder");
    std::fs::create_dir(&folder).unwrap();

    let r = run(args![
        "classify",
        "--no-cache",
        "--format",
        "json",
        &good,
        &long,
        &emoji,
        &rtl,
        &cjk,
        &utf16_file,
        &invisible,
        &empty,
        &binary,
        &missing,
        &folder
    ]);
    r.assert_code(2);
    let arts = articles(&r);
    for p in [&good, &long, &emoji, &rtl, &cjk, &utf16_file] {
        let a = arts
            .get(&p.display().to_string())
            .unwrap_or_else(|| panic!("{} not scored: {}", p.display(), r.context()));
        check_article(a);
        assert!(!r.mentions(p), "stderr names a good file: {}", r.context());
    }
    // The ~5,000-token run without a full stop is cut into bounded pieces, each scored.
    let long_sents = arts[&long.display().to_string()]["sentences"].as_array().unwrap();
    assert!(long_sents.len() > 1);
    assert!(
        long_sents
            .iter()
            .all(|s| s["text"].as_str().unwrap().len() <= stance::segment::MAX_SENTENCE_BYTES)
    );
    for (p, what) in [
        (&empty, "empty"),
        (&binary, "binary"),
        (&missing, "no such file"),
        (&folder, "directory"),
    ] {
        r.error_for(p, &[what]);
        assert!(!arts.contains_key(&p.display().to_string()));
    }
    // A text of zero-width characters only has no sentence: refused, or an article
    // without sentences; never a crash of the whole run.
    let inv = invisible.display().to_string();
    if let Some(a) = arts.get(&inv) {
        assert!(a["sentences"].as_array().is_some_and(|s| s.is_empty()), "{a}");
    } else {
        r.error_for(&invisible, &[]);
    }
}

#[test]
fn classify_nothing_readable_exits_1() {
    let d = tempfile::tempdir().unwrap();
    let empty = write(d.path(), "empty.txt", "");
    let latin = write(d.path(), "latin1.txt", b"citt\xe0 e libert\xe0");
    let missing = d.path().join("missing.txt");
    let r = run(args!["classify", "--no-cache", "--format", "json", &empty, &latin, &missing]);
    r.assert_code(1);
    r.error_for(&empty, &["empty"]);
    r.error_for(&latin, &["not valid UTF-8", "--lossy"]);
    r.error_for(&missing, &["no such file"]);
    assert!(r.stdout.trim().is_empty() || r.stdout.trim() == "[]", "{}", r.context());
}

fn first_diff(a: &str, b: &str) -> String {
    a.lines()
        .zip(b.lines())
        .enumerate()
        .find(|(_, (x, y))| x != y)
        .map(|(i, (x, y))| format!("line {}: {x:?} vs {y:?}", i + 1))
        .unwrap_or_else(|| format!("{} vs {} bytes", a.len(), b.len()))
}

#[test]
fn classify_is_deterministic_across_runs_and_threads() {
    let d = tempfile::tempdir().unwrap();
    let mixed = write(d.path(), "mixed.txt", format!("{EMOJI}\n{ZW}\n{RTL}"));
    let seed = seeds().remove(0);
    let classify = |threads: &str| {
        let r = run(args![
            "--threads",
            threads,
            "classify",
            "--no-cache",
            "--format",
            "json",
            &seed,
            &mixed
        ]);
        r.assert_code(0);
        assert!(!r.stdout.trim().is_empty(), "{}", r.context());
        r
    };
    let a = classify("2");
    let b = classify("2");
    assert!(
        a.stdout == b.stdout,
        "two runs with --threads 2 differ: {}",
        first_diff(&a.stdout, &b.stdout)
    );
    let c = classify("1");
    assert!(
        a.stdout == c.stdout,
        "--threads 1 and --threads 2 differ: {}",
        first_diff(&a.stdout, &c.stdout)
    );
    check_article(&articles(&a)[&seed.display().to_string()]);
}

#[test]
fn classify_into_closed_pipe_exits_quietly() {
    // Like `stance classify seeds/*.txt --format jsonl | head -1`. The seeds are given
    // twice so that the output surely overflows the pipe buffer while we stop reading.
    let mut files = seeds();
    files.extend(seeds());
    let mut cmd = stance_cmd();
    cmd.args(["classify", "--no-cache", "--format", "jsonl"])
        .args(&files)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start stance");
    let err = drain(child.stderr.take().expect("stderr"));
    let mut first = String::new();
    {
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        out.read_line(&mut first).expect("read the first line");
    } // dropped: the read end of the pipe is closed, as `head -1` does
    let status = wait_limited(&mut child, "stance classify seeds/*.txt --format jsonl | head -1");
    let stderr = String::from_utf8_lossy(&err.join().unwrap()).into_owned();
    let v: Value =
        serde_json::from_str(first.trim()).unwrap_or_else(|e| panic!("first line is not a JSON record ({e}): {first:?}\n{stderr}"));
    assert!(v.get("id").is_some(), "{first}");
    assert!(status.code().is_some(), "killed by a signal ({status:?}): {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("stance: error"), "a closed pipe is not an error: {stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
}

// ---------------------------------------------------------------------------
// batch: malformed JSON Lines on standard input
// ---------------------------------------------------------------------------

#[test]
fn batch_stdin_malformed_json_lines() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out.jsonl");
    let input = [
        r#"{"id":"a","text":"Il governo vuole regole più severe per l'intelligenza artificiale.","outlet":"Corriere","tags":["ai","eu"]}"#,
        r#"{"id":"broken","text":"#,
        r#"{"id":"b","title":"senza testo"}"#,
        r#"{"id":"a","text":"Le aziende chiedono più libertà di innovare."}"#,
        "",
        r#"{"id":"c","text":"Una notizia neutrale sul meteo di oggi.","source":"ANSA"}"#,
        r#"[1,2,3]"#,
    ]
    .join("\n")
        + "\n";
    let r = run_with(
        args!["batch", "-", "--out", &out, "--no-cache", "--quiet"],
        Some(input.into_bytes()),
    );
    r.assert_code(2);
    let body = std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("{}: {e}: {}", out.display(), r.context()));
    assert!(!d.path().join("out.jsonl.partial").exists());
    let recs: Vec<Value> = body
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("JSON record"))
        .collect();
    let by_id: BTreeMap<&str, &Value> = recs.iter().map(|r| (r["id"].as_str().expect("id"), r)).collect();
    assert_eq!(recs.len(), 6, "one record per non-empty line: {body}");
    assert_eq!(by_id.len(), 6, "ids are unique: {body}");

    // The bad line is reported with its line number; the rest are scored.
    let bad = by_id.get("<stdin>:2").unwrap_or_else(|| panic!("no record for line 2: {body}"));
    assert!(bad["error"].as_str().is_some_and(|e| e.contains("<stdin>:2")), "{bad}");
    let arr = by_id.get("<stdin>:7").unwrap_or_else(|| panic!("no record for line 7: {body}"));
    assert!(arr["error"].as_str().is_some_and(|e| e.contains("<stdin>:7")), "{arr}");
    // A missing "text" is an error record.
    let b = by_id["b"];
    assert!(
        b["error"].as_str().is_some_and(|e| e.contains("text") && e.contains("<stdin>:3")),
        "{b}"
    );
    // Duplicate ids are both kept, the second as "a#2".
    for id in ["a", "a#2", "c"] {
        let rec = by_id.get(id).unwrap_or_else(|| panic!("no record {id}: {body}"));
        assert!(rec.get("error").is_none() && rec["stance"]["label"].is_string(), "{rec}");
    }
    // Extra fields are carried through.
    assert_eq!(by_id["a"]["outlet"], "Corriere");
    assert_eq!(by_id["a"]["tags"], serde_json::json!(["ai", "eu"]));
    assert_eq!(by_id["c"]["source"], "ANSA");
    assert!(r.stderr.contains("duplicate"), "no warning for the repeated id: {}", r.context());
    assert!(
        r.stderr.lines().any(|l| l.contains("error") && l.contains("<stdin>:2")),
        "{}",
        r.context()
    );
}

// ---------------------------------------------------------------------------
// train / eval: labeled data errors
// ---------------------------------------------------------------------------

#[test]
fn train_and_eval_name_file_and_line_of_bad_data() {
    const HEADER: &str = "id\tlang\tstance\tsentiment\ttext\tsource\n";
    let d = tempfile::tempdir().unwrap();
    let cases: Vec<(PathBuf, Vec<String>)> = vec![
        (
            write(d.path(), "columns.tsv", format!("{HEADER}a\tit\topenness\tpositive\tCiao.\n")),
            vec![":2:".into(), "columns".into()],
        ),
        (
            write(
                d.path(),
                "label.tsv",
                format!("{HEADER}a\tit\topenness\tpositive\tUno.\ts1\nb\tit\tpro\tpositive\tDue.\ts2\n"),
            ),
            vec![":3:".into(), "unknown stance label".into()],
        ),
        (
            write(
                d.path(),
                "oneclass.tsv",
                format!("{HEADER}a\tit\topenness\tpositive\tUno.\ts1\nb\tit\topenness\tneutral\tDue.\ts2\n"),
            ),
            vec!["only one".into()],
        ),
        (write(d.path(), "empty.tsv", ""), vec!["empty".into()]),
        (write(d.path(), "header_only.tsv", HEADER), vec!["no examples".into()]),
        (
            write(d.path(), "umsab.tsv", "label\ttext\n0\tbrutto\n2\tbello\n"),
            vec![":1:".into(), "sentiment".into()],
        ),
    ];
    for (file, expect) in &cases {
        let head = d.path().join("head.json");
        let train = run(args!["train", "--task", "stance", "--data", file, "--out", &head]);
        let eval = run(args!["eval", "--task", "stance", "--data", file]);
        for r in [&train, &eval] {
            r.assert_sane();
            assert_ne!(r.code, Some(0), "bad data accepted: {}", r.context());
            r.assert_one_line_messages();
            let line = r.error_for(file, &[]);
            for w in expect {
                let w = if w.starts_with(':') {
                    format!("{}{w}", file.display())
                } else {
                    w.clone()
                };
                assert!(line.contains(&w), "{line:?} lacks {w:?}: {}", r.context());
            }
        }
        assert!(!head.exists(), "a head was written from bad data {}", file.display());
    }
}
