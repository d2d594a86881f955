//! The router's matching cost on its own CloudEvents JSON: `cargo run --release
//! --example pattern_skip_speed -- ORDERS.jsonl` (data payloads one a line, e.g. from
//! `python -m sealbus.bench.workload --jsonl 2000`). Each payload is wrapped in the
//! attributes the router writes, and matched against the two patterns of the durable
//! end-to-end bench, through `matches_json` (validating) and `matches_json_trusted`
//! (skips what no pattern references), interleaved in one run. Prints the median
//! thread-CPU ns/event of `REPS` (default 9) rounds per mode.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::cast_precision_loss)]
use sealbus_core::pattern::{Pattern, PatternSet};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let data = std::fs::read_to_string(&args[1]).unwrap();
    let events: Vec<Vec<u8>> = data
        .lines()
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| {
            format!(
                "{{\"specversion\":\"1.0\",\"id\":\"0193f5c2-7d1e-7a3b-9c4d-{i:012x}\",\
                 \"source\":\"orders-service\",\"type\":\"OrderPlaced\",\
                 \"time\":\"2026-11-25T23:40:00.123456Z\",\
                 \"datacontenttype\":\"application/json\",\"data\":{l}}}"
            )
            .into_bytes()
        })
        .collect();
    let mut set: PatternSet<u32> = PatternSet::new();
    set.insert(
        0,
        Pattern::parse_json(r#"{"data": {"total": [{"numeric": [">=", 0]}]}}"#).unwrap(),
    );
    set.insert(
        1,
        Pattern::parse_json(r#"{"data": {"currency": ["USD", "EUR", "GBP", "JPY"]}}"#).unwrap(),
    );
    set.prepare();
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(9);
    let n = events.len();
    let bytes: usize = events.iter().map(Vec::len).sum();
    println!("{n} events, {} bytes on average", bytes / n);
    let mut times = [Vec::new(), Vec::new()];
    let mut counts = [0usize; 2];
    for _ in 0..reps {
        for (mode, t) in times.iter_mut().enumerate() {
            // `ONLY=0` or `ONLY=1` times one mode (for a profile of it alone).
            if std::env::var("ONLY").is_ok_and(|m| m != mode.to_string()) {
                t.push(0.0);
                continue;
            }
            let cpu = thread_cpu_ns();
            counts[mode] = run(&set, &events, mode == 1);
            t.push(thread_cpu_ns().saturating_sub(cpu) as f64 / (ROUNDS * n) as f64);
        }
    }
    if std::env::var("ONLY").is_err() {
        assert_eq!(counts[0], counts[1], "both modes find the same matches");
    }
    for (name, t) in ["matches_json", "matches_json_trusted"]
        .iter()
        .zip(&mut times)
    {
        t.sort_by(f64::total_cmp);
        println!(
            "{name:>22}: median {:.0} cpu ns/event (min {:.0}, max {:.0}), {} matches",
            t[t.len() / 2],
            t[0],
            t[t.len() - 1],
            counts[0]
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

/// Passes over the events per timing: long enough for the scheduler's CPU-time ticks.
const ROUNDS: usize = 100;

#[inline(never)]
fn run(set: &PatternSet<u32>, events: &[Vec<u8>], trusted: bool) -> usize {
    let mut out = Vec::new();
    let mut found = 0;
    // The router writes each event's JSON into one scratch buffer just before
    // matching it, so the scanner reads bytes already in cache: copied here likewise
    // (in both modes), lest the timing be of memory rather than of the scan.
    let mut json = Vec::new();
    for _ in 0..ROUNDS {
        for e in events {
            out.clear();
            json.clear();
            json.extend_from_slice(e);
            if trusted {
                set.matches_json_trusted(&json, &mut out).unwrap();
            } else {
                set.matches_json(&json, &mut out).unwrap();
            }
            found += out.len();
        }
    }
    found / ROUNDS
}
