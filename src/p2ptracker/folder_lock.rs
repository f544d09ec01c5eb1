//! One client per folder: two clients on one folder would both rewrite `local_chunks.txt` and
//! corrupt it (duplicates), so a client holds an exclusive `flock` on `<folder>/.peershare.lock`
//! while it runs, with its pid written inside for the error message.
//!
//! Why `flock` (std's `File::try_lock`) rather than a pid file alone: the kernel drops the lock
//! when the holder dies, even by `kill -9`, so there is no stale lock to detect and no pid reuse
//! to be fooled by. The file is removed on exit; a process that locked the old file just before
//! it was removed notices that the name now points elsewhere and tries again.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub const LOCK_NAME: &str = ".peershare.lock";

/// Held while a client uses its folder; dropping it removes the lock file and releases it.
pub struct FolderLock {
    file: File,
    path: PathBuf,
}

/// Why the folder cannot be locked.
#[derive(Debug)]
pub enum LockError {
    InUse { folder: PathBuf, pid: Option<u32> },
    Io(PathBuf, io::Error),
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::InUse { folder, pid } => {
                write!(f, "folder {} is in use by another client", folder.display())?;
                match pid {
                    Some(pid) => write!(f, " (pid {pid})"),
                    None => Ok(()),
                }
            }
            LockError::Io(p, e) => write!(f, "cannot lock {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for LockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LockError::Io(_, e) => Some(e),
            LockError::InUse { .. } => None,
        }
    }
}

impl FolderLock {
    /// Locks `folder` for this process or says who holds it.
    pub fn acquire(folder: &Path) -> Result<FolderLock, LockError> {
        let path = folder.join(LOCK_NAME);
        let io_err = |e| LockError::Io(path.clone(), e);
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io_err)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut text = String::new();
                    let _ = file.read_to_string(&mut text);
                    return Err(LockError::InUse {
                        folder: folder.to_path_buf(),
                        pid: text.trim().parse().ok(),
                    });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io_err(e)),
            }
            // The previous holder may have removed the name between our open and our lock.
            let same = match (file.metadata(), std::fs::metadata(&path)) {
                (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
                _ => false,
            };
            if !same {
                continue;
            }
            file.set_len(0).map_err(io_err)?;
            file.rewind().map_err(io_err)?;
            file.write_all(format!("{}\n", std::process::id()).as_bytes())
                .map_err(io_err)?;
            return Ok(FolderLock { file, path });
        }
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        // Remove the name while still holding the lock, then release it.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_folder_is_refused_with_the_pid_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = FolderLock::acquire(dir.path()).unwrap();
        let err = FolderLock::acquire(dir.path()).err().unwrap();
        assert_eq!(
            err.to_string(),
            format!(
                "folder {} is in use by another client (pid {})",
                dir.path().display(),
                std::process::id()
            )
        );
        drop(first);
        assert!(!dir.path().join(LOCK_NAME).exists());
        let again = FolderLock::acquire(dir.path()).unwrap();
        drop(again);
    }

    #[test]
    fn a_lock_file_left_by_a_dead_client_is_no_obstacle() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_NAME), "999999\n").unwrap();
        let lock = FolderLock::acquire(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(LOCK_NAME)).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        drop(lock);
    }
}
