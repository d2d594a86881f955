//! Durable per-consumer cursors: the committed offset (everything below it is settled),
//! the settled offsets beyond it as compact ranges, delivery counts of offsets in
//! flight, and the consumer's dead-letter entries, and their encoding. Where they are
//! stored: [`super::cursor_store`].
//!
//! A consumer that follows the log settles, with every batch, all of it but the few
//! offsets it is handed. Those ranges are not written out one gap at a time: the
//! cursor keeps one [`Span`] past its explicit ranges, "everything of `start..end`
//! but the offsets held", extended in O(1) per batch and O(1) per offset handed,
//! and written out in full only when the cursor is encoded (or, rarely, when
//! something settles out of order beyond the span's start).

use std::collections::VecDeque;

use super::deliveries::Deliveries;

/// A cursor without an owner (as written before cursors had one).
const MAGIC: &[u8; 8] = b"SBUSCUR1";
/// A cursor that names the principal owning the consumer.
const MAGIC_OWNED: &[u8; 8] = b"SBUSCUR2";
/// Dead-letter reasons are cut to this many bytes (at a character boundary).
const MAX_REASON: usize = 1024;

/// A message that exhausted its deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub offset: u64,
    pub deliveries: u32,
    pub timestamp_ns: u64,
    pub reason: String,
}

/// Offsets `start..end` past the explicit ranges, all settled but those in `held`
/// (handed to the consumer and not settled yet; sorted). Empty when `start == end`,
/// and then `held` is empty too.
#[derive(Debug, Clone, Default)]
pub struct Span {
    start: u64,
    end: u64,
    held: VecDeque<u64>,
}

impl Span {
    fn is_active(&self) -> bool {
        self.start < self.end
    }
}

/// Where one consumer stands.
#[derive(Debug, Clone, Default)]
pub struct Cursor {
    /// The principal that created the consumer, and alone may resume it. `None` in
    /// a cursor file written before owners were recorded (the router adopts it for
    /// the first principal that resumes it).
    pub owner: Option<String>,
    /// Every offset below this is settled (acked or dead-lettered).
    pub committed: u64,
    /// Settled offsets at or beyond `committed`: sorted, disjoint, non-adjacent
    /// half-open ranges `[start, end)`, each starting above `committed`. With
    /// `span`, only those below it: [`Cursor::ranges`] lists them all.
    pub acked: Vec<(u64, u64)>,
    /// Delivery attempts of offsets not yet settled.
    pub deliveries: Deliveries,
    /// Dead-lettered messages, not yet drained.
    pub dead_letters: Vec<DeadLetter>,
    /// Settled offsets past `acked`, kept as one span (see the module docs); empty
    /// in a cursor just decoded.
    pub span: Span,
}

impl PartialEq for Cursor {
    /// Equal when they settle the same offsets, however they keep them.
    fn eq(&self, other: &Self) -> bool {
        self.owner == other.owner
            && self.committed == other.committed
            && self.ranges() == other.ranges()
            && self.deliveries == other.deliveries
            && self.dead_letters == other.dead_letters
    }
}

impl Eq for Cursor {}

impl Cursor {
    /// A cursor for a consumer that starts reading at `offset`.
    pub fn starting_at(offset: u64) -> Cursor {
        Cursor {
            committed: offset,
            ..Cursor::default()
        }
    }

    pub fn is_settled(&self, offset: u64) -> bool {
        if offset < self.committed {
            return true;
        }
        if self.span.is_active() && offset >= self.span.start {
            return offset < self.span.end && self.span.held.binary_search(&offset).is_err();
        }
        // The ranges are sorted and disjoint: the only candidate is the last one
        // starting at or before `offset` (a consumer far behind holds thousands).
        let i = self.acked.partition_point(|&(s, _)| s <= offset);
        i > 0 && offset < self.acked[i - 1].1
    }

    /// Settle every offset of `start..end` at once: offsets the consumer does not
    /// want, which it was never handed (so none of them has a delivery count). The
    /// common case, a range just past everything settled, is an O(1) extension.
    pub fn settle_unwanted(&mut self, start: u64, end: u64) {
        self.settle_except(start, end, std::iter::empty());
    }

    /// Settle every offset of `start..end` but those of `handed` (sorted, within the
    /// range): what a following consumer does with each batch, handed its share of
    /// it. Past everything settled (the follower's path), O(1) plus O(1) per offset
    /// handed, kept in the span; elsewhere, written out as explicit ranges.
    pub fn settle_except(&mut self, start: u64, end: u64, handed: impl IntoIterator<Item = u64>) {
        if start >= end {
            return;
        }
        let extends = if self.span.is_active() {
            start == self.span.end
        } else {
            start >= self.explicit_end()
        };
        if extends {
            if !self.span.is_active() {
                self.span.start = start;
            }
            self.span.held.extend(handed);
            self.span.end = end;
            self.normalize();
            return;
        }
        self.write_out();
        let mut at = start;
        for o in handed {
            self.settle_explicit(at, o);
            at = o + 1;
        }
        self.settle_explicit(at, end);
    }

    /// Where the explicit ranges end (the span starts at or past it).
    fn explicit_end(&self) -> u64 {
        self.acked.last().map_or(self.committed, |r| r.1)
    }

    /// Write the span out as explicit ranges (something settles beyond its start
    /// out of order: rare, a consumer reading back or acking ahead).
    fn write_out(&mut self) {
        if !self.span.is_active() {
            return;
        }
        let Span { start, end, held } = std::mem::take(&mut self.span);
        let mut at = start;
        for &o in &held {
            self.settle_explicit(at, o);
            at = o + 1;
        }
        self.settle_explicit(at, end);
        let mut held = held;
        held.clear();
        self.span.held = held; // keep its room for the next span
    }

    /// Move `committed` into the span when nothing explicit is left before it: up
    /// to its first held offset.
    fn normalize(&mut self) {
        if !self.span.is_active() || !self.acked.is_empty() || self.committed < self.span.start {
            return;
        }
        let to = self.span.held.front().copied().unwrap_or(self.span.end);
        self.committed = to;
        self.span.start = to;
        if to == self.span.end {
            self.span.held.clear();
        }
        self.deliveries.remove_below(to);
    }

    /// `settle_unwanted` on the explicit ranges, which lie below the span.
    fn settle_explicit(&mut self, start: u64, end: u64) {
        let start = start.max(self.committed);
        if start >= end {
            return;
        }
        match self.acked.last_mut() {
            // Past everything settled: extend or append (the path of a follower).
            Some(last) if last.1 == start => {
                last.1 = end;
                return;
            }
            Some(last) if last.1 < start => {
                self.acked.push((start, end));
                return;
            }
            None if start > self.committed => {
                self.acked.push((start, end));
                return;
            }
            None => {
                self.committed = end;
                self.deliveries.remove_below(end);
                self.normalize();
                return;
            }
            Some(_) => {}
        }
        // The ranges that touch or overlap `start..end` merge with it into one.
        let i = self.acked.partition_point(|&(_, e)| e < start);
        let j = self.acked.partition_point(|&(s, _)| s <= end);
        let (mut s, mut e) = (start, end);
        if i < j {
            s = s.min(self.acked[i].0);
            e = e.max(self.acked[j - 1].1);
        }
        self.acked.splice(i..j, std::iter::once((s, e)));
        self.compact();
    }

    /// Mark `offset` settled. Returns false if it already was.
    pub fn ack(&mut self, offset: u64) -> bool {
        if self.span.is_active() && offset >= self.span.start {
            if offset < self.span.end {
                // In the span: settled unless held, and then settled now.
                let Ok(i) = self.span.held.binary_search(&offset) else {
                    return false;
                };
                self.span.held.remove(i);
                self.deliveries.remove(offset);
                self.normalize();
                return true;
            }
            self.write_out();
        }
        if self.is_settled(offset) {
            return false;
        }
        let i = self.acked.partition_point(|&(s, _)| s <= offset);
        self.acked.insert(i, (offset, offset + 1));
        // Merge with the neighbours.
        if i + 1 < self.acked.len() && self.acked[i].1 == self.acked[i + 1].0 {
            self.acked[i].1 = self.acked[i + 1].1;
            self.acked.remove(i + 1);
        }
        if i > 0 && self.acked[i - 1].1 == self.acked[i].0 {
            self.acked[i - 1].1 = self.acked[i].1;
            self.acked.remove(i);
        }
        self.deliveries.remove(offset);
        self.compact();
        true
    }

    /// Count one more delivery of `offset`; returns the new count.
    pub fn record_delivery(&mut self, offset: u64) -> u32 {
        self.deliveries.increment(offset)
    }

    /// Settle `offset` into the dead-letter list.
    pub fn dead_letter(&mut self, offset: u64, reason: &str, timestamp_ns: u64) {
        let deliveries = self.deliveries.get(offset).unwrap_or(0);
        if self.ack(offset) {
            let mut cut = reason.len().min(MAX_REASON);
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            let reason = reason[..cut].to_owned();
            self.dead_letters.push(DeadLetter {
                offset,
                deliveries,
                timestamp_ns,
                reason,
            });
        }
    }

    /// Drain one dead-letter entry.
    pub fn remove_dead_letter(&mut self, offset: u64) -> Option<DeadLetter> {
        let i = self.dead_letters.iter().position(|d| d.offset == offset)?;
        Some(self.dead_letters.remove(i))
    }

    fn compact(&mut self) {
        let merged = self
            .acked
            .iter()
            .take_while(|&&(s, _)| s <= self.committed)
            .count();
        if merged > 0 {
            self.committed = self.committed.max(self.acked[merged - 1].1);
            self.acked.drain(..merged);
        }
        // Only the prefix below `committed` can be settled here: pop it instead of
        // scanning every pending delivery (a retain per ack was O(n) per ack, O(n^2)
        // per acked batch).
        self.deliveries.remove_below(self.committed);
        self.normalize();
    }

    /// Every settled range at or beyond `committed`, explicit or in the span:
    /// sorted, disjoint, non-adjacent, each starting above `committed` (what
    /// `encode` writes).
    pub fn ranges(&self) -> Vec<(u64, u64)> {
        let mut out = self.acked.clone();
        if !self.span.is_active() {
            return out;
        }
        let mut add = |s: u64, e: u64| {
            if s >= e {
                return;
            }
            match out.last_mut() {
                Some(last) if last.1 == s => last.1 = e,
                _ => out.push((s, e)),
            }
        };
        let mut at = self.span.start;
        for &o in &self.span.held {
            add(at, o);
            at = o + 1;
        }
        add(at, self.span.end);
        out
    }

    /// Encode (see docs/FORMAT-LOG.md, "Cursor files"): version 2 with the owner,
    /// version 1 for a cursor without one.
    pub fn encode(&self) -> Vec<u8> {
        let room = self.acked.len() + self.span.held.len() + 1;
        let mut b = Vec::with_capacity(64 + room * 16 + self.deliveries.len() * 12);
        match &self.owner {
            Some(owner) => {
                b.extend_from_slice(MAGIC_OWNED);
                // Principal names are far shorter than 64 KiB (the policy checks them).
                let len = u16::try_from(owner.len()).unwrap_or(u16::MAX);
                b.extend_from_slice(&len.to_le_bytes());
                b.extend_from_slice(&owner.as_bytes()[..usize::from(len)]);
            }
            None => b.extend_from_slice(MAGIC),
        }
        b.extend_from_slice(&self.committed.to_le_bytes());
        let n = |x: usize| u32::try_from(x).unwrap_or(u32::MAX).to_le_bytes();
        let ranges = self.ranges();
        b.extend_from_slice(&n(ranges.len()));
        for &(s, e) in &ranges {
            b.extend_from_slice(&s.to_le_bytes());
            b.extend_from_slice(&e.to_le_bytes());
        }
        b.extend_from_slice(&n(self.deliveries.len()));
        for (o, c) in self.deliveries.iter() {
            b.extend_from_slice(&o.to_le_bytes());
            b.extend_from_slice(&c.to_le_bytes());
        }
        b.extend_from_slice(&n(self.dead_letters.len()));
        for d in &self.dead_letters {
            b.extend_from_slice(&d.offset.to_le_bytes());
            b.extend_from_slice(&d.deliveries.to_le_bytes());
            b.extend_from_slice(&d.timestamp_ns.to_le_bytes());
            b.extend_from_slice(&n(d.reason.len()));
            b.extend_from_slice(d.reason.as_bytes());
        }
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decode, verifying the checksum and every invariant. `Err((byte, reason))`.
    pub fn decode(bytes: &[u8]) -> std::result::Result<Cursor, (usize, String)> {
        if bytes.len() < MAGIC.len() + 8 + 12 + 4 {
            return Err((
                0,
                format!("cursor file is {} bytes, too short", bytes.len()),
            ));
        }
        let (body, tail) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
        if stored != crc32c::crc32c(body) {
            return Err((body.len(), "cursor checksum mismatch".into()));
        }
        let mut r = Reader { b: body, at: 8 };
        let owner = match &body[..8] {
            m if m == MAGIC => None,
            m if m == MAGIC_OWNED => {
                let len = usize::from(r.u16()?);
                let at = r.at;
                let owner = std::str::from_utf8(r.take(len)?)
                    .ok()
                    .filter(|o| !o.is_empty())
                    .ok_or_else(|| (at, "owner is not a principal name".to_owned()))?;
                Some(owner.to_owned())
            }
            _ => return Err((0, "not a sealbus cursor file (bad magic)".into())),
        };
        let mut c = Cursor {
            owner,
            committed: r.u64()?,
            ..Cursor::default()
        };
        for _ in 0..r.u32()? {
            let at = r.at;
            let (s, e) = (r.u64()?, r.u64()?);
            let prev_end = c.acked.last().map_or(c.committed, |x| x.1);
            if s >= e || s <= prev_end {
                return Err((at, format!("acked range [{s}, {e}) is out of order")));
            }
            c.acked.push((s, e));
        }
        for _ in 0..r.u32()? {
            let (o, n) = (r.u64()?, r.u32()?);
            c.deliveries.set(o, n);
        }
        for _ in 0..r.u32()? {
            let offset = r.u64()?;
            let deliveries = r.u32()?;
            let timestamp_ns = r.u64()?;
            let len = r.u32()? as usize;
            let at = r.at;
            let reason = String::from_utf8(r.take(len)?.to_vec())
                .map_err(|_| (at, "reason is not UTF-8".to_owned()))?;
            c.dead_letters.push(DeadLetter {
                offset,
                deliveries,
                timestamp_ns,
                reason,
            });
        }
        if r.at != body.len() {
            return Err((r.at, "trailing bytes after the cursor".into()));
        }
        Ok(c)
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> std::result::Result<&[u8], (usize, String)> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let Some(end) = end else {
            return Err((self.at, format!("truncated: {n} bytes needed")));
        };
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u16(&mut self) -> std::result::Result<u16, (usize, String)> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> std::result::Result<u32, (usize, String)> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> std::result::Result<u64, (usize, String)> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ack_merges_and_advances() {
        let mut c = Cursor::starting_at(10);
        assert!(c.ack(12));
        assert!(c.ack(14));
        assert!(c.ack(13));
        assert_eq!(c.acked, vec![(12, 15)]);
        assert_eq!(c.committed, 10);
        assert!(c.ack(10));
        assert!(!c.ack(10));
        assert_eq!(c.committed, 11);
        assert!(c.ack(11));
        assert_eq!((c.committed, c.acked.clone()), (15, vec![]));
        assert!(c.is_settled(3) && !c.is_settled(15));
    }

    proptest::proptest! {
        /// Acks of single offsets and settled ranges, in any order, agree with a set
        /// of settled offsets; the ranges stay sorted, disjoint and non-adjacent.
        #[test]
        fn settle_unwanted_agrees_with_a_set(
            start in 0u64..8,
            ops in proptest::collection::vec((0u64..64, 0u64..6, proptest::bool::ANY), 0..40),
        ) {
            let mut c = Cursor::starting_at(start);
            let mut model: std::collections::BTreeSet<u64> = (0..start).collect();
            for (at, len, range) in ops {
                if range {
                    c.settle_unwanted(at, at + len);
                    model.extend(at..at + len);
                } else {
                    c.ack(at);
                    model.insert(at);
                }
                let committed = (0..u64::MAX).find(|o| !model.contains(o)).unwrap_or(0);
                proptest::prop_assert_eq!(c.committed, committed);
                for o in 0..72 {
                    proptest::prop_assert_eq!(c.is_settled(o), model.contains(&o), "offset {}", o);
                }
                for w in c.acked.windows(2) {
                    proptest::prop_assert!(w[0].1 < w[1].0);
                }
                proptest::prop_assert!(c.acked.iter().all(|&(s, e)| s > c.committed && s < e));
            }
        }
    }

    proptest::proptest! {
        /// A follower's batches (settled but for the offsets handed), mixed with
        /// acks, ranges settled anywhere and deliveries, agree with a set of settled
        /// offsets, and encode to the same cursor as written out (in the span or not).
        #[test]
        fn settle_except_agrees_with_a_set(
            start in 0u64..4,
            ops in proptest::collection::vec(
                (0u8..4, 0u64..80, 1u64..12, proptest::collection::vec(proptest::bool::ANY, 12)),
                0..60,
            ),
        ) {
            let mut c = Cursor::starting_at(start);
            let mut model: std::collections::BTreeSet<u64> = (0..start).collect();
            let mut next = start;
            for (kind, at, len, picks) in ops {
                match kind {
                    0 | 1 => {
                        // The next batch of a follower, or one further on.
                        let from = if kind == 0 { next } else { next + at % 5 };
                        let handed: Vec<u64> = (from..from + len)
                            .zip(&picks)
                            .filter(|(_, &p)| p)
                            .map(|(o, _)| o)
                            .collect();
                        c.settle_except(from, from + len, handed.iter().copied());
                        model.extend((from..from + len).filter(|o| !handed.contains(o)));
                        // (A consumer is handed only what it has not settled.)
                        for &o in handed.iter().filter(|o| !model.contains(o)) {
                            c.record_delivery(o);
                        }
                        next = from + len;
                    }
                    2 => {
                        // Mostly in order, as a consumer acks; now and then anywhere.
                        let first = (0..next).find(|o| !model.contains(o));
                        let o = first.filter(|_| picks[0] || picks[1]).unwrap_or(at);
                        c.ack(o);
                        model.insert(o);
                    }
                    _ => {
                        c.settle_unwanted(at, at + len / 3);
                        model.extend(at..at + len / 3);
                    }
                }
                let committed = (0..u64::MAX).find(|o| !model.contains(o)).unwrap_or(0);
                proptest::prop_assert_eq!(c.committed, committed);
                for o in 0..100 {
                    proptest::prop_assert_eq!(c.is_settled(o), model.contains(&o), "offset {}", o);
                    if o < c.committed {
                        proptest::prop_assert_eq!(c.deliveries.get(o), None, "offset {}", o);
                    }
                }
                let ranges = c.ranges();
                for w in ranges.windows(2) {
                    proptest::prop_assert!(w[0].1 < w[1].0);
                }
                proptest::prop_assert!(ranges.iter().all(|&(s, e)| s > c.committed && s < e));
                let back = Cursor::decode(&c.encode()).unwrap();
                proptest::prop_assert_eq!(&back, &c);
                for o in 0..100 {
                    proptest::prop_assert_eq!(back.is_settled(o), model.contains(&o));
                }
            }
        }
    }

    #[test]
    fn deliveries_and_dead_letters() {
        let mut c = Cursor::starting_at(0);
        assert_eq!(c.record_delivery(1), 1);
        assert_eq!(c.record_delivery(1), 2);
        c.dead_letter(1, "handler failed", 99);
        assert_eq!(
            c.dead_letters[0],
            DeadLetter {
                offset: 1,
                deliveries: 2,
                timestamp_ns: 99,
                reason: "handler failed".into()
            }
        );
        assert!(c.is_settled(1));
        assert!(c.deliveries.is_empty());
        c.ack(0);
        assert_eq!(c.committed, 2);
        assert_eq!(c.remove_dead_letter(1).map(|d| d.offset), Some(1));
    }

    #[test]
    fn codec_round_trip_and_corruption() {
        for owner in [None, Some("analytics".to_owned())] {
            let mut c = Cursor::starting_at(5);
            c.owner = owner;
            c.ack(7);
            c.ack(9);
            c.record_delivery(6);
            c.dead_letter(11, "nope", 3);
            let b = c.encode();
            assert_eq!(Cursor::decode(&b).unwrap(), c);
            for bit in 0..b.len() * 8 {
                let mut x = b.clone();
                x[bit / 8] ^= 1 << (bit % 8);
                assert!(Cursor::decode(&x).is_err(), "bit {bit}");
            }
            for cut in 0..b.len() {
                assert!(Cursor::decode(&b[..cut]).is_err());
            }
        }
    }

    /// A version-1 file, as written before owners were recorded, still decodes (with
    /// no owner); a cursor with an owner is version 2 and names it.
    #[test]
    fn version_1_cursors_decode_without_an_owner() {
        let mut v1 = MAGIC.to_vec();
        v1.extend_from_slice(&42u64.to_le_bytes());
        v1.extend_from_slice(&[0; 12]);
        v1.extend_from_slice(&crc32c::crc32c(&v1).to_le_bytes());
        let c = Cursor::decode(&v1).unwrap();
        assert_eq!((c.owner.as_deref(), c.committed), (None, 42));
        assert_eq!(c.encode(), v1);
        let owned = Cursor {
            owner: Some("analytics".into()),
            ..c
        }
        .encode();
        assert_eq!(&owned[..8], MAGIC_OWNED);
        assert_eq!(&owned[8..10], &9u16.to_le_bytes());
        assert_eq!(&owned[10..19], b"analytics");
    }
}
