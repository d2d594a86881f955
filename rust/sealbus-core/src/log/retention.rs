//! Retention: whole sealed segments are deleted from the oldest on, by age (the newest
//! record timestamp in the segment is older than `max_age`) or by size (the log is
//! larger than `max_bytes`). The active segment is never deleted. A segment that still
//! holds records a durable consumer needs (offset `>= min_needed`) is kept, unless
//! `respect_consumers` is false: then it goes and the records are counted.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::segment::Segment;

/// Retention policy. `Default` keeps everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    pub max_age: Option<Duration>,
    pub max_bytes: Option<u64>,
    /// Keep segments that a durable consumer still needs even past the limits.
    pub respect_consumers: bool,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age: None,
            max_bytes: None,
            respect_consumers: true,
        }
    }
}

/// What one retention pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub segments_deleted: u64,
    pub bytes_deleted: u64,
    pub records_deleted: u64,
    /// Records a consumer still needed that the policy deleted anyway.
    pub needed_records_deleted: u64,
    /// Segments past the limits that were kept because a consumer needs them.
    pub segments_kept_for_consumers: u64,
    /// First offset still in the log after the pass.
    pub first_offset: u64,
}

/// How many segments to delete from the front of `segments`, filling `report`.
pub(crate) fn plan(
    segments: &[Arc<Segment>],
    policy: &Retention,
    now_ns: u64,
    min_needed: Option<u64>,
    report: &mut RetentionReport,
) -> usize {
    let mut total: u64 = segments.iter().map(|s| s.len()).sum();
    let cutoff = policy
        .max_age
        .map(|a| now_ns.saturating_sub(u64::try_from(a.as_nanos()).unwrap_or(u64::MAX)));
    let mut n = 0;
    // Never the last (active) segment.
    for seg in segments.iter().take(segments.len().saturating_sub(1)) {
        let too_old = cutoff.is_some_and(|c| seg.max_ts.load(Ordering::Acquire) < c);
        let too_big = policy.max_bytes.is_some_and(|m| total > m);
        if !(too_old || too_big) {
            break;
        }
        let next = seg.next_offset.load(Ordering::Acquire);
        let needed = min_needed.map_or(0, |m| next.saturating_sub(m.max(seg.base)));
        if needed > 0 {
            if policy.respect_consumers {
                report.segments_kept_for_consumers += 1;
                break;
            }
            report.needed_records_deleted += needed;
        }
        total -= seg.len();
        report.segments_deleted += 1;
        report.bytes_deleted += seg.len();
        report.records_deleted += seg.records();
        n += 1;
    }
    n
}
