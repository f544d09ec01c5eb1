//! `.torrent` files (BEP 3 metainfo): reading them strictly and making them.
//!
//! A torrent's data is one byte stream: the files one after another in the order listed, cut
//! into pieces of `piece length` bytes, so a piece may span the end of one file and the start of
//! the next. [`Metainfo::spans`] maps a byte range of that stream back onto the files; storage and
//! hashing both go through it. Every name and path component from a torrent passes
//! [`crate::core::names::check`] before it becomes part of a path.
//!
//! Making a torrent reads the data in order on the calling thread and hashes the pieces on a
//! [`WorkerPool`]; a bounded set of piece buffers keeps memory flat for any size.

use super::bencode::{self, BencodeError, Owned, Value};
use crate::core::names;
use crate::core::pool::WorkerPool;
use sha1::{Digest, Sha1};
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Largest `.torrent` we read (a 1 TiB torrent of 256 KiB pieces is 80 MiB of hashes; 64 MiB
/// is plenty for anything a course will see and bounds what a hostile file can make us hold).
pub const MAX_TORRENT_BYTES: u64 = 64 << 20;
/// Smallest piece length `make` accepts (BEP 3 practice: a piece holds at least one block).
pub const MIN_PIECE_LENGTH: u64 = 16 * 1024;
/// Largest piece length we make or accept.
pub const MAX_PIECE_LENGTH: u64 = 64 << 20;

/// SHA-1 of `data`.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    Sha1::digest(data).into()
}

/// One file of the torrent's byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path components under the torrent's name (empty for a single-file torrent).
    pub path: Vec<String>,
    pub length: u64,
    /// Where the file starts in the byte stream.
    pub offset: u64,
}

/// A part of one file: `len` bytes at `file_offset` of `files[file]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub file: usize,
    pub file_offset: u64,
    pub len: u64,
}

/// What a `.torrent` says, plus its info-hash.
#[derive(Debug, Clone)]
pub struct Metainfo {
    pub announce: Option<String>,
    /// Every tracker URL of `announce-list` (BEP 12), tiers flattened, in order.
    pub announce_list: Vec<String>,
    pub info_hash: [u8; 20],
    pub name: String,
    pub piece_length: u64,
    pub pieces: Vec<[u8; 20]>,
    pub files: Vec<FileEntry>,
    pub multi_file: bool,
    pub total_length: u64,
}

/// Why a `.torrent` was refused or could not be made.
#[derive(Debug)]
pub enum MetainfoError {
    Io(io::Error),
    TooBig(u64),
    Bencode(BencodeError),
    Missing(&'static str),
    Invalid(String),
}

impl fmt::Display for MetainfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetainfoError::Io(e) => write!(f, "{e}"),
            MetainfoError::TooBig(n) => write!(
                f,
                "the torrent file is {n} bytes, more than the {MAX_TORRENT_BYTES} we read"
            ),
            MetainfoError::Bencode(e) => write!(f, "the torrent is not valid bencode: {e}"),
            MetainfoError::Missing(key) => write!(f, "the torrent has no valid `{key}`"),
            MetainfoError::Invalid(why) => write!(f, "the torrent is invalid: {why}"),
        }
    }
}

impl std::error::Error for MetainfoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MetainfoError::Io(e) => Some(e),
            MetainfoError::Bencode(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for MetainfoError {
    fn from(e: io::Error) -> Self {
        MetainfoError::Io(e)
    }
}

impl From<BencodeError> for MetainfoError {
    fn from(e: BencodeError) -> Self {
        MetainfoError::Bencode(e)
    }
}

/// Reads and parses the `.torrent` at `path`.
pub fn read(path: &Path) -> Result<Metainfo, MetainfoError> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    if len > MAX_TORRENT_BYTES {
        return Err(MetainfoError::TooBig(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(MAX_TORRENT_BYTES + 1).read_to_end(&mut bytes)?;
    parse(&bytes)
}

fn length(v: Option<&Value>, key: &'static str) -> Result<u64, MetainfoError> {
    match v.and_then(Value::as_int) {
        Some(n) if n >= 0 => Ok(n as u64),
        _ => Err(MetainfoError::Missing(key)),
    }
}

fn checked_name(v: Option<&Value>, key: &'static str) -> Result<String, MetainfoError> {
    let s = v
        .and_then(Value::as_str)
        .ok_or(MetainfoError::Missing(key))?;
    names::check(s)
        .map(str::to_string)
        .map_err(|e| MetainfoError::Invalid(format!("the {key} {s:?} is unsafe: {e}")))
}

/// Parses metainfo bytes; the info-hash is the SHA-1 of the `info` value's raw span.
pub fn parse(bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
    let top = bencode::decode(bytes)?;
    let info_entry = top.entry("info").ok_or(MetainfoError::Missing("info"))?;
    let info = &info_entry.value;
    if !matches!(info, Value::Dict(_)) {
        return Err(MetainfoError::Missing("info"));
    }
    let info_hash = sha1(info_entry.raw);
    let name = checked_name(info.get("name"), "name")?;
    let piece_length = length(info.get("piece length"), "piece length")?;
    if piece_length == 0 || piece_length > MAX_PIECE_LENGTH {
        return Err(MetainfoError::Invalid(format!(
            "piece length {piece_length} is outside 1..={MAX_PIECE_LENGTH}"
        )));
    }
    let pieces = piece_hashes(info)?;
    let (files, multi_file) = file_entries(info)?;
    let total_length = files.last().map_or(0, |f| f.offset + f.length);
    let expected = total_length.div_ceil(piece_length);
    if pieces.len() as u64 != expected {
        return Err(MetainfoError::Invalid(format!(
            "{} piece hashes for {total_length} bytes in pieces of {piece_length} (expected {expected})",
            pieces.len()
        )));
    }
    let (announce, announce_list) = trackers(&top);
    Ok(Metainfo {
        announce,
        announce_list,
        info_hash,
        name,
        piece_length,
        pieces,
        files,
        multi_file,
        total_length,
    })
}

/// `pieces`: the concatenated 20-byte SHA-1s, split.
fn piece_hashes(info: &Value) -> Result<Vec<[u8; 20]>, MetainfoError> {
    let raw = info
        .get("pieces")
        .and_then(Value::as_bytes)
        .ok_or(MetainfoError::Missing("pieces"))?;
    if raw.len() % 20 != 0 {
        return Err(MetainfoError::Invalid(
            "`pieces` is not a whole number of 20-byte hashes".into(),
        ));
    }
    Ok(raw
        .chunks_exact(20)
        .map(|c| {
            let mut h = [0u8; 20];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

/// The files of `info` at their offsets in the torrent's byte stream, and whether it is the
/// multi-file form (`files`) rather than the single-file one (`length`).
fn file_entries(info: &Value) -> Result<(Vec<FileEntry>, bool), MetainfoError> {
    match (info.get("length"), info.get("files")) {
        (Some(l), None) => {
            let length = length(Some(l), "length")?;
            let single = FileEntry {
                path: Vec::new(),
                length,
                offset: 0,
            };
            Ok((vec![single], false))
        }
        (None, Some(list)) => {
            let list = list.as_list().ok_or(MetainfoError::Missing("files"))?;
            if list.is_empty() {
                return Err(MetainfoError::Invalid("`files` is empty".into()));
            }
            let mut files = Vec::with_capacity(list.len());
            let mut offset = 0u64;
            for f in list {
                let entry = file_entry(f, offset)?;
                offset = offset
                    .checked_add(entry.length)
                    .ok_or_else(|| MetainfoError::Invalid("the total size overflows".into()))?;
                files.push(entry);
            }
            Ok((files, true))
        }
        _ => Err(MetainfoError::Invalid(
            "`info` must have exactly one of `length` and `files`".into(),
        )),
    }
}

/// One entry of `files`, starting at `offset`; every path part must be a safe name.
fn file_entry(f: &Value, offset: u64) -> Result<FileEntry, MetainfoError> {
    let length = length(f.get("length"), "length")?;
    let parts = f
        .get("path")
        .and_then(Value::as_list)
        .ok_or(MetainfoError::Missing("path"))?;
    if parts.is_empty() {
        return Err(MetainfoError::Invalid("a file has an empty path".into()));
    }
    let path = parts
        .iter()
        .map(|p| checked_name(Some(p), "path"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(FileEntry {
        path,
        length,
        offset,
    })
}

/// `announce` and the flattened tiers of `announce-list` (BEP 12).
fn trackers(top: &Value) -> (Option<String>, Vec<String>) {
    let announce = top
        .get("announce")
        .and_then(Value::as_str)
        .map(String::from);
    let announce_list = top
        .get("announce-list")
        .and_then(Value::as_list)
        .map(|tiers| {
            tiers
                .iter()
                .filter_map(Value::as_list)
                .flatten()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    (announce, announce_list)
}

impl Metainfo {
    pub fn piece_count(&self) -> usize {
        self.pieces.len()
    }

    /// Bytes in piece `index` (the last one may be short).
    pub fn piece_size(&self, index: usize) -> u64 {
        let start = index as u64 * self.piece_length;
        self.total_length
            .saturating_sub(start)
            .min(self.piece_length)
    }

    /// Tracker URLs to try, `announce` first, without repeats.
    pub fn trackers(&self) -> Vec<String> {
        let mut out: Vec<String> = self.announce.iter().cloned().collect();
        for url in &self.announce_list {
            if !out.contains(url) {
                out.push(url.clone());
            }
        }
        out
    }

    /// The files `[offset, offset + len)` of the byte stream falls in, in order.
    pub fn spans(&self, offset: u64, len: u64) -> Vec<Span> {
        let end = (offset + len).min(self.total_length);
        let first = self
            .files
            .partition_point(|f| f.offset + f.length <= offset);
        let mut out = Vec::new();
        for (i, f) in self.files.iter().enumerate().skip(first) {
            if f.offset >= end {
                break;
            }
            let from = offset.max(f.offset);
            let to = end.min(f.offset + f.length);
            if to > from {
                out.push(Span {
                    file: i,
                    file_offset: from - f.offset,
                    len: to - from,
                });
            }
        }
        out
    }

    /// Pieces that hold bytes of file `i` (empty for an empty file).
    pub fn pieces_of_file(&self, i: usize) -> std::ops::Range<usize> {
        let f = &self.files[i];
        if f.length == 0 {
            return 0..0;
        }
        let first = (f.offset / self.piece_length) as usize;
        let last = ((f.offset + f.length - 1) / self.piece_length) as usize;
        first..last + 1
    }

    /// Where file `i` lives under `root`: `root/name` for one file, `root/name/a/b` for folders.
    pub fn file_path(&self, root: &Path, i: usize) -> PathBuf {
        let mut p = root.join(&self.name);
        for part in &self.files[i].path {
            p.push(part);
        }
        p
    }
}

/// A piece length giving roughly 1,500 pieces: a power of two in 16 KiB ..= 16 MiB.
pub fn default_piece_length(total: u64) -> u64 {
    let mut len = MIN_PIECE_LENGTH;
    while len < (16 << 20) && total / len > 1500 {
        len *= 2;
    }
    len
}

/// The files under `source` in the order they go into a torrent (sorted paths, recursively).
fn collect_files(source: &Path) -> io::Result<Vec<(PathBuf, Vec<String>, u64)>> {
    fn walk(
        dir: &Path,
        prefix: &[String],
        out: &mut Vec<(PathBuf, Vec<String>, u64)>,
    ) -> io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let mut path = prefix.to_vec();
            path.push(name);
            let ty = e.file_type()?;
            if ty.is_dir() {
                walk(&e.path(), &path, out)?;
            } else if ty.is_file() {
                out.push((e.path(), path, e.metadata()?.len()));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(source, &[], &mut out)?;
    Ok(out)
}

/// Makes the bytes of a `.torrent` for the file or folder `source`. `progress` is told how many
/// bytes have been hashed so far; hashing runs on `pool`.
pub fn make(
    source: &Path,
    announce: &str,
    piece_length: u64,
    pool: &WorkerPool,
    progress: &dyn Fn(u64),
) -> Result<Vec<u8>, MetainfoError> {
    let name = source
        .canonicalize()?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| MetainfoError::Invalid(format!("{} has no name", source.display())))?;
    names::check(&name).map_err(|e| MetainfoError::Invalid(e.to_string()))?;
    let meta = std::fs::metadata(source)?;
    let files = if meta.is_dir() {
        let files = collect_files(source)?;
        if files.is_empty() {
            return Err(MetainfoError::Invalid(format!(
                "{} holds no files",
                source.display()
            )));
        }
        files
    } else {
        vec![(source.to_path_buf(), Vec::new(), meta.len())]
    };
    let total: u64 = files.iter().map(|f| f.2).sum();
    let pieces = hash_pieces(
        files.iter().map(|f| f.0.as_path()),
        total,
        piece_length,
        pool,
        progress,
    )?;
    let mut info = vec![
        ("name", Owned::str(&name)),
        ("piece length", Owned::Int(piece_length as i64)),
        ("pieces", Owned::Bytes(pieces.concat())),
    ];
    if meta.is_dir() {
        let list = files
            .iter()
            .map(|(_, path, len)| {
                Owned::dict([
                    ("length", Owned::Int(*len as i64)),
                    (
                        "path",
                        Owned::List(path.iter().map(|p| Owned::str(p)).collect()),
                    ),
                ])
            })
            .collect();
        info.push(("files", Owned::List(list)));
    } else {
        info.push(("length", Owned::Int(total as i64)));
    }
    let top = Owned::dict([
        ("announce", Owned::str(announce)),
        (
            "created by",
            Owned::str(concat!("peershare ", env!("CARGO_PKG_VERSION"))),
        ),
        ("info", Owned::dict(info)),
    ]);
    Ok(bencode::encode(&top))
}

/// SHA-1 of every piece of the files read one after another. Buffers circulate through a
/// bounded channel, so at most `2 × workers + 2` pieces are in memory.
#[allow(
    clippy::too_many_lines,
    reason = "one pipeline: the reader, the buffer pool and the collector share their counters"
)]
fn hash_pieces<'p>(
    paths: impl Iterator<Item = &'p Path>,
    total: u64,
    piece_length: u64,
    pool: &WorkerPool,
    progress: &dyn Fn(u64),
) -> Result<Vec<[u8; 20]>, MetainfoError> {
    let count = total.div_ceil(piece_length) as usize;
    let buffers = 2 * std::thread::available_parallelism().map_or(2, |n| n.get()) + 2;
    let (free_tx, free_rx) = crossbeam_channel::bounded::<Vec<u8>>(buffers);
    for _ in 0..buffers {
        let _ = free_tx.send(Vec::with_capacity(piece_length as usize));
    }
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<(usize, [u8; 20])>();
    let mut hashes = vec![[0u8; 20]; count];
    let mut received = 0usize;
    let mut buf = free_rx.recv().unwrap_or_default();
    let mut index = 0usize;
    let mut hashed = 0u64;
    let submit = |buf: Vec<u8>, index: usize| {
        let (free_tx, done_tx) = (free_tx.clone(), done_tx.clone());
        pool.execute(move || {
            let h = sha1(&buf);
            let _ = done_tx.send((index, h));
            let mut buf = buf;
            buf.clear();
            let _ = free_tx.send(buf);
        })
        .map_err(|e| MetainfoError::Io(io::Error::other(e)))
    };
    for path in paths {
        let mut file = File::open(path)?;
        loop {
            let want = piece_length as usize - buf.len();
            let n = (&mut file).take(want as u64).read_to_end(&mut buf)?;
            if buf.len() == piece_length as usize {
                hashed += buf.len() as u64;
                submit(std::mem::take(&mut buf), index)?;
                index += 1;
                progress(hashed);
                while let Ok(h) = done_rx.try_recv() {
                    hashes[h.0] = h.1;
                    received += 1;
                }
                buf = free_rx.recv().unwrap_or_default();
            }
            if n == 0 {
                break;
            }
        }
    }
    if !buf.is_empty() {
        hashed += buf.len() as u64;
        submit(buf, index)?;
        index += 1;
        progress(hashed);
    }
    if index != count {
        return Err(MetainfoError::Invalid(
            "a file changed size while it was being hashed".into(),
        ));
    }
    drop(done_tx);
    while received < count {
        let (i, h) = done_rx
            .recv()
            .map_err(|_| MetainfoError::Invalid("hashing stopped early".into()))?;
        hashes[i] = h;
        received += 1;
    }
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make_in(dir: &Path, source: &Path, piece: u64) -> Metainfo {
        let rt =
            crate::core::runtime::Runtime::new("bt", "t", &crate::core::shutdown::Shutdown::new());
        let pool = WorkerPool::new(&rt, "hash", 2).unwrap();
        let bytes = make(source, "http://127.0.0.1:1/announce", piece, &pool, &|_| {}).unwrap();
        std::fs::write(dir.join("x.torrent"), &bytes).unwrap();
        read(&dir.join("x.torrent")).unwrap()
    }

    #[test]
    fn single_file_torrent_hashes_every_piece_and_the_short_last_one() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("a.bin"), &data).unwrap();
        let m = make_in(dir.path(), &dir.path().join("a.bin"), 16384);
        assert_eq!(m.name, "a.bin");
        assert!(!m.multi_file);
        assert_eq!(m.total_length, 40_000);
        assert_eq!(m.piece_count(), 3);
        assert_eq!(m.pieces[2], sha1(&data[32768..]));
        assert_eq!(m.piece_size(2), 40_000 - 32768);
    }

    #[test]
    fn multi_file_pieces_span_file_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("folder");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("b.txt"), vec![1u8; 10_000]).unwrap();
        std::fs::write(root.join("sub/c.txt"), vec![2u8; 30_000]).unwrap();
        std::fs::write(root.join("a.txt"), b"").unwrap();
        let m = make_in(dir.path(), &root, 16384);
        assert!(m.multi_file);
        let paths: Vec<_> = m.files.iter().map(|f| f.path.join("/")).collect();
        assert_eq!(paths, ["a.txt", "b.txt", "sub/c.txt"]);
        let mut stream = vec![1u8; 10_000];
        stream.extend(vec![2u8; 30_000]);
        assert_eq!(m.pieces[0], sha1(&stream[..16384]));
        assert_eq!(
            m.spans(8000, 4000),
            vec![
                Span {
                    file: 1,
                    file_offset: 8000,
                    len: 2000
                },
                Span {
                    file: 2,
                    file_offset: 0,
                    len: 2000
                }
            ]
        );
        assert_eq!(m.pieces_of_file(0), 0..0);
        assert_eq!(m.pieces_of_file(2), 0..3);
        assert_eq!(
            m.file_path(Path::new("/d"), 2),
            Path::new("/d/folder/sub/c.txt")
        );
    }

    #[test]
    fn info_hash_is_sha1_of_the_raw_info_span() {
        let raw_info =
            b"d6:lengthi3e4:name1:a12:piece lengthi16384e6:pieces20:AAAAAAAAAAAAAAAAAAAAe";
        let torrent = [&b"d4:info"[..], raw_info, b"e"].concat();
        let m = parse(&torrent).unwrap();
        assert_eq!(m.info_hash, sha1(raw_info));
    }

    #[test]
    fn refuses_unsafe_paths_and_wrong_piece_counts() {
        let t = b"d4:infod5:filesld6:lengthi1e4:pathl2:..eee4:name1:a12:piece lengthi16384e6:pieces20:AAAAAAAAAAAAAAAAAAAAee";
        assert!(matches!(parse(t), Err(MetainfoError::Invalid(_))));
        let t = b"d4:infod6:lengthi99999e4:name1:a12:piece lengthi16384e6:pieces20:AAAAAAAAAAAAAAAAAAAAee";
        assert!(matches!(parse(t), Err(MetainfoError::Invalid(_))));
        assert!(matches!(
            parse(b"d4:infoi1ee"),
            Err(MetainfoError::Missing("info"))
        ));
    }

    #[test]
    fn default_piece_length_is_a_power_of_two_in_range() {
        assert_eq!(default_piece_length(1000), 16384);
        let l = default_piece_length(1 << 30);
        assert!(l.is_power_of_two() && (1 << 30) / l <= 1500);
    }
}
