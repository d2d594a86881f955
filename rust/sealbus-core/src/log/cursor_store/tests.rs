use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::log::io::{FaultyStorage, ForgetfulStorage};

fn cursor(committed: u64, owner: &str) -> Cursor {
    let mut c = Cursor::starting_at(committed);
    c.owner = Some(owner.to_owned());
    c
}

#[test]
fn round_trip_reopen_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let store = CursorStore::open(dir.path()).unwrap();
    assert_eq!(store.load("shipping").unwrap(), None);
    let mut c = cursor(3, "ops");
    c.ack(5);
    c.record_delivery(4);
    c.dead_letter(7, "handler failed", 11);
    store.save("shipping", &c).unwrap();
    store.save("analytics/ü", &Cursor::starting_at(1)).unwrap();
    store.save("shipping", &c).unwrap();
    assert!(store.remove("gone-before").is_ok_and(|r| !r));
    let store = CursorStore::open(dir.path()).unwrap();
    assert_eq!(store.load("shipping").unwrap(), Some(c));
    assert_eq!(
        store.consumers().unwrap(),
        vec!["analytics/ü".to_owned(), "shipping".to_owned()]
    );
    assert_eq!(store.min_committed().unwrap(), Some(1));
    assert!(store.remove("shipping").unwrap());
    assert!(!store.remove("shipping").unwrap());
    assert!(matches!(store.load(""), Err(Error::InvalidArgument { .. })));
    let long = "x".repeat(MAX_NAME + 1);
    assert!(matches!(
        store.save(&long, &Cursor::default()),
        Err(Error::InvalidArgument { .. })
    ));
    let store = CursorStore::open(dir.path()).unwrap();
    assert_eq!(store.consumers().unwrap(), vec!["analytics/ü".to_owned()]);
    // One file for every consumer.
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(files.len(), 1);
}

/// A group shares one write and one fsync, whatever its size.
#[test]
fn a_group_of_saves_is_one_fsync() {
    let fs = ForgetfulStorage::new();
    let store = CursorStore::with_storage(Arc::new(Arc::clone(&fs))).unwrap();
    let before = fs.fsyncs();
    let mut batch = store.batch().unwrap();
    for i in 0..1000 {
        batch
            .put_encoded(&format!("c{i}"), &cursor(i, "p").encode())
            .unwrap();
    }
    assert_eq!(batch.len(), 1000);
    batch.commit().unwrap();
    assert_eq!(fs.fsyncs() - before, 1);
    fs.power_cut(&mut |_| 0);
    let store = CursorStore::with_storage(Arc::new(Arc::clone(&fs))).unwrap();
    assert_eq!(store.len().unwrap(), 1000);
    assert_eq!(store.load("c999").unwrap(), Some(cursor(999, "p")));
}

fn write_legacy(dir: &Path, consumer: &str, bytes: &[u8]) {
    std::fs::write(dir.join(legacy_file_name(consumer)), bytes).unwrap();
}

/// Cursor files of the layout before the journal are moved into it at open (a
/// version-1 file without an owner stays without one), then removed.
#[test]
fn old_cursor_files_move_into_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let owned = cursor(40, "billing");
    write_legacy(dir.path(), "invoices", &owned.encode());
    let unowned = Cursor::starting_at(9);
    write_legacy(dir.path(), "legacy/ü", &unowned.encode());
    std::fs::write(dir.path().join("6162.cursor.tmp"), b"half a save").unwrap();
    // Read-only, nothing moves: the files are read where they are.
    let ro = CursorStore::open_read_only(dir.path()).unwrap();
    assert_eq!(ro.load("invoices").unwrap(), Some(owned.clone()));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    assert!(matches!(
        ro.save("x", &owned),
        Err(Error::InvalidArgument { .. })
    ));
    let store = CursorStore::open(dir.path()).unwrap();
    assert_eq!(store.load("invoices").unwrap(), Some(owned.clone()));
    assert_eq!(store.load("legacy/ü").unwrap(), Some(unowned));
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec![JOURNAL.to_owned()]);
    drop(store);
    let store = CursorStore::open(dir.path()).unwrap();
    assert_eq!(store.consumers().unwrap().len(), 2);
    // A file left behind by a crash after the move is older than the journal.
    write_legacy(dir.path(), "invoices", &cursor(1, "billing").encode());
    let store = CursorStore::open(dir.path()).unwrap();
    assert_eq!(store.load("invoices").unwrap(), Some(owned));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // A damaged old file is refused with its name, never read as a fresh cursor.
    write_legacy(dir.path(), "x", b"garbage garbage garbage garbage");
    match CursorStore::open(dir.path()) {
        Err(Error::LogCorrupted { segment, .. }) => assert_eq!(segment, "78.cursor"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_torn_end_is_cut_and_saving_goes_on_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = CursorStore::open(dir.path()).unwrap();
    store.save("a", &cursor(5, "p")).unwrap();
    let path = dir.path().join(JOURNAL);
    let whole = std::fs::read(&path).unwrap();
    drop(store);
    // Half of a second record, as a crash during its write leaves it.
    let mut next = Vec::new();
    write_record(&mut next, PUT, "a", &cursor(9, "p").encode());
    let mut torn = whole.clone();
    torn.extend_from_slice(&next[..next.len() / 2]);
    std::fs::write(&path, &torn).unwrap();
    let ro = CursorStore::open_read_only(dir.path()).unwrap();
    assert_eq!(ro.torn_bytes().unwrap(), (next.len() / 2) as u64);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        torn,
        "read-only cuts nothing"
    );
    let store = CursorStore::open(dir.path()).unwrap();
    assert_eq!(store.load("a").unwrap(), Some(cursor(5, "p")));
    assert_eq!(std::fs::read(&path).unwrap(), whole);
    store.save("b", &cursor(6, "p")).unwrap();
    let store = CursorStore::open(dir.path()).unwrap();
    assert_eq!(store.torn_bytes().unwrap(), 0);
    assert_eq!(store.load("b").unwrap(), Some(cursor(6, "p")));
    // A flipped bit in a complete record is damage, refused, even in the last one.
    let good = std::fs::read(&path).unwrap();
    for at in [
        MAGIC.len() + 3,
        MAGIC.len() + 9,
        MAGIC.len() + 20,
        good.len() - 1,
    ] {
        let mut flipped = good.clone();
        flipped[at] ^= 0x10;
        std::fs::write(&path, &flipped).unwrap();
        assert!(
            matches!(
                CursorStore::open(dir.path()),
                Err(Error::LogCorrupted { .. })
            ),
            "byte {at}"
        );
    }
    // A zero-filled tail (a power cut after the length grew) is torn, not damage.
    let mut zeros = good.clone();
    zeros.extend_from_slice(&[0; 40]);
    std::fs::write(&path, &zeros).unwrap();
    let store = CursorStore::open(dir.path()).unwrap();
    assert_eq!(store.torn_bytes().unwrap(), 40);
    drop(store);
    // A record whose checksum holds but whose content is nonsense is corruption.
    let mut bad = std::fs::read(&path).unwrap();
    write_record(&mut bad, 7, "a", b"x");
    std::fs::write(&path, &bad).unwrap();
    assert!(matches!(
        CursorStore::open(dir.path()),
        Err(Error::LogCorrupted { .. })
    ));
    std::fs::write(&path, b"NOTAJRNL").unwrap();
    assert!(matches!(
        CursorStore::open(dir.path()),
        Err(Error::LogCorrupted { .. })
    ));
}

#[test]
fn compaction_keeps_every_live_cursor() {
    let fs = ForgetfulStorage::new();
    let open = || {
        CursorStore::with_storage(Arc::new(Arc::clone(&fs)))
            .unwrap()
            .compacting_from(4096)
    };
    let store = open();
    for round in 0..50u64 {
        for i in 0..10u64 {
            store
                .save(&format!("c{i}"), &cursor(round * 10 + i, "p"))
                .unwrap();
        }
    }
    store.remove("c3").unwrap();
    let len = fs.contents(JOURNAL).unwrap().len();
    assert!(len < 4 * 4096, "journal of {len} bytes was never compacted");
    fs.power_cut(&mut |_| 0);
    let store = open();
    assert_eq!(store.len().unwrap(), 9);
    for i in (0..10u64).filter(|&i| i != 3) {
        assert_eq!(
            store.load(&format!("c{i}")).unwrap(),
            Some(cursor(490 + i, "p"))
        );
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Save these consumers' cursors at these committed offsets, as one group.
    Save(Vec<(u8, u64)>),
    Remove(u8),
    /// The next write (torn halfway) or fsync fails.
    FailWrite,
    FailFsync,
    /// Cut the power; this share (0..=255) of each file's unsynced tail survives.
    Cut(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => proptest::collection::vec((0u8..6, 0u64..1000), 1..4).prop_map(Op::Save),
        1 => (0u8..6).prop_map(Op::Remove),
        1 => Just(Op::FailWrite),
        1 => Just(Op::FailFsync),
        2 => any::<u8>().prop_map(Op::Cut),
    ]
}

/// What one consumer's cursor may be after a power cut: the last value a save
/// returned for, or one a failed save tried to store after it (`None`: no cursor).
#[derive(Debug, Clone, Default)]
struct Model {
    acked: Option<u64>,
    maybe: Vec<Option<u64>>,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    /// Saves, removes, failed writes and fsyncs, compactions and power cuts in any
    /// order: a save that returned survives every cut; a save that failed may or may
    /// not, and nothing else ever appears (a cursor may lag, never lead nor mix).
    #[test]
    fn power_cuts_keep_every_acknowledged_save(ops in proptest::collection::vec(op(), 1..60)) {
        let fs = ForgetfulStorage::new();
        let open = || -> Result<(CursorStore, Arc<crate::log::FaultPlan>)> {
            let (faulty, plan) = FaultyStorage::new(Arc::new(Arc::clone(&fs)));
            Ok((CursorStore::with_storage(Arc::new(faulty))?.compacting_from(600), plan))
        };
        let (mut store, mut plan) = open().unwrap();
        let mut model: BTreeMap<u8, Model> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Save(group) => {
                    let mut batch = store.batch().unwrap();
                    for &(c, v) in &group {
                        batch.put_encoded(&format!("c{c}"), &cursor(v, "p").encode()).unwrap();
                    }
                    let ok = batch.commit().is_ok();
                    for (c, v) in group {
                        let m = model.entry(c).or_default();
                        if ok {
                            *m = Model { acked: Some(v), maybe: Vec::new() };
                        } else {
                            m.maybe.push(Some(v));
                        }
                    }
                    // A failed group may have been written (a compaction's fsync
                    // failed after it): the store's view is one of the two either way.
                }
                Op::Remove(c) => {
                    let m = model.entry(c).or_default();
                    match store.remove(&format!("c{c}")) {
                        Ok(_) => *m = Model::default(),
                        Err(_) => m.maybe.push(None),
                    }
                }
                Op::FailWrite => plan.fail_write_on(1),
                Op::FailFsync => plan.fail_fsync_on(1),
                Op::Cut(share) => {
                    plan.fail_write_on(0);
                    plan.fail_fsync_on(0);
                    fs.power_cut(&mut |n| n * usize::from(share) / 255);
                    (store, plan) = open().unwrap();
                    for (c, m) in &mut model {
                        let got = store.load(&format!("c{c}")).unwrap().map(|x| x.committed);
                        prop_assert!(
                            got == m.acked || m.maybe.contains(&got),
                            "c{}: {:?} is neither {:?} nor one of {:?}", c, got, m.acked, m.maybe
                        );
                        *m = Model { acked: got, maybe: Vec::new() };
                    }
                    prop_assert_eq!(store.len().unwrap(), model.values().filter(|m| m.acked.is_some()).count());
                }
            }
        }
    }
}

/// A journal where cursor "a" was saved at 1, then written at 2 without its fsync
/// (what a process that died before its fsync leaves); and that record.
fn saved_then_written_unsynced() -> (Arc<ForgetfulStorage>, Vec<u8>) {
    let fs = ForgetfulStorage::new();
    let store = CursorStore::with_storage(Arc::new(Arc::clone(&fs))).unwrap();
    store.save("a", &cursor(1, "p")).unwrap();
    let mut rec = Vec::new();
    write_record(&mut rec, PUT, "a", &cursor(2, "p").encode());
    let file = Storage::open(&fs, JOURNAL, false).unwrap();
    file.write_at(file.len().unwrap(), &rec).unwrap();
    (fs, rec)
}

/// The control: a store that did not fsync its journal would lose saves at a cut,
/// and the property above would see it.
#[test]
fn a_cut_loses_what_was_not_fsynced() {
    let (fs, rec) = saved_then_written_unsynced();
    assert!(
        fs.contents(JOURNAL).is_some_and(|j| j.ends_with(&rec)),
        "a process would read it"
    );
    fs.power_cut(&mut |_| 0);
    let cut = CursorStore::with_storage(Arc::new(Arc::clone(&fs))).unwrap();
    assert_eq!(cut.load("a").unwrap().map(|c| c.committed), Some(1));
}

/// What an open read is made durable: a process that died before its fsync left a
/// save in the page cache; the next open serves it, and a power cut after that open
/// keeps it.
#[test]
fn an_open_makes_what_it_read_durable() {
    let (fs, _) = saved_then_written_unsynced();
    let reopened = CursorStore::with_storage(Arc::new(Arc::clone(&fs))).unwrap();
    assert_eq!(reopened.load("a").unwrap().map(|c| c.committed), Some(2));
    drop(reopened);
    fs.power_cut(&mut |_| 0);
    let cut = CursorStore::with_storage(Arc::new(Arc::clone(&fs))).unwrap();
    assert_eq!(cut.load("a").unwrap().map(|c| c.committed), Some(2));
}
