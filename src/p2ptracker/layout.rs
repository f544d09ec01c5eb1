//! `peershare p2ptracker split` and `join`: the chunk folders a P2PTracker++ exercise starts
//! from, and the check that a finished folder really holds the whole file.
//!
//! `split` cuts a file into N chunks of ⌈size/N⌉ bytes (the last one shorter), so N must be
//! reachable that way (a 10-byte file cannot be cut into 6; the error suggests a count that
//! works) and no chunk is empty (an empty chunk cannot be fetched, spec §5). It refuses folders
//! that already have a `local_chunks.txt` before writing anything.

use super::chunk_list;
use crate::core::chunking;
use crate::core::transfer::PartFile;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Which chunks each folder gets.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Every folder holds every chunk.
    All,
    /// Chunk i goes to folder i mod k only.
    RoundRobin,
    /// Each chunk to one random folder, and to each other folder with probability 1/4.
    Random,
}

/// `holds[folder][chunk]` for `chunks` chunks over `folders` folders; every chunk has a holder.
pub fn assign(layout: Layout, chunks: usize, folders: usize, seed: u64) -> Vec<Vec<bool>> {
    let mut holds = vec![vec![false; chunks]; folders];
    if folders == 0 {
        return holds;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    for c in 0..chunks {
        match layout {
            Layout::All => holds.iter_mut().for_each(|f| f[c] = true),
            Layout::RoundRobin => holds[c % folders][c] = true,
            Layout::Random => {
                holds[rng.gen_range(0..folders)][c] = true;
                for f in holds.iter_mut() {
                    if rng.gen_bool(0.25) {
                        f[c] = true;
                    }
                }
            }
        }
    }
    holds
}

/// Why a split or join could not be done.
#[derive(Debug)]
pub enum LayoutError {
    Io(PathBuf, io::Error),
    TooSmall { size: u64, chunks: u32 },
    Uneven { size: u64, chunks: u32, works: u64 },
    AlreadyListed(PathBuf),
    List(chunk_list::ListError),
    Missing { missing: Vec<u32>, total: u32 },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            LayoutError::TooSmall { size, chunks } => write!(
                f,
                "a {size}-byte file cannot be cut into {chunks} non-empty chunks"
            ),
            LayoutError::Uneven {
                size,
                chunks,
                works,
            } => write!(
                f,
                "{size} bytes in chunks of ⌈{size}/{chunks}⌉ bytes make {works} chunks, not \
                 {chunks}; try --chunks {works}"
            ),
            LayoutError::AlreadyListed(p) => write!(
                f,
                "{} already has a {}; refusing to overwrite it",
                p.display(),
                chunk_list::FILE_NAME
            ),
            LayoutError::List(e) => write!(f, "{e}"),
            LayoutError::Missing { missing, total } => {
                let shown: Vec<String> = missing.iter().take(10).map(u32::to_string).collect();
                write!(
                    f,
                    "{} of {total} chunks missing (chunk {}{})",
                    missing.len(),
                    shown.join(", "),
                    if missing.len() > 10 { ", …" } else { "" }
                )
            }
        }
    }
}

impl std::error::Error for LayoutError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LayoutError::Io(_, e) => Some(e),
            LayoutError::List(e) => Some(e),
            _ => None,
        }
    }
}

/// Cuts `file` into `chunks` chunks and lays them out over `into` as `layout` says; returns a
/// one-line summary.
pub fn split(
    file: &Path,
    chunks: u32,
    into: &[PathBuf],
    layout: Layout,
    seed: u64,
) -> Result<String, LayoutError> {
    let io_at = |p: &Path| {
        let p = p.to_path_buf();
        move |e| LayoutError::Io(p, e)
    };
    let size = std::fs::metadata(file).map_err(io_at(file))?.len();
    if size < u64::from(chunks) {
        return Err(LayoutError::TooSmall { size, chunks });
    }
    let piece = size.div_ceil(u64::from(chunks));
    let works = size.div_ceil(piece);
    if works != u64::from(chunks) {
        return Err(LayoutError::Uneven {
            size,
            chunks,
            works,
        });
    }
    for dir in into {
        if dir.join(chunk_list::FILE_NAME).exists() {
            return Err(LayoutError::AlreadyListed(dir.clone()));
        }
    }
    for dir in into {
        std::fs::create_dir_all(dir).map_err(io_at(dir))?;
    }
    let staging = into[0].join(".split-staging");
    std::fs::create_dir_all(&staging).map_err(io_at(&staging))?;
    let result = lay_out(file, &staging, piece, into, layout, seed);
    let _ = std::fs::remove_dir_all(&staging);
    let held = result?;
    Ok(format!(
        "{chunks} chunks of {piece} bytes from {} over {} folder(s), {held} chunk files written",
        file.display(),
        into.len()
    ))
}

fn lay_out(
    file: &Path,
    staging: &Path,
    piece: u64,
    into: &[PathBuf],
    layout: Layout,
    seed: u64,
) -> Result<usize, LayoutError> {
    let io_at = |p: &Path| {
        let p = p.to_path_buf();
        move |e| LayoutError::Io(p, e)
    };
    let pieces = chunking::split_file(file, staging, piece, 1).map_err(io_at(file))?;
    let holds = assign(layout, pieces.len(), into.len(), seed);
    let mut written = 0;
    for (dir, held) in into.iter().zip(&holds) {
        let mut list = String::new();
        for ((idx, path, _), has) in pieces.iter().zip(held) {
            if *has {
                let dest = dir.join(format!("chunk_{idx}"));
                std::fs::copy(path, &dest).map_err(io_at(&dest))?;
                list.push_str(&format!("{idx},chunk_{idx}\n"));
                written += 1;
            }
        }
        list.push_str(&format!("{},LASTCHUNK\n", pieces.len()));
        chunk_list::write_atomically(dir, &list).map_err(io_at(dir))?;
    }
    Ok(written)
}

/// Writes the chunks `folder`'s list names, in order, to `output` (via `.part`); every chunk
/// `1..=N` must be present. Returns the bytes written.
pub fn join(folder: &Path, output: &Path) -> Result<u64, LayoutError> {
    let list = chunk_list::load(folder).map_err(LayoutError::List)?;
    let mut parts = Vec::new();
    let mut missing = Vec::new();
    for idx in 1..=list.total {
        let file = list
            .entries
            .iter()
            .filter(|e| e.idx == idx)
            .map(|e| folder.join(&e.name))
            .find(|p| p.is_file());
        match file {
            Some(p) => parts.push(p),
            None => missing.push(idx),
        }
    }
    if !missing.is_empty() {
        return Err(LayoutError::Missing {
            missing,
            total: list.total,
        });
    }
    let io_at = |e| LayoutError::Io(output.to_path_buf(), e);
    let part = PartFile::create(output).map_err(io_at)?;
    let staging = crate::core::transfer::part_path(output);
    let n = chunking::reassemble(&parts, &staging).map_err(io_at)?;
    part.commit().map_err(io_at)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_give_every_chunk_a_holder() {
        for layout in [Layout::All, Layout::RoundRobin, Layout::Random] {
            let holds = assign(layout, 17, 3, 1);
            for c in 0..17 {
                assert!(holds.iter().any(|f| f[c]), "{layout:?} chunk {c}");
            }
        }
        let rr = assign(Layout::RoundRobin, 4, 2, 0);
        assert_eq!(
            rr,
            vec![
                vec![true, false, true, false],
                vec![false, true, false, true]
            ]
        );
        assert!(assign(Layout::All, 3, 2, 0).iter().flatten().all(|b| *b));
    }

    #[test]
    fn split_then_join_gives_the_file_back_and_join_names_missing_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("f.bin");
        let data: Vec<u8> = (0..10_007u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&src, &data).unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        split(&src, 5, &[a.clone(), b.clone()], Layout::RoundRobin, 0).unwrap();
        assert_eq!(
            std::fs::read_to_string(a.join("local_chunks.txt")).unwrap(),
            "1,chunk_1\n3,chunk_3\n5,chunk_5\n5,LASTCHUNK\n"
        );
        assert!(!a.join(".split-staging").exists());
        let err = join(&a, &dir.path().join("out")).unwrap_err();
        assert_eq!(err.to_string(), "2 of 5 chunks missing (chunk 2, 4)");
        assert!(!dir.path().join("out").exists());
        for idx in [2, 4] {
            std::fs::copy(
                b.join(format!("chunk_{idx}")),
                a.join(format!("chunk_{idx}")),
            )
            .unwrap();
            let mut l = chunk_list::load(&a).unwrap();
            l.add_chunk(idx);
            l.save(&a).unwrap();
        }
        let out = dir.path().join("out");
        assert_eq!(join(&a, &out).unwrap(), data.len() as u64);
        assert_eq!(std::fs::read(&out).unwrap(), data);
        let again = split(&src, 5, std::slice::from_ref(&a), Layout::All, 0).unwrap_err();
        assert!(again.to_string().contains("already has a local_chunks.txt"));
    }

    #[test]
    fn impossible_counts_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("f");
        std::fs::write(&src, b"0123456789").unwrap();
        let out = dir.path().join("o");
        let e = split(&src, 6, std::slice::from_ref(&out), Layout::All, 0).unwrap_err();
        assert!(e.to_string().contains("try --chunks 5"), "{e}");
        let e = split(&src, 11, std::slice::from_ref(&out), Layout::All, 0).unwrap_err();
        assert!(e.to_string().contains("cannot be cut into 11"), "{e}");
        assert!(!out.exists());
    }
}
