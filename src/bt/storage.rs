//! A torrent's files on disk: reading blocks to serve, writing verified pieces, and landing
//! each file atomically.
//!
//! A download writes into `<file>.part`; only pieces whose SHA-1 checked out are ever written.
//! When every piece touching a file is in, the file is fsynced and renamed to its final name,
//! so a file under its final name is always complete. Restarting re-checks what is on disk
//! (final files and `.part` files alike) on the worker pool and keeps every piece that verifies:
//! that is the resume. A seeder opens the user's data read-only and checks it the same way.

use super::metainfo::{sha1, Metainfo};
use super::wire::Bitfield;
use crate::core::pool::WorkerPool;
use crate::core::transfer::part_path;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

struct Stored {
    file: File,
    part: PathBuf,
    dest: PathBuf,
    /// Pieces of this file not yet verified; the file lands when this reaches 0.
    missing: usize,
    landed: bool,
    /// Created empty by this run: nothing in it can verify, so the start-up check skips it.
    fresh: bool,
}

pub struct Storage {
    meta: Arc<Metainfo>,
    files: Vec<Stored>,
    /// Guards `missing`/`landed` bookkeeping and renames.
    landing: Mutex<Vec<(usize, bool)>>,
    writable: bool,
}

impl Storage {
    /// The user's complete data to seed: the file itself, or the folder holding the files.
    pub fn open_seed(meta: Arc<Metainfo>, data: &Path) -> io::Result<Storage> {
        let mut files = Vec::new();
        for (i, f) in meta.files.iter().enumerate() {
            let path = if meta.multi_file {
                f.path.iter().fold(data.to_path_buf(), |p, c| p.join(c))
            } else {
                data.to_path_buf()
            };
            let file = File::open(&path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            let _ = i;
            files.push(Stored {
                file,
                part: path.clone(),
                dest: path,
                missing: 0,
                landed: true,
                fresh: false,
            });
        }
        let landing = Mutex::new(files.iter().map(|s| (s.missing, s.landed)).collect());
        Ok(Storage {
            meta,
            files,
            landing,
            writable: false,
        })
    }

    /// Files under `dir` for a download: final files where they exist, `.part` files otherwise.
    pub fn open_download(meta: Arc<Metainfo>, dir: &Path) -> io::Result<Storage> {
        let mut files = Vec::new();
        for i in 0..meta.files.len() {
            let dest = meta.file_path(dir, i);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let part = part_path(&dest);
            let length = meta.files[i].length;
            let existing_final =
                std::fs::metadata(&dest).is_ok_and(|m| m.is_file() && m.len() == length);
            let path = if existing_final { &dest } else { &part };
            let fresh = length > 0 && !path.exists();
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)?;
            if file.metadata()?.len() != length {
                file.set_len(length)?;
            }
            files.push(Stored {
                file,
                part,
                dest,
                missing: meta.pieces_of_file(i).len(),
                landed: existing_final,
                fresh,
            });
        }
        let landing = Mutex::new(files.iter().map(|s| (s.missing, s.landed)).collect());
        Ok(Storage {
            meta,
            files,
            landing,
            writable: true,
        })
    }

    /// Bytes `[begin, begin + len)` of piece `index`.
    pub fn read(&self, index: usize, begin: u64, len: u64) -> io::Result<Vec<u8>> {
        let mut out = vec![0u8; len as usize];
        self.read_into(index, begin, &mut out)?;
        Ok(out)
    }

    /// Fills `out` with the bytes at `begin` of piece `index`.
    pub fn read_into(&self, index: usize, begin: u64, out: &mut [u8]) -> io::Result<()> {
        let len = out.len() as u64;
        let start = index as u64 * self.meta.piece_length + begin;
        let mut at = 0usize;
        for s in self.meta.spans(start, len) {
            self.files[s.file]
                .file
                .read_exact_at(&mut out[at..at + s.len as usize], s.file_offset)?;
            at += s.len as usize;
        }
        if at != out.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the torrent's end",
            ));
        }
        Ok(())
    }

    /// Writes verified piece `index` and lands every file it completes.
    pub fn write_piece(&self, index: usize, data: &[u8]) -> io::Result<()> {
        if !self.writable {
            return Ok(());
        }
        let start = index as u64 * self.meta.piece_length;
        let mut at = 0usize;
        let spans = self.meta.spans(start, data.len() as u64);
        for s in &spans {
            self.files[s.file]
                .file
                .write_all_at(&data[at..at + s.len as usize], s.file_offset)?;
            at += s.len as usize;
        }
        let mut landing = self
            .landing
            .lock()
            .map_err(|_| io::Error::other("storage lock poisoned"))?;
        for s in spans {
            let entry = &mut landing[s.file];
            entry.0 = entry.0.saturating_sub(1);
            if entry.0 == 0 && !entry.1 {
                self.land(s.file)?;
                entry.1 = true;
            }
        }
        Ok(())
    }

    fn land(&self, i: usize) -> io::Result<()> {
        let f = &self.files[i];
        f.file.sync_data()?;
        std::fs::rename(&f.part, &f.dest)?;
        log::info!("{} is complete", f.dest.display());
        Ok(())
    }

    /// Checks every piece on `pool`; returns the bitfield of pieces that verify and lands
    /// files that are whole (empty files at once).
    pub fn check(&self, pool: &WorkerPool, progress: &dyn Fn(u64)) -> io::Result<Bitfield>
    where
        Self: Sync,
    {
        let n = self.meta.piece_count();
        let mut have = Bitfield::new(n);
        let (tx, rx) = crossbeam_channel::unbounded::<(usize, bool)>();
        let me: &Storage = self;
        // Jobs need 'static: hand them what they need by value.
        let shared = Arc::new(SharedRead {
            files: self
                .files
                .iter()
                .map(|f| f.file.try_clone())
                .collect::<io::Result<_>>()?,
            meta: self.meta.clone(),
        });
        // A piece lying wholly in files this run created holds only zeros: skip hashing it.
        let blank = |i: usize| {
            let m = &self.meta;
            m.spans(i as u64 * m.piece_length, m.piece_size(i))
                .iter()
                .all(|s| self.files[s.file].fresh)
        };
        let (slots_tx, slots_rx) = crossbeam_channel::bounded::<()>(16);
        for i in 0..n {
            if blank(i) {
                continue;
            }
            let _ = slots_tx.send(());
            let (tx, shared, slots_rx) = (tx.clone(), shared.clone(), slots_rx.clone());
            pool.execute(move || {
                let ok = shared.piece_ok(i);
                let _ = tx.send((i, ok));
                let _ = slots_rx.recv();
            })
            .map_err(io::Error::other)?;
            while let Ok((i, ok)) = rx.try_recv() {
                if ok {
                    have.set(i);
                }
            }
            progress(i as u64 * me.meta.piece_length);
        }
        drop(tx);
        for (i, ok) in rx.iter() {
            if ok {
                have.set(i);
            }
        }
        if self.writable {
            self.land_checked(&have)?;
        }
        Ok(have)
    }

    /// After a check: lands every file whose pieces all verified, and sends a landed file whose
    /// pieces do not all verify back to `.part` (a final file that does not check out is not
    /// final).
    fn land_checked(&self, have: &Bitfield) -> io::Result<()> {
        let mut landing = self
            .landing
            .lock()
            .map_err(|_| io::Error::other("storage lock poisoned"))?;
        for i in 0..self.files.len() {
            let missing = self
                .meta
                .pieces_of_file(i)
                .filter(|&p| !have.has(p))
                .count();
            landing[i].0 = missing;
            if missing == 0 && !landing[i].1 {
                self.land(i)?;
                landing[i].1 = true;
            } else if missing > 0 && landing[i].1 {
                std::fs::rename(&self.files[i].dest, &self.files[i].part)?;
                landing[i].1 = false;
            }
        }
        Ok(())
    }

    /// True once every file is under its final name.
    pub fn all_landed(&self) -> bool {
        self.landing.lock().is_ok_and(|l| l.iter().all(|e| e.1))
    }
}

struct SharedRead {
    files: Vec<File>,
    meta: Arc<Metainfo>,
}

impl SharedRead {
    fn piece_ok(&self, i: usize) -> bool {
        let len = self.meta.piece_size(i);
        let mut buf = vec![0u8; len as usize];
        let mut at = 0usize;
        for s in self.meta.spans(i as u64 * self.meta.piece_length, len) {
            if self.files[s.file]
                .read_exact_at(&mut buf[at..at + s.len as usize], s.file_offset)
                .is_err()
            {
                return false;
            }
            at += s.len as usize;
        }
        sha1(&buf) == self.meta.pieces[i]
    }
}
