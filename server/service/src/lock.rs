//! One writer per data dir: an advisory lock on `<data dir>/lock`, released by the OS when the
//! process dies (so kill -9 never leaves a stale lock), with the holder's pid and command
//! inside for the error message the next process shows.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Result, ServiceError};

#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Who holds a lock, as written in the lock file.
#[derive(Debug, Clone)]
pub struct LockInfo {
    pub text: String,
}

impl DataDirLock {
    /// Takes the lock, waiting up to `wait` for a short-lived holder (another search) to go.
    pub fn acquire(data_dir: &Path, purpose: &str, wait: Duration) -> Result<DataDirLock> {
        std::fs::create_dir_all(data_dir).map_err(|e| ServiceError::io(data_dir, e))?;
        let path = data_dir.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| ServiceError::io(&path, e))?;
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(20);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    if Instant::now() >= deadline {
                        let mut text = String::new();
                        let _ = file.read_to_string(&mut text);
                        let holder = if text.trim().is_empty() {
                            "another codemem process".to_string()
                        } else {
                            format!("another codemem process ({})", text.trim())
                        };
                        return Err(ServiceError::Busy {
                            data_dir: data_dir.display().to_string(),
                            holder,
                        });
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(250));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(ServiceError::io(&path, e)),
            }
        }
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = write!(file, "pid {}, `codemem {}`", std::process::id(), purpose);
        let _ = file.flush();
        Ok(DataDirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_gets_a_clear_busy_error() {
        let dir = tempfile::tempdir().unwrap();
        let _a = DataDirLock::acquire(dir.path(), "index", Duration::ZERO).unwrap();
        let err =
            DataDirLock::acquire(dir.path(), "search", Duration::from_millis(50)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("codemem index"), "{msg}");
        assert!(msg.contains(&std::process::id().to_string()), "{msg}");
    }

    #[test]
    fn released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        drop(DataDirLock::acquire(dir.path(), "index", Duration::ZERO).unwrap());
        DataDirLock::acquire(dir.path(), "index", Duration::ZERO).unwrap();
    }
}
