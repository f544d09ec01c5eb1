//! Splitting sizes and files into byte ranges, and putting them back together.
//!
//! Fixed-size pieces (P2PTracker++ chunk files) as plain ranges; the systems decide what
//! travels. (BitTorrent-Python's S/N split rounds as Python does and lives in `torrent`.)

use std::fs::File;
use std::io::{self, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// `size` cut into pieces of `piece` bytes (the last may be shorter). A zero size gives none.
pub fn fixed_pieces(size: u64, piece: u64) -> Vec<Range<u64>> {
    let piece = piece.max(1);
    (0..size.div_ceil(piece))
        .map(|i| i * piece..((i + 1) * piece).min(size))
        .collect()
}

/// Writes `src` as files `chunk_<first_idx>`, `chunk_<first_idx+1>`, … of `piece` bytes in
/// `out_dir`; returns (index, path, length) per chunk. Copies go through `io::copy` (which uses
/// `copy_file_range` on Linux).
pub fn split_file(
    src: &Path,
    out_dir: &Path,
    piece: u64,
    first_idx: u32,
) -> io::Result<Vec<(u32, PathBuf, u64)>> {
    let mut file = File::open(src)?;
    let size = file.metadata()?.len();
    let mut out = Vec::new();
    for (i, range) in fixed_pieces(size, piece).into_iter().enumerate() {
        let idx = first_idx + i as u32;
        let path = out_dir.join(format!("chunk_{idx}"));
        let mut dest = File::create(&path)?;
        let len = range.end - range.start;
        let copied = io::copy(&mut (&mut file).take(len), &mut dest)?;
        if copied != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} shrank while it was being split", src.display()),
            ));
        }
        out.push((idx, path, len));
    }
    Ok(out)
}

/// Concatenates `parts` in order into `dest`.
pub fn reassemble(parts: &[PathBuf], dest: &Path) -> io::Result<u64> {
    let mut out = File::create(dest)?;
    let mut total = 0;
    for p in parts {
        total += io::copy(&mut File::open(p)?, &mut out)?;
    }
    out.flush()?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_pieces_cover_the_size_exactly() {
        assert_eq!(fixed_pieces(10, 4), vec![0..4, 4..8, 8..10]);
        assert_eq!(fixed_pieces(8, 4), vec![0..4, 4..8]);
        assert!(fixed_pieces(0, 4).is_empty());
    }

    #[test]
    fn split_then_reassemble_is_identity() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let data: Vec<u8> = (0..100_003u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(&src, &data).unwrap();
        let chunks = split_file(&src, dir.path(), 4096, 1).unwrap();
        assert_eq!(chunks.len(), 25);
        assert_eq!(chunks[0].0, 1);
        assert_eq!(chunks[24].2, 100_003 - 24 * 4096);
        let parts: Vec<PathBuf> = chunks.into_iter().map(|c| c.1).collect();
        let back = dir.path().join("back");
        reassemble(&parts, &back).unwrap();
        assert_eq!(std::fs::read(back).unwrap(), data);
    }
}
