//! `logs.log`: one `entity,COMMAND,...` line per `write(2)` on an `O_APPEND` file.
//!
//! Graders read this file, and several processes (tracker and clients started in one folder) share
//! it. With `O_APPEND` the kernel moves to the end and writes atomically for each `write` call on
//! a regular file, so lines from different processes never tear or merge, provided each line goes
//! out in one call. That is why lines are built in full first and never written through a buffer.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

/// Shared handle to an append-only event log. Cloning shares the file.
#[derive(Clone)]
pub struct EventLog {
    file: Option<Arc<File>>,
}

impl EventLog {
    /// Opens (creating) `path` for appending.
    pub fn open(path: &Path) -> io::Result<EventLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(EventLog {
            file: Some(Arc::new(file)),
        })
    }

    /// A log that writes nothing (for in-process tests and benchmarks that do not need it).
    pub fn disabled() -> EventLog {
        EventLog { file: None }
    }

    /// Whether lines go anywhere: callers that build lines only to log them skip the work.
    pub fn is_enabled(&self) -> bool {
        self.file.is_some()
    }

    /// Appends one line built in full by the caller (no `\n`), in a single write.
    pub fn record_line(&self, mut line: String) {
        let Some(file) = &self.file else { return };
        line.push('\n');
        if let Err(e) = (&**file).write_all(line.as_bytes()) {
            log::warn!("could not append to logs.log: {e}");
        }
    }

    /// Appends `fields` joined by `,` and a newline in a single write. A failure is reported on
    /// stderr and otherwise ignored: losing a log line must not stop a transfer.
    pub fn record(&self, fields: &[&str]) {
        let Some(file) = &self.file else { return };
        let mut line = fields.join(",");
        line.push('\n');
        if let Err(e) = (&**file).write_all(line.as_bytes()) {
            log::warn!("could not append to logs.log: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_from_many_threads_never_tear() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.log");
        let mut handles = vec![];
        for t in 0..8 {
            let log = EventLog::open(&path).unwrap();
            handles.push(std::thread::spawn(move || {
                let name = format!("c{t}");
                for i in 0..500 {
                    log.record(&[&name, "WHERE_CHUNK", &i.to_string()]);
                }
            }));
        }
        for h in handles {
            h.join().unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 4000);
        for line in text.lines() {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 3, "{line}");
            assert_eq!(f[1], "WHERE_CHUNK");
        }
    }
}
