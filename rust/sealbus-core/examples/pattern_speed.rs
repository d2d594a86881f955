//! Quick timing of the pattern matcher on JSON lines: `cargo run --release --example
//! pattern_speed -- EVENTS.jsonl '{"pattern":...}' ...` (used while tuning; the real
//! benchmark is `benches/bench_pattern.py`).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::cast_precision_loss)]
use sealbus_core::pattern::{Pattern, PatternSet};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let data = std::fs::read(&args[1]).unwrap();
    let mut offsets = vec![0usize];
    for (i, b) in data.iter().enumerate() {
        if *b == b'\n' {
            offsets.push(i + 1);
        }
    }
    let mut set: PatternSet<usize> = PatternSet::new();
    // `@FILE` reads one pattern per line.
    let mut pats: Vec<String> = Vec::new();
    for a in &args[2..] {
        match a.strip_prefix('@') {
            Some(f) => pats.extend(
                std::fs::read_to_string(f)
                    .unwrap()
                    .lines()
                    .map(str::to_owned),
            ),
            None => pats.push(a.clone()),
        }
    }
    for (i, p) in pats.iter().enumerate() {
        set.insert(i, Pattern::parse_json(p).unwrap());
    }
    set.prepare();
    let n = offsets.len() - 1;
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    for _ in 0..reps {
        let (t, cpu) = (std::time::Instant::now(), thread_cpu_ns());
        let ev = timed_batch(&set, &data, &offsets);
        let dt = t.elapsed().as_secs_f64();
        let dcpu = thread_cpu_ns().saturating_sub(cpu);
        println!(
            "{} events, {} matches, {:.0} ns/event, {:.0} cpu ns/event",
            n,
            ev.len(),
            dt * 1e9 / n as f64,
            dcpu as f64 / n as f64
        );
    }
}

/// This thread's CPU time in ns (the first field of `/proc/thread-self/schedstat`;
/// 0 where that is missing): on a shared machine wall time counts other processes.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Kept out of line so `valgrind --tool=callgrind --toggle-collect='*timed_batch*'`
/// counts the matching alone (instruction counts are repeatable on a shared machine).
#[inline(never)]
fn timed_batch(set: &PatternSet<usize>, data: &[u8], offsets: &[usize]) -> Vec<u32> {
    set.matches_batch(data, offsets).unwrap().0
}
