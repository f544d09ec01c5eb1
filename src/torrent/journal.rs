//! The one log function of BitTorrent-Python (`utils.log`): every event goes to stdout as
//! `[HH:MM:SS]  text` followed by an empty line (the original prints a string that already ends
//! in a newline) and is appended to the role's log file as `[HH:MM:SS]  text` + LF.

use crate::core::console::Printer;
use crate::core::event_log::EventLog;
use std::io;
use std::path::Path;

/// Shared handle to one role's log (stdout + file). Cloning shares both.
#[derive(Clone)]
pub struct Journal {
    printer: Printer,
    /// The file side: core's append-only log, one write(2) per line, so lines never tear.
    file: EventLog,
}

/// Local wall-clock time as `HH:MM:SS`, like `datetime.now().strftime("%H:%M:%S")`.
pub fn clock() -> String {
    jiff::Zoned::now().strftime("%H:%M:%S").to_string()
}

impl Journal {
    /// Opens (creating the directory and file) `logs_dir/file_name` for appending.
    pub fn open(printer: Printer, logs_dir: &Path, file_name: &str) -> io::Result<Journal> {
        std::fs::create_dir_all(logs_dir)?;
        Ok(Journal {
            printer,
            file: EventLog::open(&logs_dir.join(file_name))?,
        })
    }

    /// Logs one event: stdout and the log file.
    pub fn log(&self, text: &str) {
        let line = format!("[{}]  {text}", clock());
        // The original prints a string that already ends in a newline: a blank line follows.
        self.printer.line(&format!("{line}\n"));
        self.file.record(&[&line]);
    }

    /// A bare stdout line that is not logged (`ENTER YOUR COMMAND!`, the usage line).
    pub fn say(&self, text: &str) {
        self.printer.line(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_two_spaces_after_the_time_and_end_with_lf() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(Printer::plain(), dir.path(), "node1.log").unwrap();
        j.log("You entered Torrent.");
        j.log("second");
        let text = std::fs::read_to_string(dir.path().join("node1.log")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with('[') && lines[0].ends_with("]  You entered Torrent."));
        assert_eq!(lines[0].len(), "[00:00:00]  You entered Torrent.".len());
        assert!(text.ends_with("second\n"));
    }
}
