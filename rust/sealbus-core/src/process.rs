//! Which process a router, an audit trail or the worker pool belongs to.
//!
//! `fork` copies the calling thread only. A child of a process that opened a router
//! inherits its open files, its log lock (an `flock` is shared across `fork`) and the
//! state of its background threads, but not the threads: a publish from the child
//! would append to the parent's segments beside the parent's own appends, and a
//! close would wait for threads that are not there. So a router and a trail record
//! the process that opened them, and refuse work from any other with `Closed`, naming
//! what to do instead; a close in another process releases nothing and touches
//! nothing (what it would release is the parent's). The pool (`pool.rs`) records the
//! process that built it, and its callers work on their own thread elsewhere.

use crate::error::{Error, Result};

/// The process that opened something.
#[derive(Debug, Clone, Copy)]
pub struct Process(u32);

impl Process {
    /// The calling process.
    pub fn current() -> Self {
        Process(std::process::id())
    }

    /// Whether this is the calling process (false in a forked child).
    pub fn is_current(self) -> bool {
        self.0 == std::process::id()
    }

    /// `Closed` unless this is the calling process; `what` names the thing.
    pub fn check(self, what: &str) -> Result<()> {
        if self.is_current() {
            return Ok(());
        }
        Err(Error::Closed {
            what: format!(
                "{what} belongs to process {}, which opened it; this is process {} (a forked \
                 child?): open one in this process",
                self.0,
                std::process::id()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_opening_process_passes_and_another_is_told_what_to_do() {
        assert!(Process::current().is_current());
        assert!(Process::current().check("the router").is_ok());
        let other = Process(std::process::id().wrapping_add(1));
        assert!(!other.is_current());
        let msg = other.check("the router").unwrap_err().to_string();
        assert!(
            msg.starts_with("closed: the router belongs to process "),
            "{msg}"
        );
        assert!(msg.contains("open one in this process"), "{msg}");
    }
}
