//! Persistence behind one small trait, so tests can inject I/O errors (STYLE.md §7).
//!
//! A [`Storage`] is one directory of named files; a [`StorageFile`] is positional I/O
//! on one of them (`pread`/`pwrite`, no shared cursor, so `&self` is enough). The log
//! never retries a failed call: the caller turns the error into fail-stop.

use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One directory of files.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Human-readable location of `name`, for error messages.
    fn path_of(&self, name: &str) -> String;
    /// Names of the regular files in the directory.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Open `name` for reading and writing, creating it if `create`.
    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn StorageFile>>;
    /// Delete `name`.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Atomically rename `from` to `to` (replacing `to`).
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Make creations, removals and renames in the directory durable.
    fn fsync_dir(&self) -> io::Result<()>;
    /// Whether writes are refused (an inspecting, read-only open).
    fn read_only(&self) -> bool {
        false
    }
}

/// Positional I/O on one file.
pub trait StorageFile: Send + Sync + fmt::Debug {
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Fill `buf` from `pos`; an `UnexpectedEof` error if the file is shorter.
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Write all of `data` at `pos`.
    fn write_at(&self, pos: u64, data: &[u8]) -> io::Result<()>;
    /// Make the file's data (and its length) durable.
    fn fsync(&self) -> io::Result<()>;
    /// Cut the file to `len` bytes.
    fn truncate(&self, len: u64) -> io::Result<()>;
}

/// Mode of the folders a log creates: its owner alone may list or enter them.
pub const DIR_MODE: u32 = 0o700;
/// Mode of the files a log creates (segments, indexes, cursors): its owner alone may
/// read them, as with the key file. Attributes stored in the clear, the shape of the
/// traffic and, on a router that does not seal, the data are nobody else's business.
pub const FILE_MODE: u32 = 0o600;

/// The real thing: files in a directory.
#[derive(Debug)]
pub struct FileStorage {
    dir: PathBuf,
    read_only: bool,
}

impl FileStorage {
    /// Use `dir`, creating it (and any missing parent) with mode [`DIR_MODE`] if
    /// needed. An existing folder keeps its mode: it is the operator's.
    pub fn new(dir: &Path) -> io::Result<FileStorage> {
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)?;
        Ok(FileStorage {
            dir: dir.to_path_buf(),
            read_only: false,
        })
    }

    /// Use an existing `dir` without ever writing to it.
    pub fn read_only(dir: &Path) -> io::Result<FileStorage> {
        if !dir.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "log directory does not exist",
            ));
        }
        Ok(FileStorage {
            dir: dir.to_path_buf(),
            read_only: true,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[derive(Debug)]
struct RealFile {
    file: File,
}

impl Storage for FileStorage {
    fn path_of(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                if let Some(name) = entry.file_name().to_str() {
                    out.push(name.to_owned());
                }
            }
        }
        Ok(out)
    }

    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let file = if self.read_only {
            OpenOptions::new().read(true).open(self.dir.join(name))?
        } else {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(create)
                .truncate(false)
                .mode(FILE_MODE)
                .open(self.dir.join(name))?
        };
        Ok(Arc::new(RealFile { file }))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        fs::remove_file(self.dir.join(name))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(self.dir.join(from), self.dir.join(to))
    }

    fn fsync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }

    fn read_only(&self) -> bool {
        self.read_only
    }
}

impl StorageFile for RealFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, pos)
    }

    fn write_at(&self, pos: u64, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, pos)
    }

    fn fsync(&self) -> io::Result<()> {
        // fdatasync: the data and the length that reaches it; the mtime is not needed.
        self.file.sync_data()
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
}

/// When a [`FaultyStorage`] fails. Calls are counted across every file of the storage
/// (data, index, directory); `0` means never.
#[derive(Debug, Default)]
pub struct FaultPlan {
    writes: AtomicU64,
    fsyncs: AtomicU64,
    fail_write_on: AtomicU64,
    fail_fsync_on: AtomicU64,
}

impl FaultPlan {
    /// Fail the `n`th write call from now on (1-based; 0 disables).
    pub fn fail_write_on(&self, n: u64) {
        self.fail_write_on
            .store(self.writes.load(Ordering::SeqCst) + n, Ordering::SeqCst);
        if n == 0 {
            self.fail_write_on.store(0, Ordering::SeqCst);
        }
    }

    /// Fail the `n`th fsync call (file or directory) from now on (1-based; 0 disables).
    pub fn fail_fsync_on(&self, n: u64) {
        self.fail_fsync_on
            .store(self.fsyncs.load(Ordering::SeqCst) + n, Ordering::SeqCst);
        if n == 0 {
            self.fail_fsync_on.store(0, Ordering::SeqCst);
        }
    }

    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    pub fn fsyncs(&self) -> u64 {
        self.fsyncs.load(Ordering::SeqCst)
    }

    fn on_write(&self) -> bool {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        n == self.fail_write_on.load(Ordering::SeqCst)
    }

    fn on_fsync(&self) -> bool {
        let n = self.fsyncs.fetch_add(1, Ordering::SeqCst) + 1;
        n == self.fail_fsync_on.load(Ordering::SeqCst)
    }
}

/// A storage that passes everything to `inner` except the planned failures. A failed
/// write first writes the first half of its data, like a torn write on a full disk.
#[derive(Debug)]
pub struct FaultyStorage {
    inner: Arc<dyn Storage>,
    plan: Arc<FaultPlan>,
}

impl FaultyStorage {
    pub fn new(inner: Arc<dyn Storage>) -> (FaultyStorage, Arc<FaultPlan>) {
        let plan = Arc::new(FaultPlan::default());
        (
            FaultyStorage {
                inner,
                plan: Arc::clone(&plan),
            },
            plan,
        )
    }
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected {what} failure"))
}

#[derive(Debug)]
struct FaultyFile {
    inner: Arc<dyn StorageFile>,
    plan: Arc<FaultPlan>,
}

impl Storage for FaultyStorage {
    fn path_of(&self, name: &str) -> String {
        self.inner.path_of(name)
    }
    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }
    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        Ok(Arc::new(FaultyFile {
            inner: self.inner.open(name, create)?,
            plan: Arc::clone(&self.plan),
        }))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.inner.remove(name)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn fsync_dir(&self) -> io::Result<()> {
        if self.plan.on_fsync() {
            return Err(injected("directory fsync"));
        }
        self.inner.fsync_dir()
    }
    fn read_only(&self) -> bool {
        self.inner.read_only()
    }
}

impl StorageFile for FaultyFile {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_at(pos, buf)
    }
    fn write_at(&self, pos: u64, data: &[u8]) -> io::Result<()> {
        if self.plan.on_write() {
            self.inner.write_at(pos, &data[..data.len() / 2])?;
            return Err(injected("write"));
        }
        self.inner.write_at(pos, data)
    }
    fn fsync(&self) -> io::Result<()> {
        if self.plan.on_fsync() {
            return Err(injected("fsync"));
        }
        self.inner.fsync()
    }
    fn truncate(&self, len: u64) -> io::Result<()> {
        self.inner.truncate(len)
    }
}
