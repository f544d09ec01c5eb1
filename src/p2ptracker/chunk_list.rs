//! `local_chunks.txt`: which chunk files a client starts with, and how many chunks there are.
//!
//! Lines are `<idx>,<filename>` plus one `<N>,LASTCHUNK`. Parsing is tolerant (CRLF, blank lines,
//! spaces around fields, LASTCHUNK anywhere) because three public implementations write it three
//! ways. Rewrites keep every existing line, insert the new entry just before LASTCHUNK, use LF
//! endings and a final newline, and go through a temporary file that is fsynced and renamed, so a
//! crash leaves either the old or the new list and a restart resumes.
//!
//! Where the spec is loose: of duplicate entries for one index the first whose file exists wins
//! (a chunk re-fetched after its listed file went missing is appended later and must count);
//! a second LASTCHUNK line is ignored with a warning; a LASTCHUNK line whose count is not a valid
//! index is an error naming the line, like a missing one.

use super::wire::{parse_idx, MAX_IDX};
use crate::core::names;
use std::fmt;
use std::io::{self, Write};
use std::path::Path;

pub const FILE_NAME: &str = "local_chunks.txt";

/// One `<idx>,<filename>` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub idx: u32,
    pub name: String,
    pub line_no: usize,
}

/// A parsed list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkList {
    pub total: u32,
    pub entries: Vec<Entry>,
    /// Every line as read (CR removed), kept for rewrites.
    pub lines: Vec<String>,
    /// One sentence per ignored line, naming it.
    pub warnings: Vec<String>,
}

/// Why a list cannot be used at all.
#[derive(Debug)]
pub enum ListError {
    Read(io::Error),
    NoLastChunk,
    BadLastChunk { line_no: usize, line: String },
}

impl fmt::Display for ListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListError::Read(e) => write!(f, "cannot read {FILE_NAME}: {e}"),
            ListError::NoLastChunk => {
                write!(
                    f,
                    "{FILE_NAME} has no <N>,LASTCHUNK line giving the chunk count"
                )
            }
            ListError::BadLastChunk { line_no, line } => write!(
                f,
                "{FILE_NAME} line {line_no}: {line:?} does not give a chunk count in 1..={MAX_IDX}"
            ),
        }
    }
}

impl std::error::Error for ListError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ListError::Read(e) => Some(e),
            ListError::NoLastChunk | ListError::BadLastChunk { .. } => None,
        }
    }
}

/// What one line of the list says.
enum Line {
    Blank,
    /// `<n>,LASTCHUNK`.
    Last(u32),
    /// `<idx>,<file name>`.
    Chunk(Entry),
    /// A line skipped, with the warning that says why.
    Ignored(String),
}

/// Reads line `line_no`; a LASTCHUNK line without a count is the one error.
fn parse_line(line_no: usize, line: &str) -> Result<Line, ListError> {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Ok(Line::Blank);
    }
    let ignored = |why: String| {
        Ok(Line::Ignored(format!(
            "{FILE_NAME} line {line_no} ignored: {why}"
        )))
    };
    let Some((first, rest)) = trimmed.split_once(',') else {
        return ignored(format!("no comma in {trimmed:?}"));
    };
    let (first, rest) = (first.trim(), rest.trim());
    if rest == "LASTCHUNK" {
        return match parse_idx(first) {
            Some(n) => Ok(Line::Last(n)),
            None => Err(ListError::BadLastChunk {
                line_no,
                line: line.to_string(),
            }),
        };
    }
    let Some(idx) = parse_idx(first) else {
        return ignored(format!("{first:?} is not a chunk index"));
    };
    if let Err(e) = names::check(rest) {
        return ignored(e.to_string());
    }
    Ok(Line::Chunk(Entry {
        idx,
        name: rest.to_string(),
        line_no,
    }))
}

/// Parses the text of a list.
pub fn parse(text: &str) -> Result<ChunkList, ListError> {
    let lines: Vec<String> = text
        .split('\n')
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect();
    // A trailing newline yields one empty last piece that is not a line.
    let lines = match lines.last() {
        Some(l) if l.is_empty() => lines[..lines.len() - 1].to_vec(),
        _ => lines,
    };
    let mut total = None;
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match parse_line(i + 1, line)? {
            Line::Blank => {}
            Line::Last(n) if total.is_none() => total = Some(n),
            Line::Last(_) => warnings.push(format!(
                "{FILE_NAME} line {} ignored: a second LASTCHUNK line",
                i + 1
            )),
            Line::Chunk(e) => entries.push(e),
            Line::Ignored(why) => warnings.push(why),
        }
    }
    let total = total.ok_or(ListError::NoLastChunk)?;
    entries.retain(|e| {
        let keep = e.idx <= total;
        if !keep {
            warnings.push(format!(
                "{FILE_NAME} line {} ignored: chunk {} is beyond LASTCHUNK {total}",
                e.line_no, e.idx
            ));
        }
        keep
    });
    Ok(ChunkList {
        total,
        entries,
        lines,
        warnings,
    })
}

/// Reads and parses `<folder>/local_chunks.txt`.
pub fn load(folder: &Path) -> Result<ChunkList, ListError> {
    let bytes = std::fs::read(folder.join(FILE_NAME)).map_err(ListError::Read)?;
    parse(&String::from_utf8_lossy(&bytes))
}

impl ChunkList {
    /// Adds `<idx>,chunk_<idx>` just before the LASTCHUNK line (in memory).
    pub fn add_chunk(&mut self, idx: u32) {
        let line = format!("{idx},chunk_{idx}");
        let at = self
            .lines
            .iter()
            .position(|l| {
                l.split_once(',')
                    .is_some_and(|(_, rest)| rest.trim() == "LASTCHUNK")
            })
            .unwrap_or(self.lines.len());
        self.lines.insert(at, line);
    }

    /// The file's text: every line with LF endings and a final newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            out.push_str(l);
            out.push('\n');
        }
        out
    }

    /// Writes the list to `<folder>/local_chunks.txt` atomically (temp file, fsync, rename).
    pub fn save(&self, folder: &Path) -> io::Result<()> {
        write_atomically(folder, &self.render())
    }
}

/// Writes `text` as `<folder>/local_chunks.txt`: temp file, fsync, rename.
pub fn write_atomically(folder: &Path, text: &str) -> io::Result<()> {
    let tmp = folder.join(format!(".{FILE_NAME}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, folder.join(FILE_NAME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerates_crlf_blank_lines_spaces_and_lastchunk_anywhere() {
        let l = parse("3,LASTCHUNK\r\n\r\n 1 , a.txt \r\n2,chunk_2\r\n").unwrap();
        assert_eq!(l.total, 3);
        let got: Vec<(u32, &str)> = l.entries.iter().map(|e| (e.idx, e.name.as_str())).collect();
        assert_eq!(got, vec![(1, "a.txt"), (2, "chunk_2")]);
        assert!(l.warnings.is_empty());
    }

    #[test]
    fn bad_lines_are_warnings_that_name_the_line() {
        let l =
            parse("1,ok\nnonsense\nx,y\n9,too_far\n2,../evil\n3,LASTCHUNK\n4,LASTCHUNK\n").unwrap();
        assert_eq!(l.entries.len(), 1);
        let w = l.warnings.join("\n");
        for n in [2, 3, 4, 5, 7] {
            assert!(w.contains(&format!("line {n} ignored")), "{w}");
        }
    }

    #[test]
    fn missing_or_bad_lastchunk_is_an_error() {
        assert!(matches!(parse("1,a\n"), Err(ListError::NoLastChunk)));
        let e = parse("1,a\nx,LASTCHUNK\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn rewrite_inserts_before_lastchunk_with_lf_and_final_newline() {
        let mut l = parse("1,chunk_1\r\n3,LASTCHUNK").unwrap();
        l.add_chunk(2);
        assert_eq!(l.render(), "1,chunk_1\n2,chunk_2\n3,LASTCHUNK\n");
        let again = parse(&l.render()).unwrap();
        assert_eq!(again.entries.len(), 2);
        let dir = tempfile::tempdir().unwrap();
        l.save(dir.path()).unwrap();
        assert_eq!(load(dir.path()).unwrap().entries.len(), 2);
    }
}
