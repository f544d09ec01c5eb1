//! The client's chunk server (spec §3.5, server side): one read of at most 1,024 bytes,
//! `REQUEST_CHUNK,<idx>` for a chunk we hold, the raw bytes, close. Anything else is closed
//! without data.

use super::client::Shared;
use super::link::trace_tcp;
use super::wire;
use crate::core::tcp::RequestFirst;
use crate::core::trace::{self, Body, Direction, Proto};
use crate::core::transfer;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long a connection may take to send its request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How the chunk server's connections are taken in: the request (one read of at most 1,024
/// bytes, spec §3.5) is read on the accept thread, so 20 connections that send nothing cannot
/// hold the 5 upload workers while a good request waits (issue 14); at most 64 wait at once.
pub fn request_first() -> RequestFirst {
    RequestFirst {
        workers: crate::core::pool::UPLOAD_WORKERS,
        max_request: 1024,
        deadline: REQUEST_TIMEOUT,
        max_waiting: 64,
    }
}

/// Serves one peer connection whose request has been read (empty: none came in time).
pub fn serve_peer(stream: TcpStream, peer: SocketAddr, request: Vec<u8>, shared: &Shared) {
    if request.is_empty() {
        log::debug!("peer {peer}: no request");
        return;
    }
    trace_tcp(&stream, Direction::Recv, &request);
    let Some(idx) = wire::parse_request_chunk(&request) else {
        log::info!(
            "peer {peer}: malformed request {:?}",
            String::from_utf8_lossy(&request)
        );
        return;
    };
    let Some(path) = shared.holds(idx) else {
        log::info!("peer {peer}: asked for chunk {idx}, which we do not hold");
        return;
    };
    shared.uploads.fetch_add(1, Ordering::SeqCst);
    // Half-close after the last byte and wait for the downloader's close, or reset on failure,
    // so a peershare downloader can tell this from a holder killed mid-chunk (issue 14).
    let local = stream.local_addr().ok();
    match transfer::upload_file(stream, &path, transfer::FINISH_WAIT) {
        Ok(n) => {
            shared.bytes_served.fetch_add(n, Ordering::Relaxed);
            if trace::enabled() {
                let summary = format!("chunk {idx}: {n} bytes");
                let body = Body::Summary(&summary);
                trace::message(
                    Direction::Send,
                    Proto::Tcp,
                    local,
                    Some(peer),
                    body,
                    n as usize,
                );
            }
        }
        Err(e) => log::info!("peer {peer}: sending chunk {idx} failed: {e}"),
    }
    shared.uploads.fetch_sub(1, Ordering::SeqCst);
}
