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
/// commit (an error, a clean stop), the temporary file is removed and the destination
/// is untouched. A link to a regular file is followed (the file it names is replaced,
/// the link kept); a destination that is not a regular file (`/dev/stdout`, a pipe) is
/// written directly, as a stream. A new file gets the permissions the umask allows, a
/// replaced one keeps its own.
pub struct AtomicFile(Target);

enum Target {
    Temp {
        tmp: tempfile::NamedTempFile,
        path: std::path::PathBuf,
        mode: Option<std::fs::Permissions>,
    },
    Direct(std::fs::File, std::path::PathBuf),
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<AtomicFile> {
        // Where the bytes belong: through a link to the file it names.
        let (dest, existing) = match std::fs::metadata(path) {
            Ok(m) if !m.is_file() && !m.is_dir() => {
                let f = std::fs::OpenOptions::new().write(true).open(path).map_err(|e| Error::io(path, e))?;
                return Ok(AtomicFile(Target::Direct(f, path.to_path_buf())));
            }
            Ok(m) => (
                std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
                Some(m.permissions()),
            ),
            Err(_) => (path.to_path_buf(), None),
        };
        let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
        Ok(AtomicFile(Target::Temp {
            tmp,
            path: dest,
            mode: existing,
        }))
    }

    /// Syncs the bytes and renames the file into place.
    pub fn commit(self) -> Result<()> {
        match self.0 {
            Target::Direct(mut f, path) => f.flush().map_err(|e| Error::io(&path, e)),
            Target::Temp { mut tmp, path, mode } => {
                tmp.flush().map_err(|e| Error::io(&path, e))?;
                tmp.as_file().sync_all().map_err(|e| Error::io(&path, e))?;
                // Temporary files are private (0600); what we write is meant to be read
                // as any file the user makes, or as the file it replaces.
                if let Some(mode) = mode.or_else(new_file_permissions) {
                    let _ = tmp.as_file().set_permissions(mode);
                }
                tmp.persist(&path).map_err(|e| Error::io(&path, e.error))?;
                Ok(())
            }
        }
    }
}

/// The permissions of a newly created file: 0666 less the process's umask.
fn new_file_permissions() -> Option<std::fs::Permissions> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // umask can only be read by setting it; it is put back at once.
        let mask = unsafe {
            let m = libc::umask(0o022);
            libc::umask(m);
            m
        };
        Some(std::fs::Permissions::from_mode(0o666 & !(mask as u32)))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.0 {
            Target::Temp { tmp, .. } => tmp.write(buf),
            Target::Direct(f, _) => f.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.0 {
            Target::Temp { tmp, .. } => tmp.flush(),
            Target::Direct(f, _) => f.flush(),
        }
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

    #[cfg(unix)]
    #[test]
    fn links_are_followed_and_permissions_kept() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real.txt");
        std::fs::write(&real, "old").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = d.path().join("link.txt");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(),
            "the link was replaced"
        );
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        assert_eq!(std::fs::metadata(&real).unwrap().permissions().mode() & 0o777, 0o600);
        // A destination that is not a regular file is written as a stream.
        write_atomic(Path::new("/dev/null"), b"x").unwrap();
        assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device_like());
    }

    trait CharDevice {
        fn is_char_device_like(&self) -> bool;
    }
    impl CharDevice for std::fs::FileType {
        fn is_char_device_like(&self) -> bool {
            use std::os::unix::fs::FileTypeExt;
            self.is_char_device()
        }
    }
}
