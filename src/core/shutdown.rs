//! A process-wide "stop now" signal that every thread can wait on.
//!
//! Blocking sockets cannot be cancelled, so every loop in peershare polls with a timeout and checks
//! this flag; waits that would otherwise sleep use [`Shutdown::sleep`] so they end at once when the
//! signal fires. The signal is a crossbeam channel whose only sender is dropped on trigger: every
//! clone of the receiver then sees "disconnected", which also works inside `select!`.

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

struct Inner {
    fired: AtomicBool,
    sender: Mutex<Option<Sender<()>>>,
    /// Signals that fire when this one fires (a role's own stop inside a process-wide one).
    children: Mutex<Vec<Weak<Inner>>>,
}

impl Inner {
    fn trigger(&self) {
        self.fired.store(true, Ordering::SeqCst);
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        let children = match self.children.lock() {
            Ok(mut children) => std::mem::take(&mut *children),
            Err(_) => Vec::new(),
        };
        for child in children.iter().filter_map(Weak::upgrade) {
            child.trigger();
        }
    }
}

/// Cloneable handle to one shutdown signal.
#[derive(Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
    receiver: Receiver<()>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        let (sender, receiver) = crossbeam_channel::bounded(0);
        Shutdown {
            inner: Arc::new(Inner {
                fired: AtomicBool::new(false),
                sender: Mutex::new(Some(sender)),
                children: Mutex::new(Vec::new()),
            }),
            receiver,
        }
    }

    /// A new signal that fires when this one fires, and can also fire on its own without
    /// touching this one: one role of a process (a demo client that is done) stops while the
    /// others go on, and Ctrl-C still stops them all.
    pub fn child(&self) -> Shutdown {
        let child = Shutdown::new();
        if let Ok(mut children) = self.inner.children.lock() {
            children.retain(|c| c.strong_count() > 0);
            children.push(Arc::downgrade(&child.inner));
        }
        // Fired before (or while) we registered: the child must not miss it.
        if self.is_triggered() {
            child.trigger();
        }
        child
    }

    /// Fires the signal (and every child's); idempotent.
    pub fn trigger(&self) {
        self.inner.trigger();
    }

    pub fn is_triggered(&self) -> bool {
        self.inner.fired.load(Ordering::SeqCst)
    }

    /// Sleeps for `period` or until the signal fires; returns `true` if it fired.
    pub fn sleep(&self, period: Duration) -> bool {
        match self.receiver.recv_timeout(period) {
            Err(RecvTimeoutError::Timeout) => self.is_triggered(),
            _ => true,
        }
    }

    /// A receiver that becomes ready (disconnected) when the signal fires, for `select!`.
    pub fn receiver(&self) -> &Receiver<()> {
        &self.receiver
    }

    /// Fires this signal on Ctrl-C (SIGINT/SIGTERM). Only one handler can exist per process; a
    /// second call is harmless and returns an error that callers may ignore.
    pub fn trigger_on_ctrl_c(&self) -> Result<(), ctrlc::Error> {
        let me = self.clone();
        ctrlc::set_handler(move || me.trigger())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn sleep_ends_early_when_triggered_from_another_thread() {
        let s = Shutdown::new();
        let t = s.clone();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            t.trigger();
        });
        let start = Instant::now();
        assert!(s.sleep(Duration::from_secs(10)));
        assert!(start.elapsed() < Duration::from_secs(5));
        h.join().unwrap();
        assert!(s.is_triggered());
    }

    #[test]
    fn a_child_fires_with_its_parent_but_not_the_other_way() {
        let parent = Shutdown::new();
        let (a, b) = (parent.child(), parent.child());
        a.trigger();
        assert!(a.is_triggered() && !parent.is_triggered() && !b.is_triggered());
        parent.trigger();
        assert!(b.is_triggered() && b.sleep(Duration::from_secs(10)));
        assert!(parent.child().is_triggered());
    }

    #[test]
    fn sleep_times_out_when_not_triggered() {
        let s = Shutdown::new();
        assert!(!s.sleep(Duration::from_millis(5)));
    }
}
