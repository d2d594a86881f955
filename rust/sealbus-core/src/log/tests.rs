//! Log tests: round trips, torn tails at every byte, bit flips everywhere, injected
//! I/O errors, group commit, retention, time lookups, and recovery properties.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use super::*;

fn opts(fsync: FsyncPolicy) -> LogOptions {
    LogOptions {
        fsync,
        segment_bytes: 4096,
        index_interval_bytes: 256,
        ..LogOptions::default()
    }
}

fn payload(i: u64) -> Vec<u8> {
    // Varying lengths, including empty payloads.
    let len = usize::try_from((i * 37) % 300).unwrap();
    (0..len)
        .map(|j| u8::try_from((usize::try_from(i).unwrap() + j) % 251).unwrap())
        .collect()
}

fn append_n(log: &Log, from: u64, n: u64, per_batch: u64) {
    let mut i = from;
    while i < from + n {
        let k = per_batch.min(from + n - i);
        let ps: Vec<Vec<u8>> = (i..i + k).map(payload).collect();
        let refs: Vec<&[u8]> = ps.iter().map(Vec::as_slice).collect();
        let offs = log.append_batch(&refs, 1_000 + i).unwrap();
        assert_eq!(offs, (i..i + k).collect::<Vec<_>>());
        i += k;
    }
}

fn read_all(log: &Log) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    let mut from = log.first_offset();
    loop {
        let got = log.read(from, 100, 1 << 20)?;
        let Some(last) = got.last() else { break };
        from = last.offset + 1;
        out.extend(got);
    }
    Ok(out)
}

fn check_prefix(log: &Log, n: u64) {
    let recs = read_all(log).unwrap();
    assert_eq!(recs.len() as u64, n);
    for (i, r) in recs.iter().enumerate() {
        let i = i as u64;
        assert_eq!(r.offset, i);
        assert_eq!(r.timestamp_ns, 1_000 + i); // callers append one record per batch
        assert_eq!(r.payload, payload(i));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// How many records of a segment file survive a cut at `cut`: the records of the
/// appends that are whole before it (an append is all or nothing).
fn whole_appends_before(bytes: &[u8], cut: usize) -> (u64, usize) {
    let mut at = record::SEGMENT_HEADER_LEN;
    let (mut n, mut keep_n, mut keep_at) = (0u64, 0u64, at);
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let more = bytes[at + 29] & record::FLAG_MORE != 0;
        at += record::RECORD_HEADER_LEN + len;
        if at > cut {
            break;
        }
        n += 1;
        if !more {
            (keep_n, keep_at) = (n, at);
        }
    }
    (keep_n, keep_at)
}

/// Byte positions where each record of a segment file starts, plus the end.
fn record_bounds(bytes: &[u8]) -> Vec<usize> {
    let mut v = vec![record::SEGMENT_HEADER_LEN];
    let mut at = record::SEGMENT_HEADER_LEN;
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        at += record::RECORD_HEADER_LEN + len;
        v.push(at);
    }
    v
}

#[test]
fn append_read_reopen_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), opts(FsyncPolicy::Batch)).unwrap();
        assert_eq!((log.first_offset(), log.next_offset()), (0, 0));
        append_n(&log, 0, 120, 1);
        assert!(log.segments().len() > 3, "small segments must roll");
        check_prefix(&log, 120);
        log.close().unwrap();
        assert!(matches!(
            log.append_batch(&[b"x"], 1),
            Err(Error::Closed { .. })
        ));
    }
    let log = Log::open(dir.path(), opts(FsyncPolicy::Batch)).unwrap();
    assert_eq!(log.next_offset(), 120);
    assert_eq!(log.stats().recovery.truncated_bytes, 0);
    check_prefix(&log, 120);
    append_n(&log, 120, 10, 1);
    check_prefix(&log, 130);
    // Reads from the middle, with limits.
    let got = log.read(57, 3, usize::MAX).unwrap();
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![57, 58, 59]
    );
    let got = log.read(57, 100, 1).unwrap();
    assert_eq!(got.len(), 1, "max_bytes still returns one record");
    assert!(log.read(130, 10, 1000).unwrap().is_empty());
    let segs = log.segments();
    for w in segs.windows(2) {
        assert_eq!(w[0].next_offset, w[1].base_offset);
    }
    assert!(segs.last().unwrap().active);
    log.verify().unwrap();
}

#[test]
fn an_append_never_spans_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts(FsyncPolicy::Always)).unwrap();
    log.append_batch(&[b"small"], 1).unwrap();
    // 200 x 132 bytes > one 4 KiB segment: it rolls first, then goes whole into one.
    let ps: Vec<Vec<u8>> = (0..200).map(|_| vec![7u8; 100]).collect();
    let refs: Vec<&[u8]> = ps.iter().map(Vec::as_slice).collect();
    assert_eq!(
        log.append_batch(&refs, 5).unwrap(),
        (1..201).collect::<Vec<_>>()
    );
    let segs = log.segments();
    assert_eq!(segs.len(), 2);
    assert_eq!((segs[1].base_offset, segs[1].next_offset), (1, 201));
    log.append_batch(&[b"next"], 6).unwrap();
    assert_eq!(log.segments().len(), 3);
    drop(log);
    let log = Log::open(dir.path(), opts(FsyncPolicy::Always)).unwrap();
    assert_eq!(read_all(&log).unwrap().len(), 202);
}

#[test]
fn bad_arguments_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bad = LogOptions {
        segment_bytes: 10,
        ..LogOptions::default()
    };
    assert!(matches!(
        Log::open(dir.path(), bad),
        Err(Error::InvalidArgument { .. })
    ));
    let o = LogOptions {
        max_record_bytes: 10,
        ..opts(FsyncPolicy::Never)
    };
    let log = Log::open(dir.path(), o).unwrap();
    let err = log
        .append_batch(&[b"ok", b"this is too long"], 1)
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { ref name, .. } if name == "payloads[1]"),
        "{err}"
    );
    assert_eq!(log.append_batch(&[], 1).unwrap(), Vec::<u64>::new());
    assert_eq!(log.next_offset(), 0);
    assert!(FsyncPolicy::parse("sometimes").is_err());
}

/// Cut the last segment at every byte inside its last records: recovery keeps exactly
/// the whole records before the cut, and appends continue from there.
#[test]
fn torn_tail_at_every_byte() {
    let src = scratch();
    {
        let log = Log::open(
            src.path(),
            LogOptions {
                segment_bytes: 1 << 20,
                ..opts(FsyncPolicy::Batch)
            },
        )
        .unwrap();
        append_n(&log, 0, 12, 1);
    }
    let seg = segment::segment_name(0);
    let full = fs::read(src.path().join(&seg)).unwrap();
    let bounds = record_bounds(&full);
    let from = bounds[bounds.len() - 5];
    for cut in from..=full.len() {
        let d = scratch();
        copy_dir(src.path(), d.path());
        fs::write(d.path().join(&seg), &full[..cut]).unwrap();
        let whole = bounds.iter().filter(|&&b| b <= cut).count() as u64 - 1;
        let log = Log::open(d.path(), opts(FsyncPolicy::Batch)).unwrap();
        assert_eq!(log.next_offset(), whole, "cut at {cut}");
        let kept = bounds[usize::try_from(whole).unwrap()];
        assert_eq!(log.stats().recovery.truncated_bytes, (cut - kept) as u64);
        assert_eq!(
            fs::metadata(d.path().join(&seg)).unwrap().len(),
            kept as u64
        );
        check_prefix(&log, whole);
        append_n(&log, whole, 2, 1);
        check_prefix(&log, whole + 2);
    }
}

/// The same with appends of three records: a cut anywhere keeps whole appends only.
#[test]
fn torn_multi_record_append_is_dropped_whole() {
    let src = scratch();
    {
        let log = Log::open(
            src.path(),
            LogOptions {
                segment_bytes: 1 << 20,
                ..opts(FsyncPolicy::Batch)
            },
        )
        .unwrap();
        append_n(&log, 0, 15, 3);
    }
    let seg = segment::segment_name(0);
    let full = fs::read(src.path().join(&seg)).unwrap();
    let bounds = record_bounds(&full);
    for cut in bounds[bounds.len() - 8]..=full.len() {
        let d = scratch();
        copy_dir(src.path(), d.path());
        fs::write(d.path().join(&seg), &full[..cut]).unwrap();
        let (whole, kept) = whole_appends_before(&full, cut);
        assert_eq!(whole % 3, 0);
        let log = Log::open(d.path(), opts(FsyncPolicy::Batch)).unwrap();
        assert_eq!(log.next_offset(), whole, "cut at {cut}");
        assert_eq!(
            fs::metadata(d.path().join(&seg)).unwrap().len(),
            kept as u64
        );
        let recs = read_all(&log).unwrap();
        assert!(recs
            .iter()
            .enumerate()
            .all(|(i, r)| r.payload == payload(i as u64)));
        assert_eq!(
            log.append_batch(&[b"a", b"b"], 1).unwrap(),
            vec![whole, whole + 1]
        );
        drop(log);
        let log = Log::open(d.path(), opts(FsyncPolicy::Batch)).unwrap();
        assert_eq!(log.next_offset(), whole + 2);
    }
}

#[test]
fn torn_segment_creation_is_removed() {
    let src = scratch();
    {
        let log = Log::open(src.path(), opts(FsyncPolicy::Batch)).unwrap();
        append_n(&log, 0, 30, 1);
    }
    let segs: Vec<SegmentInfo> = Log::open_read_only(src.path()).unwrap().segments();
    let last = segs.last().unwrap().clone();
    let next = last.next_offset;
    // A new segment whose header was cut, or zero-filled.
    for content in [vec![], b"SBUS".to_vec(), vec![0u8; 32], vec![0u8; 100]] {
        let d = scratch();
        copy_dir(src.path(), d.path());
        fs::write(d.path().join(segment::segment_name(next)), &content).unwrap();
        let log = Log::open(d.path(), opts(FsyncPolicy::Batch)).unwrap();
        assert_eq!(log.next_offset(), next);
        append_n(&log, next, 3, 1);
        check_prefix(&log, next + 3);
    }
    // A zero-filled tail after whole records (power loss after a size update).
    let d = scratch();
    copy_dir(src.path(), d.path());
    let p = d.path().join(&last.file);
    let mut bytes = fs::read(&p).unwrap();
    bytes.extend_from_slice(&[0u8; 700]);
    fs::write(&p, bytes).unwrap();
    let log = Log::open(d.path(), opts(FsyncPolicy::Batch)).unwrap();
    assert_eq!(log.next_offset(), next);
    assert_eq!(log.stats().recovery.truncated_bytes, 700);
}

#[test]
fn read_only_open_changes_nothing() {
    let src = tempfile::tempdir().unwrap();
    {
        let log = Log::open(src.path(), opts(FsyncPolicy::Batch)).unwrap();
        append_n(&log, 0, 5, 1);
    }
    let p = src.path().join(segment::segment_name(0));
    let mut bytes = fs::read(&p).unwrap();
    bytes.truncate(bytes.len() - 3);
    fs::write(&p, &bytes).unwrap();
    let log = Log::open_read_only(src.path()).unwrap();
    assert_eq!(log.next_offset(), 4);
    assert!(log.stats().recovery.truncated_bytes > 0);
    assert_eq!(
        fs::read(&p).unwrap(),
        bytes,
        "read-only open must not repair"
    );
    assert!(matches!(
        log.append_batch(&[b"x"], 1),
        Err(Error::Closed { .. })
    ));
}

/// A scratch directory in memory when the machine has one: the flip and tear loops
/// rewrite files thousands of times and need no real disk.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().unwrap()
}

/// Make `to` hold exactly the files of `from` (sizes and bytes), rewriting in place.
fn restore(from: &[(std::ffi::OsString, Vec<u8>)], to: &Path) {
    for e in fs::read_dir(to).unwrap() {
        let e = e.unwrap();
        if !from.iter().any(|(n, _)| *n == e.file_name()) {
            fs::remove_file(e.path()).unwrap();
        }
    }
    for (n, b) in from {
        fs::write(to.join(n), b).unwrap();
    }
}

fn snapshot_dir(dir: &Path) -> Vec<(std::ffi::OsString, Vec<u8>)> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name(), fs::read(e.path()).unwrap())
        })
        .collect()
}

/// Flip every bit of a small log's segment files: each flip is reported as
/// `LogCorrupted` naming the segment and the offset of the damaged record, at open or
/// by `verify`, and never turns into a silent loss or a changed record.
#[test]
fn every_bit_flip_is_detected_with_its_offset() {
    let src = scratch();
    let o = LogOptions {
        segment_bytes: 512,
        index_interval_bytes: 64,
        ..opts(FsyncPolicy::Never)
    };
    {
        let log = Log::open(src.path(), o.clone()).unwrap();
        for i in 0..10u64 {
            // Appends of one and of two records.
            let p = [u8::try_from(i).unwrap(); 40];
            if i % 3 == 0 {
                log.append_batch(&[&p[..], &p[..5]], i).unwrap();
            } else {
                log.append_batch(&[&p[..]], i).unwrap();
            }
        }
        assert!(log.segments().len() >= 2);
    }
    let infos = Log::open_read_only(src.path()).unwrap().segments();
    let original = snapshot_dir(src.path());
    let work = scratch();
    let mut checked = 0;
    for info in &infos {
        let bytes = fs::read(src.path().join(&info.file)).unwrap();
        let bounds = record_bounds(&bytes);
        for bit in 0..bytes.len() * 8 {
            let byte = bit / 8;
            let expected_offset = if byte < record::SEGMENT_HEADER_LEN {
                info.base_offset
            } else {
                info.base_offset + bounds.iter().filter(|&&b| b <= byte).count() as u64 - 1
            };
            restore(&original, work.path());
            let mut b = bytes.clone();
            b[byte] ^= 1 << (bit % 8);
            fs::write(work.path().join(&info.file), &b).unwrap();
            let outcome = Log::open(work.path(), o.clone()).and_then(|log| {
                // Reads stop at the damage too.
                let r = read_all(&log);
                log.verify()?;
                r
            });
            match outcome {
                Err(Error::LogCorrupted {
                    segment, offset, ..
                }) => {
                    assert_eq!(segment, info.file, "bit {bit} of {}", info.file);
                    assert_eq!(offset, expected_offset, "bit {bit} of {}", info.file);
                }
                other => panic!("bit {bit} of {}: not detected: {other:?}", info.file),
            }
            checked += 1;
        }
    }
    assert!(checked > 8 * 500, "{checked}");
}

/// Index files are derived data: a flipped bit there is caught by the entry checksum,
/// the rest of the index is rebuilt, and every record still reads back.
#[test]
fn index_flips_are_repaired() {
    let src = scratch();
    let o = LogOptions {
        segment_bytes: 1 << 20,
        index_interval_bytes: 64,
        ..opts(FsyncPolicy::Batch)
    };
    {
        let log = Log::open(src.path(), o.clone()).unwrap();
        append_n(&log, 0, 20, 1);
    }
    let idx = src.path().join(segment::index_name(0));
    let bytes = fs::read(&idx).unwrap();
    assert!(bytes.len() >= 5 * index::INDEX_ENTRY_LEN);
    for bit in (0..bytes.len() * 8).step_by(3) {
        let d = scratch();
        copy_dir(src.path(), d.path());
        let mut b = bytes.clone();
        b[bit / 8] ^= 1 << (bit % 8);
        fs::write(d.path().join(segment::index_name(0)), &b).unwrap();
        let log = Log::open(d.path(), o.clone()).unwrap();
        assert!(log.stats().recovery.index_entries_rebuilt > 0, "bit {bit}");
        check_prefix(&log, 20);
        assert_eq!(
            fs::read(d.path().join(segment::index_name(0))).unwrap(),
            bytes,
            "index rewritten"
        );
    }
    // A missing index is rebuilt too.
    let d = scratch();
    copy_dir(src.path(), d.path());
    fs::remove_file(d.path().join(segment::index_name(0))).unwrap();
    let log = Log::open(d.path(), o).unwrap();
    check_prefix(&log, 20);
}

#[test]
fn missing_middle_segment_is_corruption() {
    let src = tempfile::tempdir().unwrap();
    {
        let log = Log::open(src.path(), opts(FsyncPolicy::Batch)).unwrap();
        append_n(&log, 0, 80, 1);
    }
    let segs = Log::open_read_only(src.path()).unwrap().segments();
    assert!(segs.len() >= 3);
    fs::remove_file(src.path().join(&segs[1].file)).unwrap();
    match Log::open(src.path(), opts(FsyncPolicy::Batch)) {
        Err(Error::LogCorrupted {
            segment, offset, ..
        }) => {
            assert_eq!(segment, segs[2].file);
            assert_eq!(offset, segs[2].base_offset);
        }
        other => panic!("{other:?}"),
    }
}

/// Fail the Nth write or fsync: the append fails with `LogIo`, every later append
/// with `LogFailed`; after reopening, every acknowledged record is there exactly once
/// and nothing that was never appended is.
#[test]
fn injected_io_errors_fail_stop() {
    for fail_fsync in [false, true] {
        for n in 1..=12u64 {
            let dir = tempfile::tempdir().unwrap();
            let real: Arc<dyn Storage> = Arc::new(FileStorage::new(dir.path()).unwrap());
            let (faulty, plan) = FaultyStorage::new(Arc::clone(&real));
            let o = LogOptions {
                segment_bytes: 2048,
                index_interval_bytes: 128,
                ..opts(FsyncPolicy::Batch)
            };
            let log = Log::open_with_storage(Arc::new(faulty), o.clone()).unwrap();
            if fail_fsync {
                plan.fail_fsync_on(n);
            } else {
                plan.fail_write_on(n);
            }
            let mut acked = Vec::new();
            let mut failed_at = None;
            for i in 0..40u64 {
                match log.append_batch(&[&payload(i)[..], &payload(i + 1000)[..]], i) {
                    Ok(offs) => acked.push((offs, i)),
                    Err(Error::LogIo { .. }) => {
                        failed_at = Some(i);
                        break;
                    }
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            let i =
                failed_at.unwrap_or_else(|| panic!("fault {n} never fired (fsync={fail_fsync})"));
            assert!(matches!(
                log.append_batch(&[b"after"], 0),
                Err(Error::LogFailed { .. })
            ));
            assert!(log.stats().failed);
            // Reads of what was acknowledged still work before reopening.
            assert_eq!(
                log.read(0, 1000, usize::MAX).unwrap().len(),
                acked.len() * 2
            );
            drop(log);

            let log = Log::open(dir.path(), o).unwrap();
            let recs = read_all(&log).unwrap();
            for (offs, i) in &acked {
                assert_eq!(recs[usize::try_from(offs[0]).unwrap()].payload, payload(*i));
                assert_eq!(
                    recs[usize::try_from(offs[1]).unwrap()].payload,
                    payload(i + 1000)
                );
            }
            // Beyond the acknowledged: at most the failed batch, whole.
            let extra = recs.len() - acked.len() * 2;
            assert!(extra == 0 || extra == 2, "extra {extra}");
            if extra == 2 {
                assert_eq!(recs[acked.len() * 2].payload, payload(i));
            }
            log.verify().unwrap();
        }
    }
}

/// A storage whose file fsyncs wait while its gate is shut: a test holds the leader
/// inside its fsync until the other appenders have queued behind it.
#[derive(Debug)]
struct GatedStorage {
    inner: Arc<dyn Storage>,
    gate: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
}

#[derive(Debug)]
struct GatedFile {
    inner: Arc<dyn StorageFile>,
    gate: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
}

impl Storage for GatedStorage {
    fn path_of(&self, name: &str) -> String {
        self.inner.path_of(name)
    }
    fn list(&self) -> std::io::Result<Vec<String>> {
        self.inner.list()
    }
    fn open(&self, name: &str, create: bool) -> std::io::Result<Arc<dyn StorageFile>> {
        Ok(Arc::new(GatedFile {
            inner: self.inner.open(name, create)?,
            gate: Arc::clone(&self.gate),
        }))
    }
    fn remove(&self, name: &str) -> std::io::Result<()> {
        self.inner.remove(name)
    }
    fn rename(&self, from: &str, to: &str) -> std::io::Result<()> {
        self.inner.rename(from, to)
    }
    fn fsync_dir(&self) -> std::io::Result<()> {
        self.inner.fsync_dir()
    }
}

impl StorageFile for GatedFile {
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.inner.read_at(pos, buf)
    }
    fn write_at(&self, pos: u64, data: &[u8]) -> std::io::Result<()> {
        self.inner.write_at(pos, data)
    }
    fn fsync(&self) -> std::io::Result<()> {
        let (open, cv) = &*self.gate;
        let mut g = open.lock().unwrap();
        while !*g {
            g = cv.wait(g).unwrap();
        }
        drop(g);
        self.inner.fsync()
    }
    fn truncate(&self, len: u64) -> std::io::Result<()> {
        self.inner.truncate(len)
    }
}

/// Group commit, made deterministic: the first append's fsync is held until the
/// other seven appends are queued, so they must all share the next one (2 fsyncs for
/// 8 appends). Timing alone decided this before, and a busy machine could fail it.
#[test]
fn group_commit_shares_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new((std::sync::Mutex::new(true), std::sync::Condvar::new()));
    let storage = GatedStorage {
        inner: Arc::new(FileStorage::new(dir.path()).unwrap()),
        gate: Arc::clone(&gate),
    };
    let o = LogOptions {
        segment_bytes: 64 << 20,
        ..opts(FsyncPolicy::Batch)
    };
    let log = Arc::new(Log::open_with_storage(Arc::new(storage), o).unwrap());
    let fsyncs0 = log.stats().fsyncs;
    *gate.0.lock().unwrap() = false;
    let threads = 8;
    let spawn = |t: usize| {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            let p = format!("t{t}");
            (log.append_batch(&[p.as_bytes()], 1).unwrap()[0], p)
        })
    };
    let mut handles = vec![spawn(0)];
    // The first appender is the leader, waiting in its fsync with nothing queued.
    let until = |want: usize| {
        for _ in 0..100_000 {
            let q = lock(&log.queue);
            if q.leader && q.pending.len() == want {
                return;
            }
            drop(q);
            std::thread::yield_now();
        }
        panic!("the appenders never queued");
    };
    until(0);
    handles.extend((1..threads).map(spawn));
    until(threads - 1);
    {
        let (open, cv) = &*gate;
        *open.lock().unwrap() = true;
        cv.notify_all();
    }
    let mut all: Vec<(u64, String)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    all.sort();
    let recs = log.read(0, 10_000, usize::MAX).unwrap();
    assert_eq!(recs.len(), threads);
    for ((o, p), r) in all.iter().zip(&recs) {
        assert_eq!((*o, p.as_bytes()), (r.offset, &r.payload[..]));
    }
    let s = log.stats();
    assert_eq!(s.appends, threads as u64);
    assert_eq!(
        s.fsyncs - fsyncs0,
        2,
        "the seven queued appends share one fsync"
    );
}

#[test]
fn always_fsyncs_every_append() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        dir.path(),
        LogOptions {
            segment_bytes: 64 << 20,
            ..opts(FsyncPolicy::Always)
        },
    )
    .unwrap();
    append_n(&log, 0, 10, 1);
    assert_eq!(log.stats().fsyncs, 10);
    let log2dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        log2dir.path(),
        LogOptions {
            segment_bytes: 64 << 20,
            ..opts(FsyncPolicy::Never)
        },
    )
    .unwrap();
    append_n(&log, 0, 10, 1);
    assert_eq!(log.stats().fsyncs, 0);
}

#[test]
fn readers_run_alongside_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::open(dir.path(), opts(FsyncPolicy::Never)).unwrap());
    let w = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || append_n(&log, 0, 2000, 7))
    };
    let mut seen = 0u64;
    while seen < 2000 {
        for r in log.read(seen, 50, usize::MAX).unwrap() {
            assert_eq!(r.offset, seen);
            assert_eq!(r.payload, payload(seen));
            seen += 1;
        }
    }
    w.join().unwrap();
}

#[test]
fn offset_for_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), opts(FsyncPolicy::Never)).unwrap();
    for i in 0..100u64 {
        log.append_batch(&[&[0u8; 100][..]], 1_000 + i * 10)
            .unwrap();
    }
    assert_eq!(log.offset_for_time(0).unwrap(), 0);
    assert_eq!(log.offset_for_time(1_000).unwrap(), 0);
    assert_eq!(log.offset_for_time(1_001).unwrap(), 1);
    assert_eq!(log.offset_for_time(1_500).unwrap(), 50);
    assert_eq!(log.offset_for_time(1_990).unwrap(), 99);
    assert_eq!(log.offset_for_time(5_000).unwrap(), 100);
    // Non-monotonic timestamps: the first record at or after the time.
    log.append_batch(&[b"old"], 10).unwrap();
    log.append_batch(&[b"new"], 9_000).unwrap();
    assert_eq!(log.offset_for_time(5_000).unwrap(), 101);
}

#[test]
fn retention_by_bytes_and_age_respects_consumers() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(FsyncPolicy::Never);
    o.retention = Retention {
        max_age: None,
        max_bytes: Some(8 * 1024),
        respect_consumers: true,
    };
    let log = Log::open(dir.path(), o.clone()).unwrap();
    append_n(&log, 0, 200, 4);
    let before = log.segments();
    assert!(before.len() > 4);
    // A consumer still needs offset 0: nothing goes.
    let r = log.apply_retention(Some(0)).unwrap();
    assert_eq!((r.segments_deleted, r.segments_kept_for_consumers), (0, 1));
    // The consumer moved past the third segment.
    let r = log.apply_retention(Some(before[3].base_offset)).unwrap();
    assert_eq!(r.segments_deleted, 3);
    assert_eq!(r.needed_records_deleted, 0);
    assert_eq!(log.first_offset(), before[3].base_offset);
    assert!(!dir.path().join(&before[0].file).exists());
    // Reading below the first offset starts at the first record kept.
    assert_eq!(
        log.read(0, 1, usize::MAX).unwrap()[0].offset,
        before[3].base_offset
    );
    // Without a consumer, down to the size limit; the active segment always stays.
    let r = log.apply_retention(None).unwrap();
    assert!(
        log.stats().bytes <= 8 * 1024 || log.segments().len() == 1,
        "{r:?}"
    );
    drop(log);
    let log = Log::open(dir.path(), o.clone()).unwrap();
    assert_eq!(log.next_offset(), 200);
    assert_eq!(read_all(&log).unwrap().last().unwrap().offset, 199);

    // By age, with a policy that overrides consumers: counted and reported.
    let dir = tempfile::tempdir().unwrap();
    o.retention = Retention {
        max_age: Some(Duration::from_mins(1)),
        max_bytes: None,
        respect_consumers: false,
    };
    let log = Log::open(dir.path(), o).unwrap();
    append_n(&log, 0, 100, 4); // timestamps ~1_000 ns: ancient
    let now = 1_000 + 100 + 60_000_000_000;
    let segs = log.segments();
    let r = log.apply_retention_at(now, Some(10)).unwrap();
    assert_eq!(usize::try_from(r.segments_deleted).unwrap(), segs.len() - 1);
    assert_eq!(
        r.needed_records_deleted,
        segs[segs.len() - 1].base_offset - 10
    );
    assert_eq!(
        log.stats().retention_needed_records_deleted,
        r.needed_records_deleted
    );
    // Nothing is old relative to an early "now".
    assert_eq!(log.apply_retention_at(0, None).unwrap().segments_deleted, 0);
}

#[test]
fn cursor_store_survives_reopen_and_drives_retention() {
    let dir = tempfile::tempdir().unwrap();
    let store = CursorStore::open(&dir.path().join("cursors")).unwrap();
    let mut c = Cursor::starting_at(0);
    for o in [0, 1, 2, 4] {
        c.ack(o);
    }
    c.record_delivery(3);
    store.save("shipping", &c).unwrap();
    drop(store);
    let store = CursorStore::open(&dir.path().join("cursors")).unwrap();
    let back = store.load("shipping").unwrap().unwrap();
    assert_eq!(back.committed, 3);
    assert!(back.is_settled(4) && !back.is_settled(3));
    assert_eq!(back.deliveries.get(3), Some(1));
    assert_eq!(store.min_committed().unwrap(), Some(3));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Append random batches, cut the last segment anywhere, reopen: exactly the whole
    /// records before the cut survive, in order, and appending continues.
    #[test]
    fn recovery_keeps_exactly_the_whole_records(
        batches in proptest::collection::vec(proptest::collection::vec(0usize..400, 1..6), 1..12),
        cut_frac in 0.0f64..1.0,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let o = LogOptions { segment_bytes: 2048, index_interval_bytes: 100, ..opts(FsyncPolicy::Never) };
        let mut expect: Vec<Vec<u8>> = Vec::new();
        {
            let log = Log::open(dir.path(), o.clone()).unwrap();
            for b in &batches {
                let ps: Vec<Vec<u8>> = b.iter().enumerate().map(|(j, &l)| vec![u8::try_from((expect.len() + j) % 256).unwrap(); l]).collect();
                let refs: Vec<&[u8]> = ps.iter().map(Vec::as_slice).collect();
                log.append_batch(&refs, 7).unwrap();
                expect.extend(ps);
            }
        }
        let segs = Log::open_read_only(dir.path()).unwrap().segments();
        let last = segs.last().unwrap();
        let p = dir.path().join(&last.file);
        let bytes = fs::read(&p).unwrap();
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let cut = record::SEGMENT_HEADER_LEN + ((bytes.len() - record::SEGMENT_HEADER_LEN) as f64 * cut_frac) as usize;
        fs::write(&p, &bytes[..cut]).unwrap();
        let n = last.base_offset + whole_appends_before(&bytes, cut).0;
        let log = Log::open(dir.path(), o).unwrap();
        prop_assert_eq!(log.next_offset(), n);
        let recs = read_all(&log).unwrap();
        prop_assert_eq!(recs.len() as u64, n);
        for (r, e) in recs.iter().zip(&expect) {
            prop_assert_eq!(&r.payload, e);
        }
        prop_assert_eq!(log.append_batch(&[b"more"], 8).unwrap(), vec![n]);
    }
}

/// One step of a power-loss history.
#[derive(Debug, Clone)]
enum PowerOp {
    /// Append a batch of payloads of these lengths.
    Append(Vec<usize>),
    /// Save the consumer cursor at the log's end.
    SaveCursor,
    /// Cut the power; this share (0..=255) of each file's unsynced tail survives anyway.
    Cut(u8),
}

fn power_op() -> impl Strategy<Value = PowerOp> {
    prop_oneof![
        6 => proptest::collection::vec(0usize..300, 1..6).prop_map(PowerOp::Append),
        1 => Just(PowerOp::SaveCursor),
        2 => any::<u8>().prop_map(PowerOp::Cut),
    ]
}

/// Run `ops` against a log on storage that forgets unsynced writes. Returns how many
/// acknowledged records the cuts lost.
fn power_history(fsync: FsyncPolicy, ops: &[PowerOp]) -> u64 {
    let fs = ForgetfulStorage::new();
    let storage = || -> Arc<dyn Storage> { Arc::new(Arc::clone(&fs)) };
    let o = LogOptions {
        segment_bytes: 1024,
        index_interval_bytes: 100,
        ..opts(fsync)
    };
    let mut log = Log::open_with_storage(storage(), o.clone()).unwrap();
    let mut cursors = CursorStore::with_storage(storage()).unwrap();
    // Every append attempted, as (first offset, payloads); `acked` of them returned.
    let mut appended: Vec<Vec<u8>> = Vec::new();
    let mut acked = 0usize;
    let mut saved: Option<u64> = None;
    let mut lost = 0u64;
    for op in ops {
        match op {
            PowerOp::Append(lens) => {
                let ps: Vec<Vec<u8>> = lens
                    .iter()
                    .enumerate()
                    .map(|(j, &l)| vec![u8::try_from((appended.len() + j) % 251).unwrap(); l])
                    .collect();
                let refs: Vec<&[u8]> = ps.iter().map(Vec::as_slice).collect();
                let offs = log.append_batch(&refs, 5).unwrap();
                assert_eq!(offs[0], appended.len() as u64);
                appended.extend(ps);
                acked = appended.len();
            }
            PowerOp::SaveCursor => {
                let c = Cursor::starting_at(log.next_offset());
                cursors.save("c", &c).unwrap();
                saved = Some(c.committed);
            }
            PowerOp::Cut(share) => {
                fs.power_cut(&mut |n| n * usize::from(*share) / 255);
                drop(log);
                log = Log::open_with_storage(storage(), o.clone()).unwrap();
                cursors = CursorStore::with_storage(storage()).unwrap();
                let recs = read_all(&log).unwrap();
                // What survived is a prefix of what was appended, intact.
                assert!(recs.len() <= appended.len());
                for (i, r) in recs.iter().enumerate() {
                    assert_eq!(r.offset, i as u64);
                    assert_eq!(r.payload, appended[i], "record {i} damaged");
                }
                lost += acked.saturating_sub(recs.len()) as u64;
                appended.truncate(recs.len());
                acked = recs.len();
                // A saved cursor is durable under every policy (its file is fsynced).
                let back = cursors.load("c").unwrap().map(|c| c.committed);
                assert_eq!(back, saved, "a saved cursor did not survive");
            }
        }
    }
    lost
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    /// Under `fsync="batch"` and `"always"` no power cut loses an acknowledged append,
    /// whatever part of the unsynced writes the disk kept; what survives is always a
    /// prefix of whole appends, and saved cursors survive.
    #[test]
    fn power_cuts_lose_no_acknowledged_append(
        always in any::<bool>(),
        ops in proptest::collection::vec(power_op(), 1..40),
    ) {
        let fsync = if always { FsyncPolicy::Always } else { FsyncPolicy::Batch };
        prop_assert_eq!(power_history(fsync, &ops), 0);
    }
}

/// The control: without fsync, a power cut loses acknowledged appends. If it did not,
/// the storage would not be forgetting anything and the properties above would be blind.
#[test]
fn power_cut_without_fsync_loses_acknowledged_appends() {
    let ops = [
        PowerOp::Append(vec![10, 20]),
        PowerOp::Append(vec![30]),
        PowerOp::Cut(0),
    ];
    assert_eq!(power_history(FsyncPolicy::Never, &ops), 3);
    assert_eq!(power_history(FsyncPolicy::Batch, &ops), 0);
}

/// Records written but never fsynced (a process that died before its fsync) are
/// served once the log is reopened; a power cut after that must not take them back,
/// or the offsets consumers have acknowledged would be handed to new events.
#[test]
fn what_a_reopened_log_serves_outlives_a_later_power_cut() {
    let fs = ForgetfulStorage::new();
    let storage = || -> Arc<dyn Storage> { Arc::new(Arc::clone(&fs)) };
    let log = Log::open_with_storage(storage(), opts(FsyncPolicy::Never)).unwrap();
    log.append_batch(&[b"one".as_slice(), b"two".as_slice()], 5)
        .unwrap();
    drop(log);
    let log = Log::open_with_storage(storage(), opts(FsyncPolicy::Batch)).unwrap();
    assert_eq!(
        read_all(&log).unwrap().len(),
        2,
        "the page cache still holds them"
    );
    drop(log);
    fs.power_cut(&mut |_| 0);
    let log = Log::open_with_storage(storage(), opts(FsyncPolicy::Batch)).unwrap();
    let recs = read_all(&log).unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[1].payload, b"two");
}

/// After a cut, the bytes that survived it are on the disk: a second cut keeps them.
#[test]
fn what_survives_a_power_cut_survives_the_next() {
    let fs = ForgetfulStorage::new();
    let s: Arc<dyn Storage> = Arc::new(Arc::clone(&fs));
    let a = s.open("a", true).unwrap();
    s.fsync_dir().unwrap();
    a.write_at(0, b"written back").unwrap();
    fs.power_cut(&mut |n| n);
    assert_eq!(fs.contents("a").unwrap(), b"written back");
    fs.power_cut(&mut |_| 0);
    assert_eq!(fs.contents("a").unwrap(), b"written back");
}

#[test]
fn forgetful_storage_keeps_only_what_was_synced() {
    let fs = ForgetfulStorage::new();
    let s: Arc<dyn Storage> = Arc::new(Arc::clone(&fs));
    let a = s.open("a", true).unwrap();
    a.write_at(0, b"synced").unwrap();
    a.fsync().unwrap();
    a.write_at(6, b" lost").unwrap();
    s.open("b", true).unwrap().write_at(0, b"b").unwrap();
    s.fsync_dir().unwrap();
    s.rename("b", "c").unwrap(); // not durable: no directory fsync after it
    fs.power_cut(&mut |_| 0);
    assert!(a.len().is_err(), "a handle from before the cut is dead");
    assert_eq!(s.list().unwrap(), vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(fs.contents("a").unwrap(), b"synced");
    assert_eq!(fs.contents("b").unwrap(), b"");
    // A disk may have written back part of an unsynced tail.
    let a = s.open("a", false).unwrap();
    a.write_at(6, b"+tail").unwrap();
    fs.power_cut(&mut |n| n - 2);
    assert_eq!(fs.contents("a").unwrap(), b"synced+ta");
}
