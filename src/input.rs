//! Reading articles: files, standard input, decoding and the checks that turn bad
//! input into one clear error naming the file.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// Default cap on one article's size; larger files are refused with an error that
/// names the option that lifts it.
pub const DEFAULT_MAX_BYTES: u64 = 32 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub max_bytes: u64,
    /// Replace invalid UTF-8 with U+FFFD (and warn) instead of refusing the file.
    pub lossy: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_bytes: DEFAULT_MAX_BYTES,
            lossy: false,
        }
    }
}

/// One article: where it came from and its text. Sentence offsets refer to `text`.
#[derive(Debug, Clone)]
pub struct Article {
    pub id: String,
    pub text: String,
    /// Warnings met while reading (for example lossy decoding); shown, never fatal.
    pub warnings: Vec<String>,
}

/// Reads one article from a path, or from standard input when the path is `-`.
pub fn read_article(path: &Path, opts: &ReadOptions) -> Result<Article> {
    let bytes = if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .take(opts.max_bytes + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io("<stdin>", e))?;
        buf
    } else {
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::input(path, "no such file"),
            _ => Error::io(path, e),
        })?;
        if meta.is_dir() {
            return Err(Error::input(path, "is a directory, not a text file"));
        }
        if meta.len() > opts.max_bytes {
            return Err(Error::input(
                path,
                format!(
                    "file is {} bytes, over the limit of {} (raise it with --max-bytes)",
                    meta.len(),
                    opts.max_bytes
                ),
            ));
        }
        std::fs::read(path).map_err(|e| Error::io(path, e))?
    };
    let name = if path.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    };
    if bytes.len() as u64 > opts.max_bytes {
        return Err(Error::input(
            &name,
            format!("input is over the limit of {} bytes (raise it with --max-bytes)", opts.max_bytes),
        ));
    }
    let (text, warnings) = decode_text(&name, &bytes, opts.lossy)?;
    if is_blank(&text) {
        return Err(Error::input(&name, "empty: no text to score"));
    }
    Ok(Article { id: name, text, warnings })
}

/// Decodes bytes into text: honours UTF-8 and UTF-16 byte-order marks, refuses binary
/// data, and refuses invalid UTF-8 unless `lossy`.
pub fn decode_text(name: &str, bytes: &[u8], lossy: bool) -> Result<(String, Vec<String>)> {
    let mut warnings = Vec::new();
    let mut bytes = bytes;
    // Byte-order marks (some tools write several): drop them without recursion.
    while let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        bytes = rest;
    }
    for (bom, le) in [([0xFFu8, 0xFE], true), ([0xFE, 0xFF], false)] {
        if let Some(rest) = bytes.strip_prefix(&bom) {
            let units: Vec<u16> = rest
                .chunks_exact(2)
                .map(|c| {
                    if le {
                        u16::from_le_bytes([c[0], c[1]])
                    } else {
                        u16::from_be_bytes([c[0], c[1]])
                    }
                })
                .collect();
            let text = match String::from_utf16(&units) {
                Ok(t) => t,
                Err(_) if lossy => {
                    warnings.push(format!("{name}: invalid UTF-16 replaced with U+FFFD"));
                    String::from_utf16_lossy(&units)
                }
                Err(_) => return Err(Error::input(name, "invalid UTF-16 text (pass --lossy to replace bad characters)")),
            };
            return Ok((text, warnings));
        }
    }
    if looks_binary(bytes) {
        return Err(Error::input(name, "binary data, not text (NUL bytes or control characters)"));
    }
    match std::str::from_utf8(bytes) {
        Ok(t) => Ok((t.to_string(), warnings)),
        Err(e) if lossy => {
            warnings.push(format!("{name}: invalid UTF-8 at byte {} replaced with U+FFFD", e.valid_up_to()));
            Ok((String::from_utf8_lossy(bytes).into_owned(), warnings))
        }
        Err(e) => Err(Error::input(
            name,
            format!(
                "not valid UTF-8 (first bad byte at offset {}); re-encode it as UTF-8 or pass --lossy",
                e.valid_up_to()
            ),
        )),
    }
}

/// Nothing but whitespace and invisible format characters (zero-width spaces and
/// joiners, direction marks and embeddings, word joiner, soft hyphen, BOM), which
/// `str::trim` keeps: text without one visible character.
pub fn is_blank(text: &str) -> bool {
    text.chars().all(is_invisible)
}

/// Whitespace, or a format character that shows nothing by itself.
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Binary if the first 8 KiB hold a NUL byte or many C0 control characters other than
/// tab, line feed, carriage return and form feed.
fn looks_binary(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(8192)];
    if head.contains(&0) {
        return true;
    }
    let controls = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c))
        .count();
    controls * 20 > head.len().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boms_and_encodings() {
        let (t, _) = decode_text("a", b"\xEF\xBB\xBFciao", false).unwrap();
        assert_eq!(t, "ciao");
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("però".encode_utf16().flat_map(|u| u.to_le_bytes()))
            .collect();
        assert_eq!(decode_text("a", &utf16, false).unwrap().0, "però");
        let err = decode_text("bad.txt", b"ok \xff\xfe no", false).unwrap_err().to_string();
        assert!(err.starts_with("bad.txt: not valid UTF-8"), "{err}");
        let (t, w) = decode_text("bad.txt", b"ok \xff no", true).unwrap();
        assert!(t.contains('\u{FFFD}') && w.len() == 1);
        assert!(decode_text("b", b"abc\0def", false).unwrap_err().to_string().contains("binary"));
    }
}
