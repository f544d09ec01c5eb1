//! The machine's transfer limit for "a file on one side of a loopback TCP connection, the same
//! bytes in a durable file on the other": the best plain program we can write for that job,
//! measured in the same run as the scenarios it judges.
//!
//! Sender: `sendfile(2)` from the file into the socket (no copy through user space). Receiver:
//! either large `read(2)`s (1 MiB) written straight into the file, or `splice(2)` socket → pipe →
//! file (no user-space copy at all). Both end with `fdatasync`, as every peershare download does.
//! [`limit_rate`] tries both and keeps the faster, naming it.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// How the receiving side moves bytes from the socket into the file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Receiver {
    /// 1 MiB `read`s into a buffer, `write_all` into the file.
    LargeReads,
    /// `splice` socket → pipe (1 MiB) → file.
    Splice,
}

impl Receiver {
    pub fn label(self) -> &'static str {
        match self {
            Receiver::LargeReads => "sendfile → loopback TCP → 1 MiB reads → file",
            Receiver::Splice => "sendfile → loopback TCP → splice → file",
        }
    }
}

fn sendfile_all(sock: &TcpStream, src: &Path) -> io::Result<u64> {
    let file = File::open(src)?;
    let len = file.metadata()?.len();
    let mut offset = 0u64;
    while offset < len {
        let chunk = (len - offset).min(1 << 30) as usize;
        let n = rustix::fs::sendfile(sock, &file, Some(&mut offset), chunk)?;
        if n == 0 {
            break;
        }
    }
    Ok(offset)
}

fn receive_reads(mut sock: TcpStream, out: &mut File) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = sock.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        out.write_all(&buf[..n])?;
        total += n as u64;
    }
}

fn receive_splice(sock: TcpStream, out: &mut File) -> io::Result<u64> {
    use rustix::pipe::{fcntl_setpipe_size, pipe, splice, SpliceFlags};
    let (pipe_out, pipe_in) = pipe()?;
    let _ = fcntl_setpipe_size(&pipe_in, 1 << 20);
    let mut total = 0u64;
    loop {
        let n = splice(&sock, None, &pipe_in, None, 1 << 20, SpliceFlags::MOVE)?;
        if n == 0 {
            return Ok(total);
        }
        let mut left = n;
        while left > 0 {
            let m = splice(&pipe_out, None, &*out, None, left, SpliceFlags::MOVE)?;
            if m == 0 {
                return Err(io::Error::other("splice into the file wrote nothing"));
            }
            left -= m;
        }
        total += n as u64;
    }
}

/// One transfer of `src` into `dest` the `how` way; the time from connect to fdatasync done.
pub fn limit_copy(src: &Path, dest: &Path, how: Receiver) -> io::Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let src_path = src.to_path_buf();
    let start = Instant::now();
    let sender = std::thread::spawn(move || -> io::Result<u64> {
        let (sock, _) = listener.accept()?;
        sendfile_all(&sock, &src_path)
    });
    let sock = TcpStream::connect(addr)?;
    let mut out = File::create(dest)?;
    let got = match how {
        Receiver::LargeReads => receive_reads(sock, &mut out)?,
        Receiver::Splice => receive_splice(sock, &mut out)?,
    };
    out.sync_data()?;
    let elapsed = start.elapsed();
    let sent = sender
        .join()
        .map_err(|_| io::Error::other("limit sender panicked"))??;
    if got != sent || got != std::fs::metadata(src)?.len() {
        return Err(io::Error::other(format!(
            "limit transfer moved {got} of {sent} bytes"
        )));
    }
    Ok(elapsed)
}
