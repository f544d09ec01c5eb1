//! Heartbeats: a sender thread that says "still here" every period, and the receiving side's
//! liveness table that forgets whoever stopped saying it.
//!
//! The sender runs the caller's `beat` closure at once and then every `period` until it is stopped
//! or the process-wide [`Shutdown`] fires; it sleeps on the shutdown signal, so stopping is prompt.
//! The table keeps entries in insertion order (servers answer "who is active" in login order) and
//! takes `now` as an argument, so its rules are tested without clocks or sleeps. An entry is alive
//! while `now - last_seen <= timeout` and expired once strictly more time has passed.

use crate::core::runtime::Runtime;
use crate::core::shutdown::Shutdown;
use std::io;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A thread calling `beat` every period. Dropping it (or [`HeartbeatSender::stop`]) ends and joins it.
pub struct HeartbeatSender {
    stop: Shutdown,
    thread: Option<JoinHandle<()>>,
}

impl HeartbeatSender {
    /// Starts a thread `<system>-{name}` on `rt` that calls `beat` now and then every `period`,
    /// until stopped or until the runtime's shutdown fires.
    pub fn start(
        rt: &Runtime,
        name: &str,
        period: Duration,
        mut beat: impl FnMut() + Send + 'static,
    ) -> io::Result<HeartbeatSender> {
        let stop = Shutdown::new();
        let (mine, global) = (stop.clone(), rt.shutdown().clone());
        let thread = rt.spawn_owned(name, move || {
            let step = period
                .min(Duration::from_millis(100))
                .max(Duration::from_millis(1));
            let mut next = Instant::now();
            loop {
                if mine.is_triggered() || global.is_triggered() {
                    break;
                }
                let now = Instant::now();
                if now >= next {
                    beat();
                    next = now + period;
                    continue;
                }
                // Wake on our own stop at once; notice the global one within `step`.
                if mine.sleep((next - now).min(step)) {
                    break;
                }
            }
        })?;
        Ok(HeartbeatSender {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it to end.
    pub fn stop(&mut self) {
        self.stop.trigger();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for HeartbeatSender {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Entry<K, V> {
    key: K,
    value: V,
    last_seen: Instant,
}

/// Who is alive: `key → value` in insertion order, each with the time it was last heard from.
pub struct LivenessTable<K, V> {
    timeout: Duration,
    entries: Vec<Entry<K, V>>,
}

impl<K: PartialEq, V> LivenessTable<K, V> {
    /// A table whose entries expire after strictly more than `timeout` without a touch.
    pub fn new(timeout: Duration) -> Self {
        LivenessTable {
            timeout,
            entries: Vec::new(),
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn position(&self, key: &K) -> Option<usize> {
        self.entries.iter().position(|e| e.key == *key)
    }

    fn alive_at(&self, e: &Entry<K, V>, now: Instant) -> bool {
        now.saturating_duration_since(e.last_seen) <= self.timeout
    }

    /// Adds `key` as last seen `now`, at the end of the order (replacing any previous entry).
    pub fn insert(&mut self, key: K, value: V, now: Instant) {
        if let Some(i) = self.position(&key) {
            self.entries.remove(i);
        }
        self.entries.push(Entry {
            key,
            value,
            last_seen: now,
        });
    }

    /// Marks `key` seen `now` if it is present and still alive; returns whether it was.
    /// An expired key is not revived: whoever it was must be inserted again (log in again).
    pub fn touch(&mut self, key: &K, now: Instant) -> bool {
        match self.position(key) {
            Some(i) if self.alive_at(&self.entries[i], now) => {
                self.entries[i].last_seen = now;
                true
            }
            _ => false,
        }
    }

    /// Whether `key` is present and alive at `now`.
    pub fn is_alive(&self, key: &K, now: Instant) -> bool {
        self.position(key)
            .is_some_and(|i| self.alive_at(&self.entries[i], now))
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.position(key).map(|i| &self.entries[i].value)
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.position(key).map(|i| self.entries.remove(i).value)
    }

    /// Removes and returns every entry expired at `now`, in insertion order.
    pub fn expire(&mut self, now: Instant) -> Vec<(K, V)> {
        let (alive, dead): (Vec<_>, Vec<_>) = std::mem::take(&mut self.entries)
            .into_iter()
            .partition(|e| now.saturating_duration_since(e.last_seen) <= self.timeout);
        self.entries = alive;
        dead.into_iter().map(|e| (e.key, e.value)).collect()
    }

    /// Entries in insertion order (including any not yet expired by [`LivenessTable::expire`]).
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|e| (&e.key, &e.value))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(shutdown: &Shutdown) -> Runtime {
        Runtime::new("t", "t", shutdown)
    }
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn entries_expire_only_after_strictly_more_than_the_timeout() {
        let t0 = Instant::now();
        let mut table = LivenessTable::new(3 * S);
        table.insert("a", 1, t0);
        table.insert("b", 2, t0 + S);
        assert!(table.expire(t0 + 3 * S).is_empty());
        assert!(table.is_alive(&"a", t0 + 3 * S));
        assert_eq!(
            table.expire(t0 + 3 * S + Duration::from_millis(1)),
            vec![("a", 1)]
        );
        assert!(!table.is_alive(&"a", t0 + 4 * S));
        assert_eq!(table.iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec!["b"]);
    }

    #[test]
    fn touch_refreshes_the_living_and_never_revives_the_expired() {
        let t0 = Instant::now();
        let mut table = LivenessTable::new(3 * S);
        table.insert("a", (), t0);
        assert!(table.touch(&"a", t0 + 2 * S));
        assert!(table.expire(t0 + 5 * S).is_empty());
        assert!(!table.touch(&"a", t0 + 9 * S));
        assert!(!table.touch(&"nobody", t0));
        assert_eq!(table.expire(t0 + 9 * S).len(), 1);
        assert!(table.is_empty());
    }

    #[test]
    fn insert_keeps_insertion_order_and_moves_a_reinserted_key_to_the_end() {
        let t0 = Instant::now();
        let mut table = LivenessTable::new(S);
        for k in ["x", "y", "z"] {
            table.insert(k, k.len(), t0);
        }
        table.insert("x", 9, t0);
        let order: Vec<_> = table.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(order, vec![("y", 1), ("z", 1), ("x", 9)]);
        assert_eq!(table.remove(&"y"), Some(1));
        assert_eq!(table.get(&"x"), Some(&9));
    }

    #[test]
    fn sender_beats_at_once_and_stops_promptly() {
        let beats = Arc::new(AtomicUsize::new(0));
        let b = beats.clone();
        let shutdown = Shutdown::new();
        let mut sender =
            HeartbeatSender::start(&rt(&shutdown), "hb", Duration::from_millis(10), move || {
                b.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while beats.load(Ordering::SeqCst) < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        sender.stop();
        let after = beats.load(Ordering::SeqCst);
        assert!(after >= 3);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(beats.load(Ordering::SeqCst), after);
    }

    #[test]
    fn sender_ends_when_the_global_shutdown_fires() {
        let shutdown = Shutdown::new();
        let sender =
            HeartbeatSender::start(&rt(&shutdown), "hb", Duration::from_secs(60), || {}).unwrap();
        shutdown.trigger();
        drop(sender); // joins; would hang for a minute if the signal were ignored
    }
}
