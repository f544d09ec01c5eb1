//! A role's threads: every thread a role starts is named `<system>-<job>`, tracked here, told to
//! stop through one [`Shutdown`], and joined when the role ends.
//!
//! Why one place: a thread that outlives its role keeps a socket or a `.part` file open, and a
//! student reading the code should find every thread a role runs by looking for `spawn` on its
//! runtime. The shape is aquatic's: named OS threads wired with channels, and a supervisor that
//! owns the handles.
//!
//! Two kinds of thread:
//! - [`Runtime::spawn`]: the runtime keeps the handle and joins it in [`Runtime::stop`]. For
//!   listeners, routers, heartbeats, per-connection threads and downloads.
//! - [`Runtime::spawn_owned`]: the caller keeps the handle (a pool that joins its workers on
//!   drop, a download whose result the caller wants); the runtime still knows the thread is alive
//!   and reports it if it has not ended by the time [`Runtime::stop`] gives up.
//!
//! Linux shows at most 15 bytes of a thread's name in `top -H` and `/proc/*/task/*/comm`, so keep
//! the job part short; the whole name still shows in panics and in Rust.

use crate::core::shutdown::Shutdown;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long [`Runtime::stop`] waits for threads by default: every blocking call in peershare
/// polls the shutdown signal at least every half second, so two seconds is generous.
pub const STOP_BOUND: Duration = Duration::from_secs(2);

/// One registered thread: its full name, whether it is still running, and its handle when the
/// runtime owns it.
struct Entry {
    name: String,
    alive: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

struct Inner {
    system: String,
    role: String,
    shutdown: Shutdown,
    threads: Mutex<Vec<Entry>>,
}

/// The threads of one role (a tracker, a client, a node). Cloning shares the same registry, so a
/// listener thread can start per-connection threads on the runtime it was started from.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

/// Marks a thread as ended when its closure returns or unwinds.
struct AliveGuard(Arc<AtomicBool>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Runtime {
    /// A runtime for `system` (the thread name prefix, e.g. `p2ptracker`) and `role` (the label
    /// trace lines carry, e.g. `p2ptracker-client-A`). Its signal is a child of `parent`: Ctrl-C
    /// stops every role, and [`Runtime::stop`] stops this role alone.
    pub fn new(system: &str, role: &str, parent: &Shutdown) -> Runtime {
        Runtime {
            inner: Arc::new(Inner {
                system: system.to_string(),
                role: role.to_string(),
                shutdown: parent.child(),
                threads: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The signal every thread of this role polls (fires with the parent given to `new`).
    pub fn shutdown(&self) -> &Shutdown {
        &self.inner.shutdown
    }

    /// The role label given at construction.
    pub fn role(&self) -> &str {
        &self.inner.role
    }

    /// The full thread name for `job`: `<system>-<job>`.
    pub fn thread_name(&self, job: &str) -> String {
        format!("{}-{job}", self.inner.system)
    }

    /// Starts a thread named `<system>-<job>` that the runtime joins in [`Runtime::stop`].
    pub fn spawn(&self, job: &str, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let (handle, alive, name) = self.start(job, None, f)?;
        self.register(Entry {
            name,
            alive,
            handle: Some(handle),
        });
        Ok(())
    }

    /// Like [`Runtime::spawn`] with a 256 KiB stack: for per-connection threads of trackers,
    /// which may hold thousands of idle clients and need little stack each.
    pub fn spawn_small(&self, job: &str, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let (handle, alive, name) = self.start(job, Some(256 * 1024), f)?;
        self.register(Entry {
            name,
            alive,
            handle: Some(handle),
        });
        Ok(())
    }

    /// Starts a thread named `<system>-<job>` whose handle the caller keeps and joins; the
    /// runtime only watches that it ends.
    pub fn spawn_owned<T: Send + 'static>(
        &self,
        job: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> io::Result<JoinHandle<T>> {
        let (handle, alive, name) = self.start(job, None, f)?;
        self.register(Entry {
            name,
            alive,
            handle: None,
        });
        Ok(handle)
    }

    /// Names of this role's threads that are still running.
    pub fn running(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|e| e.alive.load(Ordering::SeqCst))
            .map(|e| e.name.clone())
            .collect()
    }

    /// Fires this role's shutdown signal (not the parent's), waits up to `bound` for every thread to end, joins those the
    /// runtime owns, and returns the names of threads still running after the bound (each is
    /// also logged). A thread that outlives its role is a bug; this makes it visible.
    pub fn stop(&self, bound: Duration) -> Vec<String> {
        self.inner.shutdown.trigger();
        let deadline = Instant::now() + bound;
        loop {
            // Threads may start others while we wait (a listener accepting one more connection),
            // so look at the registry afresh each round; join outside the lock.
            let (ended, running): (Vec<Entry>, Vec<String>) = {
                let mut registry = self.lock();
                let (ended, live) = registry
                    .drain(..)
                    .partition(|e| !e.alive.load(Ordering::SeqCst));
                *registry = live;
                (ended, registry.iter().map(|e| e.name.clone()).collect())
            };
            for entry in ended {
                if let Some(handle) = entry.handle {
                    if handle.join().is_err() {
                        log::error!("thread {} panicked", entry.name);
                    }
                }
            }
            if running.is_empty() {
                return running;
            }
            if Instant::now() >= deadline {
                for name in &running {
                    log::warn!("thread {name} did not stop within {bound:?}");
                }
                return running;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn start<T: Send + 'static>(
        &self,
        job: &str,
        stack: Option<usize>,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> io::Result<(JoinHandle<T>, Arc<AtomicBool>, String)> {
        let name = self.thread_name(job);
        let alive = Arc::new(AtomicBool::new(true));
        let guard = AliveGuard(alive.clone());
        let role = self.inner.role.clone();
        let mut builder = std::thread::Builder::new().name(name.clone());
        if let Some(bytes) = stack {
            builder = builder.stack_size(bytes);
        }
        let handle = builder.spawn(move || {
            let _guard = guard;
            // Trace lines written by this thread carry its role (several roles share a process
            // in the demo and in tests).
            crate::core::trace::set_thread_role(&role);
            f()
        })?;
        Ok((handle, alive, name))
    }

    /// Adds an entry, first dropping (joining) entries of threads that have ended, so a
    /// long-running tracker's registry stays as small as its live connections.
    fn register(&self, entry: Entry) {
        let mut registry = self.lock();
        let mut kept = Vec::with_capacity(registry.len() + 1);
        for mut e in registry.drain(..) {
            if e.alive.load(Ordering::SeqCst) {
                kept.push(e);
            } else if let Some(handle) = e.handle.take() {
                let _ = handle.join();
            }
        }
        kept.push(entry);
        *registry = kept;
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        // A panic while holding this lock cannot leave the Vec inconsistent (every operation
        // is a whole push/take), so a poisoned lock is still usable.
        self.inner
            .threads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn threads_are_named_system_dash_job() {
        let rt = Runtime::new("demo", "demo-role", &Shutdown::new());
        let (tx, rx) = crossbeam_channel::bounded(1);
        rt.spawn("worker", move || {
            let _ = tx.send(std::thread::current().name().map(str::to_string));
        })
        .unwrap();
        assert_eq!(rx.recv().unwrap().as_deref(), Some("demo-worker"));
        assert!(rt.stop(STOP_BOUND).is_empty());
    }

    #[test]
    fn threads_carry_the_role_label_for_trace_lines() {
        let rt = Runtime::new("demo", "demo-client-A", &Shutdown::new());
        let h = rt
            .spawn_owned("x", || crate::core::trace::role().map(|r| r.to_string()))
            .unwrap();
        assert_eq!(h.join().unwrap().as_deref(), Some("demo-client-A"));
        assert!(rt.stop(STOP_BOUND).is_empty());
    }

    #[test]
    fn stop_fires_shutdown_and_joins_every_thread() {
        let parent = Shutdown::new();
        let rt = Runtime::new("t", "t", &parent);
        let shutdown = rt.shutdown().clone();
        let ended = Arc::new(AtomicUsize::new(0));
        for i in 0..4 {
            let (s, ended) = (shutdown.clone(), ended.clone());
            rt.spawn(&format!("loop-{i}"), move || {
                while !s.sleep(Duration::from_secs(10)) {}
                ended.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        }
        assert_eq!(rt.running().len(), 4);
        assert!(rt.stop(STOP_BOUND).is_empty());
        assert_eq!(ended.load(Ordering::SeqCst), 4);
        assert!(rt.running().is_empty());
        assert!(
            !parent.is_triggered(),
            "one role's stop must not stop the process"
        );
    }

    #[test]
    fn threads_started_by_threads_are_joined_too() {
        let rt = Runtime::new("t", "t", &Shutdown::new());
        let shutdown = rt.shutdown().clone();
        let inner_rt = rt.clone();
        let s = shutdown.clone();
        rt.spawn("listener", move || {
            for i in 0..3 {
                let s = s.clone();
                let _ = inner_rt.spawn(&format!("conn-{i}"), move || {
                    while !s.sleep(Duration::from_secs(10)) {}
                });
            }
            while !s.sleep(Duration::from_secs(10)) {}
        })
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while rt.running().len() < 4 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(rt.running().len(), 4);
        assert!(rt.stop(STOP_BOUND).is_empty());
        assert!(rt.running().is_empty());
    }

    #[test]
    fn a_thread_that_ignores_shutdown_is_reported_by_name() {
        let rt = Runtime::new("t", "t", &Shutdown::new());
        let (release, wait) = crossbeam_channel::bounded::<()>(0);
        rt.spawn("stubborn", move || {
            let _ = wait.recv();
        })
        .unwrap();
        assert_eq!(rt.stop(Duration::from_millis(50)), vec!["t-stubborn"]);
        drop(release);
        assert!(rt.stop(STOP_BOUND).is_empty());
    }

    #[test]
    fn owned_threads_are_watched_but_joined_by_their_owner() {
        let rt = Runtime::new("t", "t", &Shutdown::new());
        let handle = rt.spawn_owned("download", || 42).unwrap();
        assert_eq!(handle.join().unwrap(), 42);
        assert!(rt.stop(STOP_BOUND).is_empty());
    }

    #[test]
    fn finished_threads_leave_the_registry() {
        let rt = Runtime::new("t", "t", &Shutdown::new());
        for i in 0..50 {
            rt.spawn(&format!("short-{i}"), || {}).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while !rt.running().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        rt.spawn("last", || {}).unwrap();
        assert!(rt.lock().len() <= 2);
        assert!(rt.stop(STOP_BOUND).is_empty());
    }
}
