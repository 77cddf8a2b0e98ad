//! Small shared helpers.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// A file or folder the project ships under `models/`: relative to the current
/// directory when run from the repository, else in the source tree the binary was
/// built from.
pub fn shipped(rel: &str) -> std::path::PathBuf {
    let local = std::path::PathBuf::from(rel);
    if local.exists() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
    }
}

/// A file written whole or not at all, the one way every whole file is written
/// (reports, heads, adapters, model files, vectors written with --out): the bytes go
/// to a uniquely named temporary file in the destination's folder, which
/// [`AtomicFile::commit`] syncs and renames over the destination. Dropped without a
/// commit (an error, a panic, Ctrl-C), the temporary file is removed and the
/// destination is untouched.
pub struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    path: std::path::PathBuf,
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<AtomicFile> {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
        Ok(AtomicFile {
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// Syncs the bytes and renames the file into place.
    pub fn commit(mut self) -> Result<()> {
        let path = self.path;
        self.tmp.flush().map_err(|e| Error::io(&path, e))?;
        self.tmp.as_file().sync_all().map_err(|e| Error::io(&path, e))?;
        // Temporary files are private (0600); what we write is meant to be read.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = self.tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644));
        }
        self.tmp.persist(&path).map_err(|e| Error::io(&path, e.error))?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tmp.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.tmp.flush()
    }
}

/// Writes a file whole or not at all (see [`AtomicFile`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.commit()
}

/// A small deterministic PRNG (SplitMix64), so that training and bootstrap intervals
/// are reproducible from a seed without another dependency.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// Writes a line to standard error and never panics: a closed or full stderr must not
/// stop results from reaching standard output (`eprintln!` panics on a write error).
#[macro_export]
macro_rules! note {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

/// Writes a line to standard output; a write error (a closed pipe) is returned, not a
/// panic, so the command can end quietly (`println!` panics on a write error).
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($t)*)
    }};
}

/// An exclusive claim on an output path for the length of a run: a lock on a hidden
/// file beside it (`.NAME.lock`). A second run on the same output is refused at once
/// (not queued), before it scores anything. Released on drop.
pub struct OutputLock {
    _file: std::fs::File,
}

impl OutputLock {
    pub fn claim(out: &Path) -> Result<OutputLock> {
        let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = out
            .file_name()
            .ok_or_else(|| Error::Usage(format!("{}: not a file name", out.display())))?;
        let lock_path = dir.join(format!(".{}.lock", name.to_string_lossy()));
        let f = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        match fs4::fs_std::FileExt::try_lock_exclusive(&f) {
            Ok(true) => Ok(OutputLock { _file: f }),
            Ok(false) => Err(Error::Usage(format!(
                "{}: another stance run is writing this output (lock {} held); refusing rather than mixing the two",
                out.display(),
                lock_path.display()
            ))),
            Err(e) => Err(Error::io(&lock_path, e)),
        }
    }
}

/// Checks an output path before any work: not a directory, its folder exists (or can
/// be made) and takes new files.
pub fn check_output(out: &Path) -> Result<()> {
    if out.is_dir() {
        return Err(Error::Usage(format!("{}: is a directory; --out takes a file name", out.display())));
    }
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    tempfile::NamedTempFile::new_in(dir)
        .map(drop)
        .map_err(|e| Error::Usage(format!("{}: cannot write into {} ({e})", out.display(), dir.display())))
}

/// 64-bit FNV-1a over the concatenated parts: a stable hash, the same on every
/// platform and run (shards, validation splits, feature buckets).
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    parts
        .iter()
        .flat_map(|p| p.iter())
        .fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_file_is_whole_or_absent() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub").join("out.txt");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "old").unwrap();
        // Dropped before commit: the destination keeps its old bytes, no stray file.
        {
            let mut f = AtomicFile::create(&p).unwrap();
            f.write_all(b"half of the new").unwrap();
        }
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old");
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"new").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        write_atomic(&d.path().join("a").join("b.txt"), b"x").unwrap();
        assert_eq!(std::fs::read(d.path().join("a/b.txt")).unwrap(), b"x");
    }
}
