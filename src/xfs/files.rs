//! A node's shared directory: the scan that builds its file list, and MD5 (`hash_val`).
//!
//! MD5 plugs into `core::digest::StreamHasher`, so `core::transfer::receive_file` checks a
//! download's MD5 while the bytes arrive. Hashing a large directory on every `updatelist` would
//! be slow, so digests are cached by (name, size, mtime).

use crate::core::digest::{hash_reader, to_hex, StreamHasher};
use crate::core::names;
use crate::xfs::wire::FileEntry;
use md5::{Digest, Md5};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::path::Path;
use std::time::SystemTime;

/// MD5 as a [`StreamHasher`].
#[derive(Default)]
pub struct Md5Hasher(Md5);

impl StreamHasher for Md5Hasher {
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    fn finish_hex(self: Box<Self>) -> String {
        to_hex(&self.0.finalize())
    }
}

/// MD5 hex of a file's whole contents.
pub fn md5_file(path: &Path) -> io::Result<String> {
    let mut hasher = Box::<Md5Hasher>::default();
    hash_reader(File::open(path)?, hasher.as_mut())?;
    Ok(hasher.finish_hex())
}

/// Why a directory entry is not shared, or `None` when it is. Names travel inside
/// whitespace-separated commands, and `.part` files are downloads in progress.
pub fn unshareable(name: &str) -> Option<String> {
    if name.ends_with(".part") {
        return Some("it is a partial download".into());
    }
    if let Err(e) = names::check(name) {
        return Some(e.to_string());
    }
    if name.chars().any(char::is_whitespace) {
        return Some("the name contains whitespace".into());
    }
    None
}

/// The scan with its digest cache.
#[derive(Default)]
pub struct FileIndex {
    cache: HashMap<String, (u64, Option<SystemTime>, String)>,
    warned: HashSet<String>,
}

impl FileIndex {
    /// Regular files directly in `dir`, sorted by name, with their MD5s. Skipped names get one
    /// warning each per process.
    pub fn scan(&mut self, dir: &Path) -> io::Result<Vec<FileEntry>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    log::warn!("cannot read an entry of {}: {e}", dir.display());
                    continue;
                }
            };
            let path = entry.path();
            // Regular files only: a symlink could point anywhere outside the directory.
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if !meta.file_type().is_file() {
                continue;
            }
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                self.warn_once(
                    &entry.file_name().to_string_lossy(),
                    "the name is not UTF-8",
                );
                continue;
            };
            if let Some(why) = unshareable(&name) {
                if !name.ends_with(".part") {
                    self.warn_once(&name, &why);
                }
                continue;
            }
            let mtime = meta.modified().ok();
            let size = meta.len();
            let hash = match self.cache.get(&name) {
                Some((s, m, h)) if *s == size && *m == mtime && mtime.is_some() => h.clone(),
                _ => match md5_file(&path) {
                    Ok(h) => {
                        self.cache.insert(name.clone(), (size, mtime, h.clone()));
                        h
                    }
                    Err(e) => {
                        log::warn!("cannot read {}: {e}; not shared", path.display());
                        continue;
                    }
                },
            };
            out.push(FileEntry {
                name,
                size,
                hash_val: hash,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn warn_once(&mut self, name: &str, why: &str) {
        if self.warned.insert(name.to_string()) {
            log::warn!("not sharing {name:?}: {why}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_the_standard_vector() {
        let mut h = Box::<Md5Hasher>::default();
        h.update(b"abc");
        assert_eq!(h.finish_hex(), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn scan_lists_plain_files_sorted_and_skips_parts_and_odd_names() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("b.txt"), b"abc").unwrap();
        std::fs::write(d.join("a.txt"), b"").unwrap();
        std::fs::write(d.join("c.bin.part"), b"half").unwrap();
        std::fs::write(d.join("has space"), b"x").unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.join("link")).unwrap();
        let mut index = FileIndex::default();
        let files = index.scan(d).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, vec!["a.txt", "b.txt"]);
        assert_eq!(files[1].size, 3);
        assert_eq!(files[1].hash_val, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(files[0].hash_val, "d41d8cd98f00b204e9800998ecf8427e");
        // Changed contents (different size) are re-hashed.
        std::fs::write(d.join("b.txt"), b"abcd").unwrap();
        assert_eq!(
            index.scan(d).unwrap()[1].hash_val,
            md5_file(&d.join("b.txt")).unwrap()
        );
    }
}
