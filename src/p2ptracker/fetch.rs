//! Fetching one chunk (spec §3.5): connect to a holder, `REQUEST_CHUNK,<idx>` in one write, read
//! to EOF into `chunk_<idx>.part`, land it, list it. One download thread per chunk, trying its
//! holders in the schedule's order and reporting back to the tracker thread.
//!
//! The read wakes every 200 ms ([`WatchedReader`]) so a stopping client ends its downloads within
//! the runtime's stop bound (the `.part` file is then removed by `PartFile`'s `Drop`); a holder
//! silent for [`PEER_IDLE`] is given up on. After EOF the end check (`core::transfer::end`)
//! decides whether the holder really finished: a holder killed mid-chunk closes with the same
//! FIN as a finished one, and its cut chunk must never be listed or announced.

use super::client::Shared;
use super::link::trace_tcp;
use super::schedule::{Failure, Report, Start};
use super::wire::{self, Holder};
use crate::core::tcp;
use crate::core::trace::{self, Direction, Proto};
use crate::core::transfer::{self, EndCheck, Expect, TransferError, WatchedReader};
use crossbeam_channel::Sender;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A holder that sends nothing for this long has stalled (spec §3.5).
const PEER_IDLE: Duration = Duration::from_secs(30);
/// Longest wait for the end check's answer (see `core::transfer::end`).
const END_CHECK_WITHIN: Duration = Duration::from_secs(3);

/// How a holder is named in terminal output (`localhost:<port>` for Python-style holders).
pub fn peer_name(h: &Holder) -> String {
    format!("{}:{}", h.ip, h.port)
}

/// Fetches chunk `idx` from one holder into `<folder>/chunk_<idx>` (via `.part`).
fn fetch(shared: &Shared, idx: u32, holder: &Holder) -> Result<u64, (Failure, String)> {
    let refused = |e: io::Error| (Failure::Refused, e.to_string());
    let addr = tcp::resolve_host(&holder.ip, holder.port).map_err(refused)?;
    let mut stream = tcp::connect(addr, CONNECT_TIMEOUT).map_err(|e| {
        trace::failure(
            Proto::Tcp,
            None,
            Some(addr),
            &format!("connect to holder: {e}"),
        );
        refused(e)
    })?;
    let other = |e: TransferError| (Failure::Other(e.to_string()), e.to_string());
    let request = wire::encode_request_chunk(idx);
    stream
        .write_all(request.as_bytes())
        .map_err(|e| other(e.into()))?;
    trace_tcp(&stream, Direction::Send, request.as_bytes());
    shared.log.record(&[
        &shared.name,
        "REQUEST_CHUNK",
        &idx.to_string(),
        "localhost",
        &holder.port.to_string(),
    ]);
    let dest = shared.folder.join(format!("chunk_{idx}"));
    let ends = trace::enabled().then(|| (stream.local_addr().ok(), stream.peer_addr().ok()));
    let what = format!("chunk {idx}");
    if let Some((local, remote)) = ends {
        trace::transfer_begin(Proto::Tcp, local, remote, &what, None);
    }
    let mut src = WatchedReader::new(
        &stream,
        &shared.shutdown,
        PEER_IDLE,
        "the client is stopping",
    )
    .map_err(|e| other(e.into()))?;
    // EOF alone does not prove the holder sent the whole chunk (it may have been killed): a chunk
    // is landed, listed and announced only when the end check vouches for it (issue 14).
    let end_check =
        EndCheck::new(&stream, Some(addr), END_CHECK_WITHIN).map_err(|e| other(e.into()))?;
    let mut moved = 0;
    let received = transfer::receive_file(
        &mut src,
        &dest,
        Expect {
            refuse_empty: true,
            refusal_text: Some(wire::CHUNK_NOT_FOUND),
            end_check: Some(end_check),
            ..Expect::default()
        },
        &mut |n| moved = n,
    );
    if let Some((local, remote)) = ends {
        let error = received.as_ref().err().map(ToString::to_string);
        trace::transfer_end(Proto::Tcp, local, remote, &what, moved, error.as_deref());
    }
    received.map_err(other)
}

/// Tries the holders of `start` in order until one delivers; lands the chunk and reports.
pub fn download(shared: Arc<Shared>, start: Start, done: Sender<Report>) {
    let mut report = Report {
        idx: start.idx,
        first: start.holders[0].clone(),
        failures: Vec::new(),
        delivered: None,
    };
    let idx = start.idx;
    for h in start.holders {
        if shared.shutdown.is_triggered() {
            break;
        }
        match fetch(&shared, idx, &h) {
            Ok(n) => match shared.land(idx) {
                Ok(()) => {
                    shared.say(&format!(
                        "chunk {idx} received from {} ({n} bytes)",
                        peer_name(&h)
                    ));
                    report.delivered = Some((h, n));
                    break;
                }
                Err(e) => {
                    shared.warn(&format!("chunk {idx}: cannot update the chunk list: {e}"));
                    break;
                }
            },
            Err((why, text)) => {
                log::debug!("chunk {idx} from {}: {text}", peer_name(&h));
                report.failures.push((h, why));
            }
        }
    }
    let _ = done.send(report);
}
