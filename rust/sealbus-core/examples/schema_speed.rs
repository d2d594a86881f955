//! Quick timing of schema validation on JSON lines: `cargo run --release --example
//! schema_speed -- SCHEMA.json EVENTS.jsonl [ROUNDS]` (used while tuning and profiling;
//! the real benchmark is `benches/bench_schema.py`).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::cast_precision_loss)]
use sealbus_core::schema::CompiledSchema;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&args[1]).unwrap()).unwrap();
    let data = std::fs::read(&args[2]).unwrap();
    let rounds: usize = args.get(3).map_or(20, |r| r.parse().unwrap());
    let mut offsets = vec![0_u64];
    for (i, b) in data.iter().enumerate() {
        if *b == b'\n' {
            offsets.push(i as u64 + 1);
        }
    }
    let n = offsets.len() - 1;
    let compiled = CompiledSchema::compile("t", 1, &schema).unwrap();
    let mut best = f64::MAX;
    let mut invalid = 0;
    for _ in 0..rounds {
        let t = std::time::Instant::now();
        let out = compiled.check_buffer(&data, &offsets, false).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
        invalid = out.iter().filter(|v| !**v).count();
    }
    println!(
        "{n} events, {invalid} invalid, best {:.3} ms, {:.3} us/event",
        best * 1e3,
        best * 1e6 / n as f64
    );
}
