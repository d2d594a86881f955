//! The core's worker pool (`sealbus_core::pool`) runs a little below the host's
//! priority: set up when the module loads, applied to each pool thread as it starts
//! (the pool itself is built on first use).
//!
//! Why: the pool works on behalf of a caller that is itself running or about to run:
//! a large batch sealed on the caller's thread and the pool together, or the
//! end-to-end events a consumer will poll next, opened ahead. When there are fewer
//! cores than runnable threads, the kernel shares time equally, so the thread
//! everything waits for (the consumer, the producer) gets only part of a core while
//! the pool works ahead of it. At `nice` +[`POOL_NICE`] the pool fills the cores the
//! host leaves idle and yields to its threads otherwise; on an idle core it runs at
//! full speed (docs/SEALING.md has the figures for an end-to-end consumer on two
//! vCPUs). Only the pool's own threads change; the process, its other threads and its
//! children keep their priority. The pool holds locks only briefly (a read-ahead
//! lane, a schema lookup), and CFS never starves a thread at +5, so a host thread
//! waiting on one of them waits a time slice at most.
//!
//! `SEALBUS_POOL_NICE` overrides the step (0 keeps the host's priority); the thread
//! count is rayon's (`RAYON_NUM_THREADS`, else one per core).

/// How much lower than the host's threads the pool runs, in `nice` steps.
pub(crate) const POOL_NICE: i32 = 5;

/// Register the priority hook (read `SEALBUS_POOL_NICE` now). Starts no thread.
pub(crate) fn init() {
    let nice = std::env::var("SEALBUS_POOL_NICE")
        .ok()
        .and_then(|v| v.trim().parse::<i32>().ok())
        .map_or(POOL_NICE, |n| n.clamp(0, 19));
    sealbus_core::pool::on_thread_start(move |_| lower_priority(nice));
}

/// Lower the calling thread's priority by `nice` steps from where it started (a
/// thread inherits its creator's). Best effort: where it cannot be done, the pool
/// runs at the host's priority, as it would have without this.
fn lower_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // On Linux a thread id names one thread for setpriority (POSIX would apply it
        // to the whole process).
        let me = rustix::thread::gettid();
        if let Ok(now) = rustix::process::getpriority_process(Some(me)) {
            let _ = rustix::process::setpriority_process(Some(me), (now + nice).min(19));
        }
    }
}
