//! The worker pool the core's parallel work runs on (large seals and schema checks
//! split across cores, end-to-end batches opened ahead): rayon's global pool, with
//! threads named `sealbus-pool-N` and a start hook the embedding may set
//! ([`on_thread_start`]; the Python binding lowers their priority with it).
//!
//! Built on first use, never before: a process that forks before it needs the pool
//! (a pre-forking server that imports sealbus in its parent) must not leave its
//! children a pool whose threads they do not have.

use std::sync::{Once, OnceLock};

type StartHook = Box<dyn Fn(usize) + Send + Sync>;

static START: OnceLock<StartHook> = OnceLock::new();

/// Run `hook(index)` on each pool thread as it starts. Only the first hook set is
/// kept, and only a pool not built yet runs it; returns whether it was kept.
pub fn on_thread_start(hook: impl Fn(usize) + Send + Sync + 'static) -> bool {
    START.set(Box::new(hook)).is_ok()
}

/// Build the pool if it is not built yet. Call before handing work to rayon.
pub(crate) fn ensure() {
    static BUILT: Once = Once::new();
    BUILT.call_once(|| {
        // An error means someone built rayon's global pool first: it serves as it is.
        let _ = rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("sealbus-pool-{i}"))
            .start_handler(|i| {
                if let Some(hook) = START.get() {
                    hook(i);
                }
            })
            .build_global();
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_pool_thread_is_named_for_sealbus() {
        super::ensure();
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
