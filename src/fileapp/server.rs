//! The FileApp server: one thread receives every datagram and owns the [`ServerState`].
//!
//! The receive loop ticks every few milliseconds so per-client table retransmits go out on time
//! while other clients are served in between — the original blocked up to 1.5 s per registration.

use super::state::{AckRetry, Action, Input, ServerState};
use crate::core::shutdown::Shutdown;
use crate::core::trace;
use crate::core::udp_rpc::{receive_loop, trace_datagram, Received};
use std::io::{self, Write};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// How often the loop checks the retransmit deadlines.
const TICK: Duration = Duration::from_millis(20);

/// Server settings (the spec's timing by default).
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerConfig {
    pub retry: AckRetry,
}

/// Serves on `socket` until `shutdown` fires.
pub fn run(config: ServerConfig, socket: UdpSocket, shutdown: &Shutdown) -> io::Result<()> {
    let mut state = ServerState::new(config.retry);
    receive_loop(&socket, shutdown, TICK, |got| {
        let input = match &got {
            Received::Datagram(d) => {
                trace_datagram(trace::Direction::Recv, &socket, d.from, &d.bytes);
                Input::Datagram {
                    from: d.from,
                    bytes: &d.bytes,
                }
            }
            Received::Tick => Input::Tick,
        };
        for action in state.handle(input, Instant::now()) {
            perform(&socket, action);
        }
    })
}

fn perform(socket: &UdpSocket, action: Action) {
    match action {
        Action::Send { to, bytes } => {
            trace_datagram(trace::Direction::Send, socket, to, &bytes);
            if let Err(e) = socket.send_to(&bytes, to) {
                log::warn!("could not send {} bytes to {to}: {e}", bytes.len());
            }
        }
        Action::Print(line) => {
            let mut out = io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        Action::Warn(text) => log::warn!("{text}"),
        Action::Debug(text) => log::debug!("{text}"),
    }
}
