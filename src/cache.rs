//! On-disk cache of sentence vectors, keyed by encoder variant and text hash, so that
//! re-scoring a corpus (another head, a few new articles) embeds only what is new.
//!
//! Layout: `$STANCE_HOME/vectors/<variant>/<pid>-<nanos>.vec`, append-only logs, one
//! per writing process, so concurrent writers never interleave. A record is the text's
//! SHA-256, the vector (f32, little-endian) and a CRC-32 of both: a torn or corrupted
//! record (a crash mid-write) fails its check and is ignored with the rest of its file.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"STVEC001";

pub struct VectorCache {
    dir: PathBuf,
    dim: usize,
    map: HashMap<[u8; 32], Vec<f32>>,
    writer: Option<BufWriter<File>>,
    /// Records ignored while loading (torn writes, corruption).
    pub ignored: usize,
}

pub fn text_key(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

impl VectorCache {
    /// The cache of an embedder's vectors (by its variant and precision).
    pub fn for_embedder(emb: &crate::encode::Embedder) -> Result<Self> {
        Self::open(&emb.cache_name(), emb.dim())
    }

    pub fn open(variant: &str, dim: usize) -> Result<Self> {
        let safe: String = variant
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '+' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let dir = crate::models::stance_home().join("vectors").join(safe);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut cache = VectorCache {
            dir,
            dim,
            map: HashMap::new(),
            writer: None,
            ignored: 0,
        };
        cache.load()?;
        Ok(cache)
    }

    fn load(&mut self) -> Result<()> {
        let rec = 32 + 4 * self.dim + 4;
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map_err(|e| Error::io(&self.dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "vec"))
            .collect();
        files.sort();
        for path in files {
            let mut bytes = Vec::new();
            if File::open(&path).and_then(|mut f| f.read_to_end(&mut bytes)).is_err() {
                continue;
            }
            if bytes.len() < 12 || &bytes[..8] != MAGIC || u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize != self.dim {
                self.ignored += 1;
                continue;
            }
            for chunk in bytes[12..].chunks(rec) {
                if chunk.len() < rec {
                    self.ignored += 1; // torn last record
                    break;
                }
                let (body, crc) = chunk.split_at(rec - 4);
                if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().unwrap()) {
                    self.ignored += 1;
                    break;
                }
                let key: [u8; 32] = body[..32].try_into().unwrap();
                let v = body[32..]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                    .collect();
                self.map.insert(key, v);
            }
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn get(&self, text: &str) -> Option<&Vec<f32>> {
        self.map.get(&text_key(text))
    }

    /// Appends vectors to this process's log and flushes it, so that what was embedded
    /// survives a crash or Ctrl-C that comes later.
    pub fn put_many(&mut self, items: &[(&str, &[f32])]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        if self.writer.is_none() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let path = self.dir.join(format!("{}-{nanos}.vec", std::process::id()));
            let f = File::options()
                .create_new(true)
                .write(true)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            let mut w = BufWriter::new(f);
            w.write_all(MAGIC)
                .and_then(|_| w.write_all(&(self.dim as u32).to_le_bytes()))
                .map_err(|e| Error::io(&path, e))?;
            self.writer = Some(w);
        }
        let w = self.writer.as_mut().unwrap();
        for (text, v) in items {
            if v.len() != self.dim {
                continue;
            }
            let key = text_key(text);
            let mut body = Vec::with_capacity(32 + 4 * v.len());
            body.extend_from_slice(&key);
            v.iter().for_each(|x| body.extend_from_slice(&x.to_le_bytes()));
            let crc = crc32fast::hash(&body);
            w.write_all(&body)
                .and_then(|_| w.write_all(&crc.to_le_bytes()))
                .map_err(|e| Error::io(&self.dir, e))?;
            self.map.insert(key, v.to_vec());
        }
        w.flush().map_err(|e| Error::io(&self.dir, e))?;
        Ok(())
    }
}

/// Sentences tokenized and embedded at a time: large enough for batches sorted by
/// length to fill well, small enough to bound memory on one huge article.
const EMBED_SLICE: usize = 1024;

/// Embeds `texts` through the cache: only texts not cached are sent to the encoder.
/// Returns the vectors and how many were newly embedded.

pub fn embed_cached(
    emb: &crate::encode::Embedder,
    cache: Option<&mut VectorCache>,
    texts: &[&str],
    progress: &mut dyn FnMut(usize),
) -> Result<(Vec<Vec<f32>>, usize)> {
    let Some(cache) = cache else {
        // In slices, so that the token ids of a huge input are never all held at once.
        let mut out = Vec::with_capacity(texts.len());
        for part in texts.chunks(EMBED_SLICE) {
            let ids = emb.tokenize(part)?;
            out.extend(emb.embed_ids(&ids, progress)?);
        }
        return Ok((out, texts.len()));
    };
    let mut missing: Vec<&str> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for t in texts {
        if cache.get(t).is_none() && seen.insert(*t) {
            missing.push(t);
        }
    }
    // Embed in slices so that a long run is saved as it goes.
    for part in missing.chunks(EMBED_SLICE) {
        let ids = emb.tokenize(part)?;
        // Progress per encoder batch, so a long slice (one huge article) shows it too.
        let vecs = emb.embed_ids(&ids, progress)?;
        let items: Vec<(&str, &[f32])> = part.iter().copied().zip(vecs.iter().map(Vec::as_slice)).collect();
        cache.put_many(&items)?;
    }
    let out = texts.iter().map(|t| cache.get(t).cloned().expect("embedded above")).collect();
    Ok((out, missing.len()))
}
