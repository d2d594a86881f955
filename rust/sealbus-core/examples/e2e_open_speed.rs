//! Quick timing of an end-to-end batch opened and validated on one thread:
//! `cargo run --release --example e2e_open_speed -- SCHEMA.json EVENTS.jsonl [ROUNDS]
//! [cold]` (used while tuning and profiling; the real benchmark is
//! `benches/e2e_consumer.py`). With `cold`, the caches are flushed before each round,
//! as a consumer meets events published long before.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::missing_panics_doc
)]
use sealbus_core::schema::CompiledSchema;
use sealbus_core::seal::e2e;
use sealbus_core::seal::wrap::RecipientKey;
use sealbus_core::seal::{AadFields, BatchJob};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&args[1]).unwrap()).unwrap();
    let data = std::fs::read(&args[2]).unwrap();
    let rounds: usize = args.get(3).map_or(20, |r| r.parse().unwrap());
    let mut offsets = vec![0_usize];
    for (i, b) in data.iter().enumerate() {
        if *b == b'\n' {
            offsets.push(i + 1);
        }
    }
    let n = offsets.len() - 1;
    let ids: Vec<String> = (0..n).map(|i| format!("ev-{i:08}")).collect();
    let aads: Vec<AadFields<'_>> = ids
        .iter()
        .map(|id| AadFields {
            event_id: id,
            event_type: "orders.placed",
            source: "checkout",
            schema_version: 0,
        })
        .collect();
    let key = RecipientKey::generate().unwrap();
    let public = key.public_bytes();
    let job = e2e::seal_job_for(
        &[("billing", &public[..])],
        "orders.placed",
        &aads,
        &data,
        &offsets,
    )
    .unwrap();
    let (frames, frame_offsets) = job.run_to_vec().unwrap();
    let items: Vec<&[u8]> = frame_offsets
        .windows(2)
        .map(|w| &frames[w[0]..w[1]])
        .collect();
    let compiled = CompiledSchema::compile("orders.placed", 1, &schema).unwrap();
    let (mut open_best, mut check_best) = (f64::MAX, f64::MAX);
    let mut out = Vec::new();
    let cold = args.get(4).is_some_and(|a| a == "cold");
    let mut junk = vec![0u8; 64 << 20];
    for r in 0..rounds {
        if cold {
            for (k, b) in junk.iter_mut().enumerate().step_by(64) {
                *b = b.wrapping_add(u8::try_from((k + r) & 0xff).unwrap());
            }
        }
        let t = std::time::Instant::now();
        let job = e2e::open_each_job_for(&key, "billing", &aads, &items).unwrap();
        out.clear();
        out.resize(job.out_len(), 0);
        job.run(&mut out).unwrap();
        open_best = open_best.min(t.elapsed().as_secs_f64());
        let offs = job.out_offsets().to_vec();
        let t = std::time::Instant::now();
        let mut bad = 0;
        for (i, w) in offs.windows(2).enumerate() {
            bad += usize::from(compiled.validate_json(&out[w[0]..w[1]], i).is_err());
        }
        check_best = check_best.min(t.elapsed().as_secs_f64());
        assert!(bad < n);
    }
    std::hint::black_box(&junk);
    println!(
        "{n} events: open {:.3} us/event, validate {:.3} us/event (best of {rounds})",
        open_best * 1e6 / n as f64,
        check_best * 1e6 / n as f64
    );
}
