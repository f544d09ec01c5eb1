//! `local_chunks.txt` as the client updates it while downloads land, with batch durability.
//!
//! The guarantee (spec §5): a chunk listed in `local_chunks.txt` is complete and durable, and a
//! chunk is announced only once listed. It used to cost every chunk its own `fdatasync` on the
//! download thread plus a share of a list rewrite, and the download slot waited for both
//! (issue 19: 0.48–0.63× of the machine's copy rate at 1 MiB chunks). Now a download renames its
//! verified chunk into place without waiting for the disk and hands the file to this thread,
//! then frees its slot; this thread takes every chunk that has landed meanwhile as one batch:
//! `sync_data` on each (the kernel has usually written them back already), one rewrite of the
//! list (temporary file, fsync, rename), one fsync of the folder (the renames), and only then
//! tells the tracker thread which chunks are listed, so it can serve and announce them.
//!
//! A crash between landing and listing leaves a `chunk_<idx>` file that the list does not name:
//! a restart does not count it and downloads it again.

use super::chunk_list::{self, ChunkList};
use crate::core::shutdown::Shutdown;
use crossbeam_channel::{select, Receiver, Sender};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// A verified chunk renamed into place, not yet durable nor listed.
pub struct Landed {
    pub idx: u32,
    pub file: File,
    /// The line to show once it is listed (`chunk 7 received from …`).
    pub note: String,
}

/// The outcome of one batch.
#[derive(Debug, Default)]
pub struct Listed {
    /// Durable and in `local_chunks.txt`: servable and announceable (with its note).
    pub listed: Vec<(u32, String)>,
    /// Could not be made durable or listed; the text says why. Downloaded again later.
    pub failed: Vec<(u32, String)>,
}

/// Runs the list thread until `shutdown` fires.
pub fn run(
    folder: PathBuf,
    mut list: ChunkList,
    landed: Receiver<Landed>,
    listed: Sender<Listed>,
    shutdown: Shutdown,
) {
    loop {
        let first = select! {
            recv(landed) -> l => match l {
                Ok(l) => l,
                Err(_) => return,
            },
            recv(shutdown.receiver()) -> _ => return,
        };
        let mut batch = vec![first];
        batch.extend(landed.try_iter());
        let outcome = list_batch(&folder, &mut list, batch);
        if listed.send(outcome).is_err() {
            return;
        }
    }
}

/// Makes `batch` durable and lists it in one rewrite.
fn list_batch(folder: &Path, list: &mut ChunkList, batch: Vec<Landed>) -> Listed {
    let mut out = Listed::default();
    let mut synced = Vec::new();
    for l in batch {
        match l.file.sync_data() {
            Ok(()) => synced.push((l.idx, l.note)),
            Err(e) => out
                .failed
                .push((l.idx, format!("cannot make it durable: {e}"))),
        }
    }
    if synced.is_empty() {
        return out;
    }
    let before = list.lines.clone();
    for (idx, _) in &synced {
        list.add_chunk(*idx);
    }
    match save_durably(folder, list) {
        Ok(()) => out.listed = synced,
        Err(e) => {
            list.lines = before;
            let why = format!("cannot update the chunk list: {e}");
            out.failed
                .extend(synced.into_iter().map(|(idx, _)| (idx, why.clone())));
        }
    }
    out
}

/// Rewrites the list atomically, then fsyncs the folder so both the chunk renames and the
/// list's rename survive a power cut.
fn save_durably(folder: &Path, list: &ChunkList) -> io::Result<()> {
    chunk_list::write_atomically(folder, &list.render())?;
    File::open(folder)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_listed_in_one_rewrite_before_lastchunk() {
        let dir = tempfile::tempdir().unwrap();
        let mut list = chunk_list::parse("1,chunk_1\n4,LASTCHUNK\n").unwrap();
        let batch = [3, 2]
            .into_iter()
            .map(|idx| {
                let path = dir.path().join(format!("chunk_{idx}"));
                std::fs::write(&path, b"x").unwrap();
                Landed {
                    idx,
                    file: File::open(&path).unwrap(),
                    note: String::new(),
                }
            })
            .collect();
        let out = list_batch(dir.path(), &mut list, batch);
        let idxs: Vec<u32> = out.listed.iter().map(|l| l.0).collect();
        assert_eq!(idxs, vec![3, 2]);
        assert!(out.failed.is_empty());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("local_chunks.txt")).unwrap(),
            "1,chunk_1\n3,chunk_3\n2,chunk_2\n4,LASTCHUNK\n"
        );
    }
}
