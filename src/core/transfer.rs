//! Moving file bytes over TCP: send a whole file or a byte range, and land a received stream.
//!
//! Sending uses `sendfile(2)` from the file into the `TcpStream`: no user-space copy at all.
//! (`std::io::copy` does not do this: std refuses `File → socket` sendfile on purpose, since a
//! later write to the file could still change bytes queued in the socket; it falls back to an
//! 8 KiB read/write loop. peershare serves files nobody rewrites while they are served, so it
//! calls sendfile through rustix, which needs no `unsafe` here.) Receiving reads 1 MiB
//! at a time into `<name>.part`; when a digest is wanted, the buffers travel to a hashing thread
//! so hashing overlaps the next read. A download becomes `<name>` only after its size (and digest,
//! where known) checks out, it is fsynced and renamed: a half-received file never looks complete.
//!
//! - [`end`]: how a downloader tells a finished upload from a dead uploader on wires that carry
//!   no size ([`Expect::end_check`]), and how a peershare uploader ends a connection for it
//!   ([`upload_file`], [`finish_upload`], [`abort_upload`]).
//! - [`watched`]: [`WatchedReader`], the download source that fails on shutdown or silence.

pub mod end;
pub mod watched;

pub use end::{
    abort_upload, finish_upload, send_whole_file, upload_file, EndCheck, EndError, EndVerdict,
    FINISH_WAIT,
};
pub use watched::WatchedReader;

use crate::core::digest::StreamHasher;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::ffi::OsString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::TcpStream;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

/// Receive buffer size: big enough that loopback transfers are not syscall-bound.
pub const BUF_SIZE: usize = 1 << 20;

/// Streams the whole file at `path` into `out`; returns the bytes sent.
pub fn send_file(out: &mut TcpStream, path: &Path) -> io::Result<u64> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    send_from(out, file, 0, len)
}

/// Streams bytes `range` of the file at `path` into `out`, clamped to the file's end.
pub fn send_range(out: &mut TcpStream, path: &Path, range: Range<u64>) -> io::Result<u64> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let (start, end) = (range.start.min(len), range.end.min(len));
    send_from(out, file, start, end.max(start))
}

/// `sendfile(2)` of `file[start..end]` into `out`; stops early if the file shrinks. Falls back to
/// `io::copy` where the kernel cannot sendfile from this file (before the first byte only).
fn send_from(out: &mut TcpStream, mut file: File, start: u64, end: u64) -> io::Result<u64> {
    use rustix::io::Errno;
    let mut offset = start;
    while offset < end {
        let want = (end - offset).min(1 << 30) as usize;
        match rustix::fs::sendfile(&*out, &file, Some(&mut offset), want) {
            Ok(0) => break,
            Ok(_) => {}
            Err(Errno::INTR) => {}
            // A send timeout (SO_SNDTIMEO) surfaces as EAGAIN, like a blocking write's timeout.
            Err(Errno::AGAIN) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the peer stopped reading",
                ))
            }
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) if offset == start => {
                file.seek(SeekFrom::Start(start))?;
                return io::copy(&mut file.take(end - start), out);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(offset - start)
}

/// `<dest>.part`: where bytes for `dest` are written until they are verified.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name: OsString = dest.file_name().map(OsString::from).unwrap_or_default();
    name.push(".part");
    dest.with_file_name(name)
}

/// A file being received. It is `<dest>.part` until [`PartFile::commit`]; dropping it
/// uncommitted removes the `.part`, so every error path cleans up by itself.
pub struct PartFile {
    file: File,
    part: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl PartFile {
    /// Creates (truncating) `<dest>.part`.
    pub fn create(dest: &Path) -> io::Result<PartFile> {
        let part = part_path(dest);
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .read(true)
            .open(&part)?;
        Ok(PartFile {
            file,
            part,
            dest: dest.to_path_buf(),
            committed: false,
        })
    }

    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Fsyncs and renames `<dest>.part` to `<dest>`, replacing any existing file. `fdatasync`
    /// suffices: the bytes and the length must be durable before the name appears; timestamps
    /// need not be.
    pub fn commit(mut self) -> io::Result<()> {
        self.file.sync_data()?;
        std::fs::rename(&self.part, &self.dest)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.part);
        }
    }
}

/// What a received stream must look like to be accepted.
#[derive(Default)]
pub struct Expect {
    /// Exact size, where the protocol tells it.
    pub len: Option<u64>,
    /// Zero bytes is a refusal (protocols that cannot tell an empty file from "no").
    pub refuse_empty: bool,
    /// A whole payload equal to this is a refusal (`CHUNK_NOT_FOUND`, `Error: File not found`).
    pub refusal_text: Option<&'static [u8]>,
    /// A hash to compute while receiving and the lower-case hex it must equal.
    pub digest: Option<(Box<dyn StreamHasher>, String)>,
    /// For wires that end a file by closing: after EOF, check that the uploader really finished
    /// (see [`end`]); a file that cannot be vouched for is not landed.
    pub end_check: Option<EndCheck>,
}

/// Why a received stream was not landed.
#[derive(Debug)]
pub enum TransferError {
    Io(io::Error),
    Empty,
    Refused(String),
    WrongSize {
        expected: u64,
        got: u64,
    },
    DigestMismatch {
        expected: String,
        got: String,
    },
    /// EOF came, but [`Expect::end_check`] could not confirm the uploader finished.
    Unconfirmed(EndError),
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransferError::Io(e) => write!(f, "{e}"),
            TransferError::Empty => write!(f, "the peer sent no data"),
            TransferError::Refused(text) => write!(f, "the peer reported: {text}"),
            TransferError::WrongSize { expected, got } => {
                write!(f, "expected {expected} bytes but received {got}")
            }
            TransferError::DigestMismatch { expected, got } => {
                write!(f, "the digest {got} does not match the expected {expected}")
            }
            TransferError::Unconfirmed(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TransferError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TransferError::Io(e) => Some(e),
            TransferError::Unconfirmed(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for TransferError {
    fn from(e: io::Error) -> Self {
        TransferError::Io(e)
    }
}

/// Hashes buffers on its own thread; buffers come back through `free` for reuse.
struct HashThread {
    full: Sender<(Vec<u8>, usize)>,
    free: Receiver<Vec<u8>>,
    handle: JoinHandle<String>,
}

impl HashThread {
    fn start(mut hasher: Box<dyn StreamHasher>) -> io::Result<HashThread> {
        let (full, full_rx) = bounded::<(Vec<u8>, usize)>(2);
        let (free_tx, free) = bounded::<Vec<u8>>(3);
        for _ in 0..2 {
            let _ = free_tx.send(vec![0u8; BUF_SIZE]);
        }
        let handle = std::thread::Builder::new()
            .name("hash".into())
            .spawn(move || {
                for (buf, n) in full_rx.iter() {
                    hasher.update(&buf[..n]);
                    let _ = free_tx.send(buf);
                }
                hasher.finish_hex()
            })?;
        Ok(HashThread { full, free, handle })
    }

    fn finish(self) -> io::Result<String> {
        drop(self.full);
        self.handle
            .join()
            .map_err(|_| io::Error::other("the hashing thread panicked"))
    }
}

/// Reads `src` to EOF into `<dest>.part`, checks it against `expect`, then fsyncs and renames it
/// to `dest`. `progress` is called with the running byte count after every read. On any failure
/// the `.part` is gone and `dest` is untouched.
pub fn receive_file(
    src: &mut impl Read,
    dest: &Path,
    expect: Expect,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, TransferError> {
    let mut part = PartFile::create(dest)?;
    let Expect {
        len,
        refuse_empty,
        refusal_text,
        digest,
        end_check,
    } = expect;
    let (total, head, digest) = receive_into(src, part.file(), digest, progress)?;
    if total == 0 && refuse_empty {
        return Err(TransferError::Empty);
    }
    if let Some(text) = refusal_text {
        if total == text.len() as u64 && head.as_slice() == text {
            return Err(TransferError::Refused(
                String::from_utf8_lossy(text).into_owned(),
            ));
        }
    }
    if let Some(expected) = len {
        if expected != total {
            return Err(TransferError::WrongSize {
                expected,
                got: total,
            });
        }
    }
    if let Some((expected, got)) = digest {
        if expected != got {
            return Err(TransferError::DigestMismatch { expected, got });
        }
    }
    if let Some(check) = end_check {
        check.run().map_err(TransferError::Unconfirmed)?;
    }
    part.commit()?;
    Ok(total)
}

/// The copy loop: returns (bytes, first ≤64 bytes, (expected, computed) digest).
#[allow(clippy::type_complexity)]
fn receive_into(
    src: &mut impl Read,
    file: &mut File,
    digest: Option<(Box<dyn StreamHasher>, String)>,
    progress: &mut dyn FnMut(u64),
) -> Result<(u64, Vec<u8>, Option<(String, String)>), TransferError> {
    let mut head = Vec::new();
    let mut total = 0u64;
    let (hash_thread, expected) = match digest {
        Some((hasher, expected)) => (Some(HashThread::start(hasher)?), Some(expected)),
        None => (None, None),
    };
    let mut own_buf = Vec::new();
    loop {
        let mut buf = match &hash_thread {
            Some(h) => h
                .free
                .recv()
                .map_err(|_| io::Error::other("the hashing thread stopped"))?,
            None => {
                if own_buf.is_empty() {
                    own_buf = vec![0u8; BUF_SIZE];
                }
                std::mem::take(&mut own_buf)
            }
        };
        let n = loop {
            match src.read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        };
        if n == 0 {
            break;
        }
        if head.len() < 64 {
            let take = (64 - head.len()).min(n);
            head.extend_from_slice(&buf[..take]);
        }
        file.write_all(&buf[..n])?;
        total += n as u64;
        progress(total);
        match &hash_thread {
            Some(h) => h
                .full
                .send((buf, n))
                .map_err(|_| io::Error::other("the hashing thread stopped"))?,
            None => own_buf = buf,
        }
    }
    let digest = match (hash_thread, expected) {
        (Some(h), Some(expected)) => Some((expected, h.finish()?)),
        _ => None,
    };
    Ok((total, head, digest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::digest::{sha256_hex, Sha256Hasher};

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn received_stream_lands_under_its_name_and_the_part_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f.bin");
        let bytes = data(3 * BUF_SIZE + 17);
        let mut seen = 0;
        let n = receive_file(
            &mut &bytes[..],
            &dest,
            Expect {
                len: Some(bytes.len() as u64),
                digest: Some((Box::<Sha256Hasher>::default(), sha256_hex(&bytes))),
                ..Expect::default()
            },
            &mut |t| seen = t,
        )
        .unwrap();
        assert_eq!(n, bytes.len() as u64);
        assert_eq!(seen, n);
        assert_eq!(std::fs::read(&dest).unwrap(), bytes);
        assert!(!part_path(&dest).exists());
    }

    #[test]
    fn digest_mismatch_keeps_the_old_file_and_removes_the_part() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        std::fs::write(&dest, b"old").unwrap();
        let err = receive_file(
            &mut &b"new bytes"[..],
            &dest,
            Expect {
                digest: Some((Box::<Sha256Hasher>::default(), sha256_hex(b"other"))),
                ..Expect::default()
            },
            &mut |_| {},
        )
        .unwrap_err();
        assert!(matches!(err, TransferError::DigestMismatch { .. }));
        assert_eq!(std::fs::read(&dest).unwrap(), b"old");
        assert!(!part_path(&dest).exists());
    }

    #[test]
    fn empty_refusal_text_and_short_streams_are_failures() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("c");
        let refuse = || Expect {
            refuse_empty: true,
            refusal_text: Some(b"CHUNK_NOT_FOUND"),
            ..Expect::default()
        };
        assert!(matches!(
            receive_file(&mut &b""[..], &dest, refuse(), &mut |_| {}),
            Err(TransferError::Empty)
        ));
        assert!(matches!(
            receive_file(&mut &b"CHUNK_NOT_FOUND"[..], &dest, refuse(), &mut |_| {}),
            Err(TransferError::Refused(_))
        ));
        let short = Expect {
            len: Some(10),
            ..Expect::default()
        };
        assert!(matches!(
            receive_file(&mut &b"12345"[..], &dest, short, &mut |_| {}),
            Err(TransferError::WrongSize {
                expected: 10,
                got: 5
            })
        ));
        assert!(!dest.exists());
        assert!(!part_path(&dest).exists());
    }

    /// Sends with `send` on one end of a loopback connection and returns what arrived.
    fn over_loopback(send: impl FnOnce(&mut TcpStream) -> io::Result<u64>) -> (u64, Vec<u8>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            got
        });
        let mut out = TcpStream::connect(addr).unwrap();
        let n = send(&mut out).unwrap();
        drop(out);
        (n, reader.join().unwrap())
    }

    #[test]
    fn send_range_clamps_to_the_file_end() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"0123456789").unwrap();
        assert_eq!(
            over_loopback(|s| send_range(s, &p, 3..7)),
            (4, b"3456".to_vec())
        );
        assert_eq!(
            over_loopback(|s| send_range(s, &p, 8..100)),
            (2, b"89".to_vec())
        );
        assert_eq!(
            over_loopback(|s| send_range(s, &p, 50..100)),
            (0, Vec::new())
        );
        assert_eq!(
            over_loopback(|s| send_file(s, &p)),
            (10, b"0123456789".to_vec())
        );
    }

    #[test]
    fn send_file_moves_a_large_file_intact() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        let bytes = data(5 * BUF_SIZE + 3);
        std::fs::write(&p, &bytes).unwrap();
        let (n, got) = over_loopback(|s| send_file(s, &p));
        assert_eq!(n, bytes.len() as u64);
        assert!(got == bytes);
    }

    #[test]
    fn an_error_mid_stream_leaves_no_part() {
        struct Broken(usize);
        impl Read for Broken {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
                }
                self.0 -= 1;
                buf[0] = 1;
                Ok(1)
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x");
        assert!(receive_file(&mut Broken(3), &dest, Expect::default(), &mut |_| {}).is_err());
        assert!(!dest.exists() && !part_path(&dest).exists());
    }

    /// The end check inside `receive_file`: a cut stream from a dead uploader leaves nothing, a
    /// whole one from a live peershare uploader lands.
    #[test]
    fn receive_file_lands_only_what_the_end_check_vouches_for() {
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        for live in [false, true] {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let mut down = TcpStream::connect(addr).unwrap();
            let (up, _) = listener.accept().unwrap();
            let bytes = data(300_000);
            let uploader = {
                let bytes = bytes.clone();
                std::thread::spawn(move || {
                    (&up).write_all(&bytes).unwrap();
                    if live {
                        finish_upload(&up, Duration::from_secs(5));
                    } else {
                        drop(listener); // the process "died": socket and listener closed
                    }
                })
            };
            let dest = dir.path().join(format!("f{live}"));
            let expect = Expect {
                end_check: Some(EndCheck::new(&down, Some(addr), Duration::from_secs(5)).unwrap()),
                ..Expect::default()
            };
            let uploader = if live {
                Some(uploader)
            } else {
                uploader.join().unwrap();
                None
            };
            let got = receive_file(&mut down, &dest, expect, &mut |_| {});
            if live {
                assert_eq!(got.unwrap(), bytes.len() as u64);
                assert_eq!(std::fs::read(&dest).unwrap(), bytes);
                drop(down);
                if let Some(u) = uploader {
                    u.join().unwrap();
                }
            } else {
                assert!(matches!(got, Err(TransferError::Unconfirmed(_))), "{got:?}");
                assert!(!dest.exists() && !part_path(&dest).exists());
            }
        }
    }
}
