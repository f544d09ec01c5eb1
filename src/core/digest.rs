//! Digests of files and streams.
//!
//! SHA-256 (sha2 crate) for chunks and whole files; other systems plug their own algorithm (xFS
//! uses MD5) into the same [`StreamHasher`] seam so `transfer` can hash while it receives.

use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// An incremental hash that `transfer::receive_file` feeds on a separate thread.
pub trait StreamHasher: Send {
    fn update(&mut self, data: &[u8]);
    /// Lower-case hex of the digest.
    fn finish_hex(self: Box<Self>) -> String;
}

/// SHA-256 as a [`StreamHasher`].
#[derive(Default)]
pub struct Sha256Hasher(Sha256);

impl StreamHasher for Sha256Hasher {
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    fn finish_hex(self: Box<Self>) -> String {
        to_hex(&self.0.finalize())
    }
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// SHA-256 hex of a byte slice.
pub fn sha256_hex(data: &[u8]) -> String {
    to_hex(&Sha256::digest(data))
}

/// Feeds the whole of `reader` to `hasher` in 1 MiB reads.
pub fn hash_reader(mut reader: impl Read, hasher: &mut dyn StreamHasher) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                hasher.update(&buf[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// SHA-256 hex of a file's contents.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut hasher = Box::new(Sha256Hasher::default());
    hash_reader(File::open(path)?, hasher.as_mut())?;
    Ok(hasher.finish_hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_abc_matches_the_standard_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn file_and_stream_digests_agree() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        assert_eq!(sha256_file(&p).unwrap(), sha256_hex(&data));
    }
}
