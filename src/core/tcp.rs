//! TCP plumbing every system shares: address parsing, connecting with a deadline, the one-read
//! request that every peer protocol here starts with, and a listener whose connections go to a
//! [`WorkerPool`].
//!
//! The listener thread blocks in `accept`; stopping it connects to the listener once so the
//! blocked call returns (tiny_http's "unblock"), which keeps shutdown prompt without polling.

use crate::core::pool::WorkerPool;
use crate::core::runtime::Runtime;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// `localhost` (what Python peers announce) or an IP literal; anything else goes to the resolver.
pub fn resolve_host(host: &str, port: u16) -> io::Result<SocketAddr> {
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("unknown host {host}")))
}

/// Parses `host:port` with [`resolve_host`] (`localhost:5100`, `127.0.0.1:0`).
pub fn parse_host_port(text: &str) -> io::Result<SocketAddr> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not host:port: {text}"),
        )
    };
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse::<u16>().map_err(|_| bad())?;
    resolve_host(host.trim_start_matches('[').trim_end_matches(']'), port)
}

/// Connects with a deadline and turns on TCP_NODELAY (requests are single small writes).
pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// One `read` of at most `max` bytes within `timeout`: how every peer protocol here receives its
/// request line (the originals all do a single `recv(N)`). Returns the bytes read (maybe empty).
pub fn read_once(stream: &mut TcpStream, max: usize, timeout: Duration) -> io::Result<Vec<u8>> {
    stream.set_read_timeout(Some(timeout))?;
    let mut buf = vec![0u8; max];
    let n = loop {
        match stream.read(&mut buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    buf.truncate(n);
    Ok(buf)
}

/// Binds a TCP listener (std sets SO_REUSEADDR on Unix) and logs where it listens.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    log::info!("listening on {}", listener.local_addr()?);
    Ok(listener)
}

/// How accepted connections are served.
pub enum Dispatch {
    /// A fixed pool of this many workers (peer upload listeners: a 6th connection waits).
    Pool(usize),
    /// A thread per connection (trackers, whose clients hold their connection for the whole run).
    ThreadPerConnection,
}

/// A listener thread handing each accepted connection to a worker pool or its own thread.
/// Dropping it (or calling [`TcpService::stop`]) stops accepting, then waits for pool jobs to end.
pub struct TcpService {
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TcpService {
    /// Starts accepting on `listener`; `handle` runs on one of `workers` pool threads per connection.
    pub fn start<H>(
        rt: &Runtime,
        listener: TcpListener,
        name: &str,
        workers: usize,
        handle: H,
    ) -> io::Result<TcpService>
    where
        H: Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
    {
        Self::start_with(rt, listener, name, Dispatch::Pool(workers), handle)
    }

    /// Starts accepting on `listener`, serving each connection as `dispatch` says. Threads are
    /// `<system>-{name}-accept`, `<system>-{name}-{i}` (pool) or `<system>-{name}-{peer}`.
    pub fn start_with<H>(
        rt: &Runtime,
        listener: TcpListener,
        name: &str,
        dispatch: Dispatch,
        handle: H,
    ) -> io::Result<TcpService>
    where
        H: Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
    {
        let addr = listener.local_addr()?;
        let stopping = Arc::new(AtomicBool::new(false));
        let pool = match dispatch {
            Dispatch::Pool(workers) => Some(WorkerPool::new(rt, name, workers)?),
            Dispatch::ThreadPerConnection => None,
        };
        let handle = Arc::new(handle);
        let stop = stopping.clone();
        let (conn_rt, name_owned) = (rt.clone(), name.to_string());
        let thread = rt.spawn_owned(&format!("{name}-accept"), move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                match conn {
                    Ok(stream) => {
                        let peer = stream
                            .peer_addr()
                            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
                        let h = handle.clone();
                        let job = move || h(stream, peer);
                        match &pool {
                            Some(pool) => {
                                if pool.execute(job).is_err() {
                                    break;
                                }
                            }
                            None => {
                                let job_name = format!("{name_owned}-{peer}");
                                if let Err(e) = conn_rt.spawn_small(&job_name, job) {
                                    log::warn!("cannot start a connection thread: {e}");
                                }
                            }
                        }
                    }
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        log::warn!("accept failed: {e}");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
            drop(listener);
            drop(pool);
        })?;
        Ok(TcpService {
            addr,
            stopping,
            thread: Some(thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting (the port is released once running jobs end).
    pub fn stop(&mut self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TcpService {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn service_answers_connections_and_stops_promptly() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let rt = Runtime::new("t", "t", &crate::core::shutdown::Shutdown::new());
        let mut svc = TcpService::start(&rt, listener, "t", 2, |mut s, _| {
            let req = read_once(&mut s, 16, Duration::from_secs(1)).unwrap();
            s.write_all(&req).unwrap();
        })
        .unwrap();
        let mut c = connect(svc.local_addr(), Duration::from_secs(1)).unwrap();
        c.write_all(b"ping").unwrap();
        let mut back = String::new();
        c.read_to_string(&mut back).unwrap();
        assert_eq!(back, "ping");
        let addr = svc.local_addr();
        svc.stop();
        assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err());
    }

    #[test]
    fn host_parsing_maps_localhost_to_ipv4() {
        assert_eq!(
            parse_host_port("localhost:5100").unwrap(),
            "127.0.0.1:5100".parse().unwrap()
        );
        assert!(parse_host_port("nope").is_err());
        assert!(parse_host_port("1.2.3.4:99999").is_err());
    }
}
