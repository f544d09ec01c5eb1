//! A fixed pool of named worker threads draining a crossbeam channel of jobs.
//!
//! This is the Rust Book's final-chapter pool with its listed omissions done: fallible
//! construction, named threads, and a panic in one job does not take its worker down. Dropping the
//! pool closes the channel, so every worker's `recv()` ends, and `Drop` joins them. BitTrickle
//! fixes the size at 5 (a 6th concurrent upload waits in the queue); the other systems use the same
//! number for their upload listeners.

use crate::core::runtime::Runtime;
use crossbeam_channel::Sender;
use std::fmt;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread::JoinHandle;

/// Worker count of every upload pool (BitTrickle's spec number).
pub const UPLOAD_WORKERS: usize = 5;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// N named threads running submitted jobs in submission order.
pub struct WorkerPool {
    workers: Vec<JoinHandle<()>>,
    sender: Option<Sender<Job>>,
}

/// The pool is shutting down and takes no more jobs.
#[derive(Debug, PartialEq, Eq)]
pub struct PoolClosed;

impl fmt::Display for PoolClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the worker pool is shut down")
    }
}

impl std::error::Error for PoolClosed {}

impl WorkerPool {
    /// Starts `size` threads on `rt`, named `<system>-{name}-{i}`; the pool joins them on drop.
    pub fn new(rt: &Runtime, name: &str, size: usize) -> io::Result<WorkerPool> {
        let (sender, receiver) = crossbeam_channel::unbounded::<Job>();
        let mut workers = Vec::with_capacity(size);
        for i in 0..size.max(1) {
            let receiver = receiver.clone();
            let worker = rt.spawn_owned(&format!("{name}-{i}"), move || {
                for job in receiver.iter() {
                    if catch_unwind(AssertUnwindSafe(job)).is_err() {
                        log::error!("a job panicked; the worker keeps serving");
                    }
                }
            })?;
            workers.push(worker);
        }
        Ok(WorkerPool {
            workers,
            sender: Some(sender),
        })
    }

    /// Queues a job; it runs as soon as a worker is free.
    pub fn execute(&self, job: impl FnOnce() + Send + 'static) -> Result<(), PoolClosed> {
        match &self.sender {
            Some(sender) => sender.send(Box::new(job)).map_err(|_| PoolClosed),
            None => Err(PoolClosed),
        }
    }

    /// Jobs queued but not yet picked up by a worker (what the tests check the pool by).
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.sender.as_ref().map_or(0, |s| s.len())
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.sender.take();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::shutdown::Shutdown;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn rt() -> Runtime {
        Runtime::new("t", "t", &Shutdown::new())
    }

    #[test]
    fn drop_runs_every_queued_job_then_joins() {
        let done = Arc::new(AtomicUsize::new(0));
        {
            let pool = WorkerPool::new(&rt(), "t", 3).unwrap();
            for _ in 0..20 {
                let done = done.clone();
                pool.execute(move || {
                    done.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
            }
        }
        assert_eq!(done.load(Ordering::SeqCst), 20);
    }

    #[test]
    fn runs_exactly_size_jobs_at_once_and_the_next_waits() {
        let pool = WorkerPool::new(&rt(), "t", 5).unwrap();
        let (gate_tx, gate_rx) = crossbeam_channel::bounded::<()>(0);
        let started = Arc::new(AtomicUsize::new(0));
        for _ in 0..6 {
            let (gate, s) = (gate_rx.clone(), started.clone());
            pool.execute(move || {
                s.fetch_add(1, Ordering::SeqCst);
                let _ = gate.recv();
            })
            .unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(started.load(Ordering::SeqCst), 5);
        assert_eq!(pool.queued(), 1);
        drop(gate_tx); // every recv() now returns at once
        drop(pool);
        assert_eq!(started.load(Ordering::SeqCst), 6);
    }

    #[test]
    fn a_panicking_job_does_not_kill_its_worker() {
        let done = Arc::new(AtomicUsize::new(0));
        {
            let pool = WorkerPool::new(&rt(), "t", 1).unwrap();
            pool.execute(|| panic!("boom")).unwrap();
            let d = done.clone();
            pool.execute(move || {
                d.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        }
        assert_eq!(done.load(Ordering::SeqCst), 1);
    }
}
