//! One peer connection: handshake, then a reader thread (this one) that parses messages and
//! decides what to request, and a `bt-write` thread that sends messages and serves blocks.
//!
//! Two threads per connection so that reading never waits on writing: two peers that upload to
//! each other at once would otherwise both block in `write` with full socket buffers. Anything a
//! peer gets wrong — wrong info-hash, a bitfield of the wrong size or not first, a request past
//! the piece's end or above [`MAX_REQUEST`], a message above the frame limit, a `have` or
//! `piece` for a piece that does not exist — is logged in one line and closes that connection
//! only. We unchoke every interested peer (no tit-for-tat: a course swarm has no free riders to
//! punish) and keep up to [`PIPELINE`] block requests in flight per peer.

use super::client::{Control, Engine, Link};
use super::metainfo::sha1;
use super::wire::{self, Bitfield, Framer, Handshake, Message, BLOCK, HANDSHAKE_LEN, MAX_REQUEST};
use crate::core::digest::to_hex;
use crate::core::timed_out;
use crate::core::trace::{self, Body, Direction, Proto};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::{Shutdown as NetShutdown, SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Block requests in flight per peer.
pub const PIPELINE: usize = 64;
/// A peer silent this long is dropped (BEP 3 peers send keep-alives every 2 minutes).
const IDLE: Duration = Duration::from_secs(180);

/// What the writer thread is asked to send.
pub enum Out {
    Msg(Message),
    /// Serve this block (unless the peer cancels it first).
    Block {
        index: u32,
        begin: u32,
        length: u32,
    },
}

type Cancelled = Arc<Mutex<HashSet<(u32, u32, u32)>>>;

/// A piece being fetched from this peer.
struct Fetch {
    index: usize,
    buf: Vec<u8>,
    /// Next block offset not yet requested.
    next: u64,
    /// Requested, not yet received block offsets.
    pending: HashSet<u64>,
    received: u64,
}

/// This connection's two ends, for `--trace` lines (looked up only when tracing is on).
#[derive(Clone, Copy)]
struct Ends {
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
}

impl Ends {
    fn of(s: &TcpStream) -> Ends {
        if !trace::enabled() {
            return Ends {
                local: None,
                remote: None,
            };
        }
        Ends {
            local: s.local_addr().ok(),
            remote: s.peer_addr().ok(),
        }
    }

    /// Records one peer-wire message; `what` is built only when tracing is on.
    fn message(self, dir: Direction, what: impl FnOnce() -> String, size: usize) {
        if trace::enabled() {
            let what = what();
            trace::message(
                dir,
                Proto::Tcp,
                self.local,
                self.remote,
                Body::Summary(&what),
                size,
            );
        }
    }
}

/// Runs one connection to the end; `dialed` is the address we dialed (None when accepted).
pub fn run(e: &Arc<Engine>, mut stream: TcpStream, addr: SocketAddr, dialed: Option<SocketAddr>) {
    let _ = stream.set_nodelay(true);
    let hs = match handshake(e, &mut stream, dialed.is_some()) {
        Ok(h) => h,
        Err(err) => {
            log::info!("closed {addr}: {err}");
            dial_ended(e, dialed, false);
            return;
        }
    };
    let (wtx, wrx) = crossbeam_channel::unbounded::<Out>();
    let (ctx, crx) = crossbeam_channel::unbounded::<Control>();
    let link = Link {
        peer_id: hs.peer_id,
        addr: dialed.unwrap_or(addr),
        writer: wtx.clone(),
        control: ctx,
    };
    let Some(conn) = e.add_link(link) else {
        log::debug!("closed {addr}: already connected to that peer (or ourselves)");
        dial_ended(e, dialed, hs.peer_id == e.peer_id);
        return;
    };
    log::info!(
        "connected to {addr} ({})",
        String::from_utf8_lossy(&hs.peer_id[..8])
    );
    let cancelled: Cancelled = Arc::default();
    let writer = stream.try_clone().and_then(|ws| {
        let (e2, c) = (e.clone(), cancelled.clone());
        e.rt.spawn_owned("write", move || write_loop(&e2, ws, wrx, &c))
    });
    let writer = match writer {
        Ok(w) => w,
        Err(err) => {
            log::warn!("cannot start a writer for {addr}: {err}");
            e.remove_link(conn, None, &[]);
            return;
        }
    };
    let have = e.have();
    if have.count() > 0 {
        let _ = wtx.send(Out::Msg(Message::Bitfield(have.as_bytes().to_vec())));
    }
    let mut r = Reader::new(e, addr, hs.peer_id, wtx, crx, cancelled);
    let why = r.read_loop(&mut stream);
    log::info!("closed {addr}: {why}");
    // Forget the link before the peer sees the close: a peer that reconnects at once (same
    // peer id) must not be refused as "already connected".
    let fetching: Vec<usize> = r.fetches.iter().map(|f| f.index).collect();
    e.remove_link(conn, r.bits.as_ref(), &fetching);
    let _ = stream.shutdown(NetShutdown::Both);
    drop(r);
    let _ = writer.join();
}

/// A dial to `dialed` is over without a link: it may be dialed again, unless it was ourselves.
fn dial_ended(e: &Engine, dialed: Option<SocketAddr>, was_us: bool) {
    if let (Some(d), Ok(mut s)) = (dialed, e.lock()) {
        s.dialing.remove(&d);
        if was_us {
            s.skip.insert(d);
        }
    }
}

fn handshake(e: &Engine, s: &mut TcpStream, we_dialed: bool) -> io::Result<Handshake> {
    let ours = wire::encode_handshake(&Handshake {
        reserved: [0; 8],
        info_hash: e.meta.info_hash,
        peer_id: e.peer_id,
    });
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    let ends = Ends::of(s);
    let sent = |s: &mut TcpStream| -> io::Result<()> {
        s.write_all(&ours)?;
        ends.message(
            Direction::Send,
            || format!("handshake {}", to_hex(&e.meta.info_hash)),
            HANDSHAKE_LEN,
        );
        Ok(())
    };
    if we_dialed {
        sent(s)?;
    }
    let mut theirs = [0u8; HANDSHAKE_LEN];
    s.read_exact(&mut theirs)?;
    let h = wire::parse_handshake(&theirs)
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
    ends.message(
        Direction::Recv,
        || wire::handshake_summary(&h),
        HANDSHAKE_LEN,
    );
    if h.info_hash != e.meta.info_hash {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the handshake names info-hash {}, not ours",
                to_hex(&h.info_hash)
            ),
        ));
    }
    if !we_dialed {
        sent(s)?;
    }
    Ok(h)
}

fn write_loop(e: &Engine, mut s: TcpStream, rx: Receiver<Out>, cancelled: &Cancelled) {
    let _ = s.set_write_timeout(Some(Duration::from_secs(60)));
    let ends = Ends::of(&s);
    loop {
        let out = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(o) => o,
            Err(RecvTimeoutError::Timeout) => Out::Msg(Message::KeepAlive),
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let bytes = match out {
            Out::Msg(m) => {
                let bytes = wire::encode(&m);
                ends.message(Direction::Send, || wire::summary(&m), bytes.len());
                bytes
            }
            Out::Block {
                index,
                begin,
                length,
            } => {
                if cancelled
                    .lock()
                    .is_ok_and(|mut c| c.remove(&(index, begin, length)))
                {
                    continue;
                }
                // One buffer, header then block, so each block is one write(2).
                let mut b = vec![0u8; 13 + length as usize];
                b[..13].copy_from_slice(&wire::piece_header(index, begin, length as usize));
                if let Err(err) = e
                    .storage
                    .read_into(index as usize, begin as u64, &mut b[13..])
                {
                    log::warn!("cannot read piece {index}: {err}");
                    break;
                }
                e.uploaded.fetch_add(length as u64, Ordering::Relaxed);
                ends.message(
                    Direction::Send,
                    || format!("piece {index} at {begin}: {length} bytes"),
                    b.len(),
                );
                b
            }
        };
        if s.write_all(&bytes).is_err() {
            break;
        }
    }
    let _ = s.shutdown(NetShutdown::Both);
}

struct Reader {
    e: Arc<Engine>,
    addr: SocketAddr,
    peer_id: [u8; 20],
    out: crossbeam_channel::Sender<Out>,
    control: Receiver<Control>,
    cancelled: Cancelled,
    bits: Option<Bitfield>,
    choked: bool,
    interested: bool,
    fetches: Vec<Fetch>,
    ends: Ends,
}

impl Reader {
    /// A reader for a peer we have just shaken hands with: choked, not interested, no
    /// bitfield yet.
    fn new(
        e: &Arc<Engine>,
        addr: SocketAddr,
        peer_id: [u8; 20],
        out: crossbeam_channel::Sender<Out>,
        control: Receiver<Control>,
        cancelled: Cancelled,
    ) -> Reader {
        Reader {
            e: e.clone(),
            addr,
            peer_id,
            out,
            control,
            cancelled,
            bits: None,
            choked: true,
            interested: false,
            fetches: Vec::new(),
            ends: Ends {
                local: None,
                remote: None,
            },
        }
    }

    fn n(&self) -> usize {
        self.e.meta.piece_count()
    }

    fn send(&self, m: Message) {
        let _ = self.out.send(Out::Msg(m));
    }

    /// Reads until the peer leaves, breaks a rule, or we stop; returns why.
    fn read_loop(&mut self, s: &mut TcpStream) -> String {
        let max_frame = (MAX_REQUEST as usize + 13).max(self.n().div_ceil(8) + 1);
        let mut framer = Framer::new(max_frame);
        let mut buf = vec![0u8; 256 * 1024];
        if s.set_read_timeout(Some(Duration::from_millis(100)))
            .is_err()
        {
            return "cannot set a read timeout".into();
        }
        let mut last_heard = Instant::now();
        self.ends = Ends::of(s);
        loop {
            if self.e.shutdown.is_triggered() {
                return "shutting down".into();
            }
            match s.read(&mut buf) {
                Ok(0) => return "the peer closed the connection".into(),
                Ok(n) => {
                    last_heard = Instant::now();
                    framer.push(&buf[..n]);
                }
                Err(err) if timed_out(&err) => {}
                Err(err) => return format!("read failed: {err}"),
            }
            if let Err(why) = self.handle_framed(&mut framer) {
                return why;
            }
            while let Ok(c) = self.control.try_recv() {
                match c {
                    Control::PieceDone(i) => self.drop_fetch(i),
                }
            }
            if last_heard.elapsed() > IDLE {
                return "the peer was silent too long".into();
            }
            if self.both_seeds() {
                return "both sides are seeds".into();
            }
            self.update_interest();
            self.fill_requests();
        }
    }

    /// Handles every whole message the framer holds; why to close, if one breaks a rule.
    fn handle_framed(&mut self, framer: &mut Framer) -> Result<(), String> {
        while let Some(body) = framer
            .next_body()
            .map_err(|err| format!("refused a message: {err}"))?
        {
            let m = wire::parse(&body).map_err(|err| format!("refused a message: {err}"))?;
            self.ends
                .message(Direction::Recv, || wire::summary(&m), body.len() + 4);
            self.handle(m)?;
        }
        Ok(())
    }

    /// Whether we and the peer both have everything; then the peer's address is skipped from
    /// now on, since neither side can give the other anything.
    fn both_seeds(&self) -> bool {
        if !(self.e.is_complete() && self.bits.as_ref().is_some_and(Bitfield::is_full)) {
            return false;
        }
        if let Ok(mut st) = self.e.lock() {
            if let Some(a) = st
                .links
                .values()
                .find(|l| l.peer_id == self.peer_id)
                .map(|l| l.addr)
            {
                st.skip.insert(a);
            }
        }
        true
    }

    fn handle(&mut self, m: Message) -> Result<(), String> {
        let n = self.n();
        if !matches!(m, Message::Piece { .. }) {
            log::trace!("{} sent {m:?}", self.addr);
        }
        match m {
            Message::KeepAlive
            | Message::Port(_)
            | Message::Unknown(_)
            | Message::NotInterested => {}
            Message::Choke => self.on_choke(),
            Message::Unchoke => self.choked = false,
            Message::Interested => self.send(Message::Unchoke),
            Message::Have(i) => self.on_have(i as usize)?,
            Message::Bitfield(raw) => self.on_bitfield(&raw)?,
            Message::Request {
                index,
                begin,
                length,
            } => self.on_request(index, begin, length)?,
            Message::Cancel {
                index,
                begin,
                length,
            } => {
                if let Ok(mut c) = self.cancelled.lock() {
                    if c.len() < 4096 {
                        c.insert((index, begin, length));
                    }
                }
            }
            Message::Piece { index, begin, data } => {
                if index as usize >= n {
                    return Err(format!("the peer sent piece {index} of {n}"));
                }
                self.receive_block(index as usize, begin as u64, data)?;
            }
        }
        Ok(())
    }

    /// Choked: every piece we were fetching from this peer goes back to the picker.
    fn on_choke(&mut self) {
        self.choked = true;
        let dropped: Vec<usize> = self.fetches.drain(..).map(|f| f.index).collect();
        if let Ok(mut s) = self.e.lock() {
            for i in dropped {
                s.picker.release(i);
            }
        }
    }

    fn on_have(&mut self, i: usize) -> Result<(), String> {
        let n = self.n();
        if i >= n {
            return Err(format!("the peer announced piece {i} of {n}"));
        }
        let bits = self.bits.get_or_insert_with(|| Bitfield::new(n));
        if !bits.has(i) {
            bits.set(i);
            if let Ok(mut s) = self.e.lock() {
                s.picker.peer_has(i);
            }
        }
        Ok(())
    }

    /// BEP 3 puts the bitfield right after the handshake, but aria2 sends it late and sends it
    /// again as it gets pieces: a later bitfield replaces the earlier one.
    fn on_bitfield(&mut self, raw: &[u8]) -> Result<(), String> {
        let n = self.n();
        let bits = Bitfield::from_wire(raw, n).ok_or_else(|| {
            format!(
                "the peer's bitfield is {} bytes (or has spare bits set); {n} pieces need {}",
                raw.len(),
                n.div_ceil(8)
            )
        })?;
        if let Ok(mut s) = self.e.lock() {
            if let Some(old) = &self.bits {
                s.picker.remove_peer(old);
            }
            s.picker.add_peer(&bits);
        }
        self.bits = Some(bits);
        Ok(())
    }

    /// A request within a piece we have is queued for the writer; anything else ends the link.
    fn on_request(&mut self, index: u32, begin: u32, length: u32) -> Result<(), String> {
        let (i, n) = (index as usize, self.n());
        if i >= n {
            return Err(format!("the peer requested piece {index} of {n}"));
        }
        let size = self.e.meta.piece_size(i);
        if length == 0 || length > MAX_REQUEST || begin as u64 + length as u64 > size {
            return Err(format!(
                "the peer requested {length} bytes at {begin} of piece {index}, which holds {size}"
            ));
        }
        if !self.e.have().has(i) {
            return Err(format!(
                "the peer requested piece {index}, which we do not have"
            ));
        }
        let _ = self.out.send(Out::Block {
            index,
            begin,
            length,
        });
        Ok(())
    }

    fn receive_block(&mut self, index: usize, begin: u64, data: Vec<u8>) -> Result<(), String> {
        let Some(pos) = self
            .fetches
            .iter()
            .position(|f| f.index == index && f.pending.contains(&begin))
        else {
            return Ok(()); // cancelled or duplicate: ignore
        };
        let f = &mut self.fetches[pos];
        if begin + data.len() as u64 > f.buf.len() as u64
            || data.len() as u64 != block_len(f.buf.len() as u64, begin)
        {
            return Err(format!(
                "the peer sent {} bytes at {begin} of piece {index}",
                data.len()
            ));
        }
        f.pending.remove(&begin);
        f.buf[begin as usize..begin as usize + data.len()].copy_from_slice(&data);
        f.received += data.len() as u64;
        if f.received < f.buf.len() as u64 {
            return Ok(());
        }
        let f = self.fetches.remove(pos);
        let good = sha1(&f.buf) == self.e.meta.pieces[index];
        if trace::enabled() {
            let what = format!("piece {index}");
            let error = (!good).then_some("failed its SHA-1 check");
            let (l, r, n) = (self.ends.local, self.ends.remote, f.buf.len() as u64);
            trace::transfer_end(Proto::Tcp, l, r, &what, n, error);
        }
        if good {
            if let Err(err) = self.e.piece_verified(index, &f.buf) {
                log::error!("cannot write piece {index}: {err}");
                self.e.piece_failed(index, [0; 20]);
                self.e.shutdown.trigger();
            }
        } else {
            log::warn!(
                "piece {index} from {} failed its SHA-1 check; fetching it from another peer",
                self.addr
            );
            self.e.piece_failed(index, self.peer_id);
        }
        Ok(())
    }

    fn drop_fetch(&mut self, index: usize) {
        if let Some(pos) = self.fetches.iter().position(|f| f.index == index) {
            let f = self.fetches.remove(pos);
            for begin in f.pending {
                let length = block_len(f.buf.len() as u64, begin) as u32;
                self.send(Message::Cancel {
                    index: index as u32,
                    begin: begin as u32,
                    length,
                });
            }
        }
    }

    fn update_interest(&mut self) {
        let want = match &self.bits {
            Some(bits) => {
                let have = self.e.have();
                (0..self.n()).any(|i| bits.has(i) && !have.has(i))
            }
            None => false,
        };
        if want != self.interested {
            self.interested = want;
            self.send(if want {
                Message::Interested
            } else {
                Message::NotInterested
            });
        }
    }

    fn fill_requests(&mut self) {
        if self.choked || !self.interested {
            return;
        }
        let Some(bits) = self.bits.clone() else {
            return;
        };
        let mut pending: usize = self.fetches.iter().map(|f| f.pending.len()).sum();
        while pending < PIPELINE {
            let f = match self
                .fetches
                .iter_mut()
                .find(|f| f.next < f.buf.len() as u64)
            {
                Some(f) => f,
                None => {
                    let fetching: Vec<usize> = self.fetches.iter().map(|f| f.index).collect();
                    let Some(i) = self.e.pick(&bits, &fetching, &self.peer_id) else {
                        return;
                    };
                    let size = self.e.meta.piece_size(i) as usize;
                    if trace::enabled() {
                        let what = format!("piece {i}");
                        let (l, r) = (self.ends.local, self.ends.remote);
                        trace::transfer_begin(Proto::Tcp, l, r, &what, Some(size as u64));
                    }
                    self.fetches.push(Fetch {
                        index: i,
                        buf: vec![0; size],
                        next: 0,
                        pending: HashSet::new(),
                        received: 0,
                    });
                    self.fetches.last_mut().expect("just pushed")
                }
            };
            let begin = f.next;
            let length = block_len(f.buf.len() as u64, begin);
            f.next += length;
            f.pending.insert(begin);
            let index = f.index as u32;
            let _ = self.out.send(Out::Msg(Message::Request {
                index,
                begin: begin as u32,
                length: length as u32,
            }));
            pending += 1;
        }
    }
}

/// Length of the block at `begin` of a piece of `size` bytes.
fn block_len(size: u64, begin: u64) -> u64 {
    size.saturating_sub(begin).min(BLOCK as u64)
}
