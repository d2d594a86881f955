//! Persistence behind one small trait, so tests can inject I/O errors (STYLE.md §7).
//!
//! A [`Storage`] is one directory of named files; a [`StorageFile`] is positional I/O
//! on one of them (`pread`/`pwrite`, no shared cursor, so `&self` is enough). The log
//! never retries a failed call: the caller turns the error into fail-stop.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

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
    /// needed; an existing folder keeps its mode: it is the operator's. The folder's
    /// own name is made durable (its parent fsynced), or a power cut could take the
    /// whole folder with it however carefully its files were synced.
    pub fn new(dir: &Path) -> io::Result<FileStorage> {
        create_dir_durably(dir)?;
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

/// Create `dir` and its missing parents, then fsync the parent of `dir` and of every
/// folder created: a new name is durable only once its directory is. The parent is
/// fsynced even when `dir` exists, since a crash may have come between an earlier
/// creation and its fsync.
pub fn create_dir_durably(dir: &Path) -> io::Result<()> {
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
    if !dir.is_dir() {
        if let Some(parent) = parent {
            if !parent.is_dir() {
                create_dir_durably(parent)?;
            }
        }
        match DirBuilder::new().mode(DIR_MODE).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) => return Err(e),
        }
    }
    File::open(parent.unwrap_or(Path::new(".")))?.sync_all()
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

/// An in-memory storage that forgets what was not made durable, for power-loss tests
/// (the same model as Jepsen's `LazyFS`): a file's bytes survive [`ForgetfulStorage::power_cut`]
/// only as far as its last `fsync`, and a create, rename or remove only once
/// [`Storage::fsync_dir`] ran after it. A power cut may also keep part of a file's
/// unsynced tail, as a disk that wrote back some pages early would.
///
/// Handles opened before a cut belong to the process that died: every call on them
/// fails afterwards.
#[derive(Debug, Default)]
pub struct ForgetfulStorage {
    state: Mutex<Forgetful>,
}

#[derive(Debug, Default)]
struct Forgetful {
    /// Bumped by each power cut; handles of an older epoch are dead.
    epoch: u64,
    names: BTreeMap<String, Arc<MemNode>>,
    durable_names: BTreeMap<String, Arc<MemNode>>,
    fsyncs: u64,
}

#[derive(Debug, Default)]
struct MemNode {
    bytes: Mutex<MemBytes>,
}

#[derive(Debug, Default, Clone)]
struct MemBytes {
    data: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug)]
struct MemFile {
    node: Arc<MemNode>,
    epoch: u64,
    storage: Arc<ForgetfulStorage>,
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn dead() -> io::Error {
    io::Error::other("the power was cut: this handle belongs to a process that died")
}

impl ForgetfulStorage {
    pub fn new() -> Arc<ForgetfulStorage> {
        Arc::new(ForgetfulStorage::default())
    }

    /// Cut the power: forget every unsynced byte and name. `torn(n)` says how many of
    /// a file's `n` unsynced bytes past its durable length survive anyway (`|_| 0`:
    /// none); those that do are on the disk from then on.
    pub fn power_cut(&self, torn: &mut dyn FnMut(usize) -> usize) {
        let mut st = guard(&self.state);
        st.epoch += 1;
        st.names = st.durable_names.clone();
        for node in st.names.values() {
            let mut b = guard(&node.bytes);
            let mut keep = b.durable.clone();
            if b.data.len() > keep.len() && b.data.starts_with(&keep) {
                let extra = torn(b.data.len() - keep.len()).min(b.data.len() - keep.len());
                keep.extend_from_slice(&b.data[b.durable.len()..b.durable.len() + extra]);
            }
            // What survived the cut is on the disk now: a later cut cannot take it.
            b.durable.clone_from(&keep);
            b.data = keep;
        }
    }

    /// The file's current bytes (what a process would read).
    pub fn contents(&self, name: &str) -> Option<Vec<u8>> {
        let st = guard(&self.state);
        st.names.get(name).map(|n| guard(&n.bytes).data.clone())
    }

    /// fsync calls so far (files and the directory).
    pub fn fsyncs(&self) -> u64 {
        guard(&self.state).fsyncs
    }

    fn alive(&self, epoch: u64) -> io::Result<()> {
        if guard(&self.state).epoch == epoch {
            Ok(())
        } else {
            Err(dead())
        }
    }
}

/// The storage is shared by `Arc` so handles can check that their epoch is alive.
impl Storage for Arc<ForgetfulStorage> {
    fn path_of(&self, name: &str) -> String {
        format!("<memory>/{name}")
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(guard(&self.state).names.keys().cloned().collect())
    }

    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let mut st = guard(&self.state);
        let node = match st.names.get(name) {
            Some(n) => Arc::clone(n),
            None if create => {
                let n = Arc::new(MemNode::default());
                st.names.insert(name.to_owned(), Arc::clone(&n));
                n
            }
            None => return Err(io::Error::new(io::ErrorKind::NotFound, name.to_owned())),
        };
        Ok(Arc::new(MemFile {
            node,
            epoch: st.epoch,
            storage: Arc::clone(self),
        }))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        match guard(&self.state).names.remove(name) {
            Some(_) => Ok(()),
            None => Err(io::Error::new(io::ErrorKind::NotFound, name.to_owned())),
        }
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut st = guard(&self.state);
        let node = st
            .names
            .remove(from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, from.to_owned()))?;
        st.names.insert(to.to_owned(), node);
        Ok(())
    }

    fn fsync_dir(&self) -> io::Result<()> {
        let mut st = guard(&self.state);
        st.durable_names = st.names.clone();
        st.fsyncs += 1;
        Ok(())
    }
}

impl StorageFile for MemFile {
    fn len(&self) -> io::Result<u64> {
        self.storage.alive(self.epoch)?;
        Ok(guard(&self.node.bytes).data.len() as u64)
    }

    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<()> {
        self.storage.alive(self.epoch)?;
        let b = guard(&self.node.bytes);
        let start = usize::try_from(pos).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| b.data.get(start..end))
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_at(&self, pos: u64, data: &[u8]) -> io::Result<()> {
        self.storage.alive(self.epoch)?;
        let mut b = guard(&self.node.bytes);
        let start = usize::try_from(pos).map_err(|_| io::ErrorKind::InvalidInput)?;
        let end = start + data.len();
        if b.data.len() < end {
            b.data.resize(end, 0);
        }
        b.data[start..end].copy_from_slice(data);
        Ok(())
    }

    fn fsync(&self) -> io::Result<()> {
        self.storage.alive(self.epoch)?;
        {
            let mut g = guard(&self.node.bytes);
            let b = &mut *g;
            b.durable.clone_from(&b.data);
        }
        // Never the state's lock while holding a file's: a power cut takes them the other way.
        guard(&self.storage.state).fsyncs += 1;
        Ok(())
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.storage.alive(self.epoch)?;
        let len = usize::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
        guard(&self.node.bytes).data.resize(len, 0);
        Ok(())
    }
}
