//! P2PTracker++ (see `../shared/specs/p2ptracker.md`).

pub mod cli;
