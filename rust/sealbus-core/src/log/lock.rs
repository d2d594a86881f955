//! One writer per log folder, across threads and processes: an exclusive `flock` on a
//! lock file in the folder, held for as long as the log is open for writing.
//!
//! `flock` (what `File::try_lock` uses on Linux) belongs to the open file description,
//! so a second open of the same folder conflicts even inside one process, and the
//! kernel drops the lock when its holder exits, however it exits (a SIGKILL leaves no
//! stale lock behind, unlike a PID file).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The lock file's name inside the log folder.
pub const LOCK_FILE: &str = "sealbus.lock";

/// Held while a log is open for writing; dropping it releases the folder.
#[derive(Debug)]
pub struct DirLock {
    file: File,
}

impl DirLock {
    /// Lock `dir` (which must exist) or fail at once with [`Error::LogLocked`].
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        let io = |op: &'static str, path: &PathBuf| {
            let path = path.display().to_string();
            move |source| Error::LogIo { op, path, source }
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(super::io::FILE_MODE)
            .open(&path)
            .map_err(io("open", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                // The holder wrote its process id; it is only a hint for the operator.
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim().parse::<u32>().ok();
                return Err(Error::LogLocked {
                    path: dir.display().to_string(),
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io("lock", &path)(e)),
        }
        // Not fsynced: the file only carries a hint, the lock itself is in the kernel.
        let pid = std::process::id().to_string();
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(pid.as_bytes()))
            .map_err(io("write", &path))?;
        Ok(DirLock { file })
    }

    /// Release the lock now (dropping does the same).
    pub fn release(self) {
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_in_the_same_process_is_refused_until_the_first_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        match DirLock::acquire(dir.path()) {
            Err(Error::LogLocked { path, holder }) => {
                assert_eq!(path, dir.path().display().to_string());
                assert_eq!(holder, Some(std::process::id()));
            }
            other => panic!("expected LogLocked, got {other:?}"),
        }
        first.release();
        let again = DirLock::acquire(dir.path()).unwrap();
        drop(again);
        DirLock::acquire(dir.path()).unwrap();
    }
}
