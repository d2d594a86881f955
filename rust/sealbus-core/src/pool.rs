//! The worker pool the core's parallel work runs on (large seals and schema checks
//! split across cores, end-to-end batches opened ahead): rayon's global pool, with
//! threads named `sealbus-pool-N` and a start hook the embedding may set
//! ([`on_thread_start`]; the Python binding lowers their priority with it).
//!
//! Built on first use, never before: a process that forks before it needs the pool
//! (a pre-forking server that imports sealbus in its parent) must not leave its
//! children a pool whose threads they do not have. A child forked after the pool was
//! built has none of its threads either (fork copies only the calling thread), and
//! work handed to them would wait forever: there [`ensure`] says no, and the callers
//! do the work on their own thread.

use std::sync::OnceLock;

use crate::process::Process;

type StartHook = Box<dyn Fn(usize) + Send + Sync>;

static START: OnceLock<StartHook> = OnceLock::new();

/// Run `hook(index)` on each pool thread as it starts. Only the first hook set is
/// kept, and only a pool not built yet runs it; returns whether it was kept.
pub fn on_thread_start(hook: impl Fn(usize) + Send + Sync + 'static) -> bool {
    START.set(Box::new(hook)).is_ok()
}

/// Build the pool if it is not built yet, and say whether this process has it: false
/// in a child forked after it was built. Call before handing work to rayon, and do
/// the work on the calling thread when it says no.
pub(crate) fn ensure() -> bool {
    // The process that built the pool.
    static BUILT_BY: OnceLock<Process> = OnceLock::new();
    BUILT_BY
        .get_or_init(|| {
            // An error means someone built rayon's global pool first: it serves as it is.
            let _ = rayon::ThreadPoolBuilder::new()
                .thread_name(|i| format!("sealbus-pool-{i}"))
                .start_handler(|i| {
                    if let Some(hook) = START.get() {
                        hook(i);
                    }
                })
                .build_global();
            Process::current()
        })
        .is_current()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_pool_thread_is_named_for_sealbus() {
        assert!(super::ensure(), "the process that built the pool has it");
        let names = rayon::broadcast(|_| std::thread::current().name().map(str::to_owned));
        assert!(!names.is_empty());
        for name in names {
            assert!(
                name.as_deref()
                    .is_some_and(|n| n.starts_with("sealbus-pool-")),
                "{name:?}"
            );
        }
    }
}
