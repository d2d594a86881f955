use super::*;
use proptest::prelude::*;

const SEED: [u8; 32] = [7u8; 32];

fn trail_with(dir: &Path, n: u64, every: u64) -> Trail {
    let mut t = Trail::open(dir, &SEED, every).expect("open");
    for i in 0..n {
        let mut d = Map::new();
        d.insert("id".into(), Value::String(format!("ev-{i}")));
        d.insert("type".into(), Value::String("orders.placed".into()));
        d.insert("size".into(), Value::from(100 + i));
        t.append("publish", 1_000 + i, d).expect("append");
    }
    t.sync().expect("sync");
    t
}

fn lines(dir: &Path) -> Vec<Vec<u8>> {
    let raw = fs::read(dir.join(FILE)).expect("read");
    raw.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn write(dir: &Path, lines: &[Vec<u8>]) {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l);
        out.push(b'\n');
    }
    fs::write(dir.join(FILE), out).expect("write");
}

#[test]
fn a_fresh_trail_verifies_with_its_checkpoints_and_reopens() {
    let dir = tempfile::tempdir().expect("tmp");
    let t = trail_with(dir.path(), 25, 10);
    assert_eq!(t.len(), 28); // open + 25 publishes + 2 checkpoints
    drop(t);
    let v = verify(dir.path(), None).expect("verify");
    assert!(v.ok(), "{v:?}");
    assert_eq!((v.entries, v.checkpoints), (28, 2));
    // Reopening verifies and appends an "open" entry to the same chain.
    let t = Trail::open(dir.path(), &SEED, 10).expect("reopen");
    assert_eq!(t.len(), 29);
    drop(t);
    assert!(verify(dir.path(), None).expect("verify").ok());
}

#[test]
fn files_are_private() {
    let dir = tempfile::tempdir().expect("tmp");
    let sub = dir.path().join("audit");
    drop(trail_with(&sub, 1, 10));
    assert_eq!(
        fs::metadata(&sub).expect("dir").permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        fs::metadata(sub.join(FILE))
            .expect("file")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

#[test]
fn a_torn_last_line_is_cut_off_on_open() {
    let dir = tempfile::tempdir().expect("tmp");
    drop(trail_with(dir.path(), 5, 100));
    let mut raw = fs::read(dir.path().join(FILE)).expect("read");
    raw.extend_from_slice(b"{\"seq\":6,\"ti");
    fs::write(dir.path().join(FILE), &raw).expect("write");
    drop(Trail::open(dir.path(), &SEED, 100).expect("reopen"));
    assert!(verify(dir.path(), None).expect("verify").ok());
}

#[test]
fn a_tampered_trail_refuses_to_open() {
    let dir = tempfile::tempdir().expect("tmp");
    drop(trail_with(dir.path(), 5, 100));
    let mut l = lines(dir.path());
    l[3] = String::from_utf8(l[3].clone())
        .expect("utf8")
        .replace("ev-2", "ev-X")
        .into_bytes();
    write(dir.path(), &l);
    let err = Trail::open(dir.path(), &SEED, 100).expect_err("tampered");
    assert!(err.to_string().contains("entry 4"), "{err}");
}

#[test]
fn rollback_is_caught_against_an_exported_checkpoint() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut t = trail_with(dir.path(), 10, 1000);
    let early = t.checkpoint(5).expect("checkpoint");
    t.sync().expect("sync");
    drop(t);
    let exported = Checkpoint::from_json(&early.to_json()).expect("parse");
    assert_eq!(exported, early);
    assert!(verify(dir.path(), Some(&exported)).expect("verify").ok());
    // Roll the whole trail back to its first five entries: internally consistent...
    let l = lines(dir.path());
    write(dir.path(), &l[..5]);
    assert!(verify(dir.path(), None).expect("verify").ok());
    // ...but not what the checkpoint signed.
    let v = verify(dir.path(), Some(&exported)).expect("verify");
    assert_eq!(v.first_bad.as_ref().map(|b| b.0), Some(5), "{v:?}");
    // A forged checkpoint (another key's signature) is refused.
    let other = crate::identity::Signer::from_seed(&[9u8; 32]).expect("key");
    let mut forged = exported.clone();
    forged.signature = other
        .sign(&Checkpoint::message(forged.size, &forged.root))
        .to_vec();
    assert!(!forged.signature_ok());
}

#[test]
fn inclusion_proofs_verify_and_fail_when_tampered() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut t = trail_with(dir.path(), 40, 1000);
    let cp = t.checkpoint(9).expect("checkpoint");
    t.sync().expect("sync");
    drop(t);
    let proof = prove(dir.path(), "ev-17", &cp)
        .expect("prove")
        .expect("found");
    assert!(verify_proof(&proof, &cp));
    assert!(prove(dir.path(), "ev-404", &cp).expect("prove").is_none());
    let mut bad = proof.clone();
    bad.entry = String::from_utf8(bad.entry)
        .expect("utf8")
        .replace("ev-17", "ev-18")
        .into_bytes();
    assert!(!verify_proof(&bad, &cp));
    let mut bad = proof.clone();
    bad.index += 1;
    assert!(!verify_proof(&bad, &cp));
    let mut bad = proof;
    bad.path[0][0] ^= 1;
    assert!(!verify_proof(&bad, &cp));
}

#[derive(Debug, Clone)]
enum Damage {
    Change(usize, usize),
    Insert(usize),
    Delete(usize),
    Swap(usize),
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Every change, insertion, deletion or reordering of entries is caught, and the
    /// verdict names an entry at or just after the damage.
    #[test]
    fn any_damage_is_caught_and_named(damage in prop_oneof![
        (0usize..27, 0usize..200).prop_map(|(i, b)| Damage::Change(i, b)),
        (1usize..29).prop_map(Damage::Insert),
        (0usize..27).prop_map(Damage::Delete),
        (0usize..27).prop_map(Damage::Swap),
    ]) {
        let dir = tempfile::tempdir().expect("tmp");
        drop(trail_with(dir.path(), 27, 1000));
        let mut l = lines(dir.path());
        prop_assert_eq!(l.len(), 28);
        let at = match damage.clone() {
            Damage::Change(i, b) => {
                let b = b % l[i].len();
                l[i][b] = if l[i][b] == b'0' { b'1' } else { b'0' };
                i
            }
            Damage::Insert(i) => {
                let copy = l[i - 1].clone();
                l.insert(i, copy);
                i
            }
            Damage::Delete(i) => {
                l.remove(i);
                i
            }
            Damage::Swap(i) => {
                l.swap(i, i + 1);
                i
            }
        };
        write(dir.path(), &l);
        let v = verify(dir.path(), None).expect("verify");
        let (bad, _why) = v.first_bad.clone().expect("damage caught");
        // A changed entry is named itself (its text no longer parses, or its position
        // or previous hash is off) or by the entry after it (whose previous hash
        // no longer matches); the last entry's change needs a checkpoint (below).
        let bad = usize::try_from(bad).expect("a position");
        prop_assert!(bad == at || bad == at + 1, "{:?} named {}", damage, bad);
    }
}

#[test]
fn a_change_to_the_last_entry_is_caught_by_a_later_checkpoint_or_an_exported_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut t = trail_with(dir.path(), 5, 1000);
    let cp = t.checkpoint(1).expect("checkpoint");
    t.sync().expect("sync");
    drop(t);
    let mut l = lines(dir.path());
    let last = l.len() - 2; // the entry the checkpoint covers last
    l[last] = String::from_utf8(l[last].clone())
        .expect("utf8")
        .replace("ev-4", "ev-5")
        .into_bytes();
    write(dir.path(), &l);
    assert!(!verify(dir.path(), None).expect("verify").ok());
    assert!(!verify(dir.path(), Some(&cp)).expect("verify").ok());
}

#[test]
fn the_in_memory_decoder_gives_the_files_verdict() {
    let dir = tempfile::tempdir().expect("tmp");
    drop(trail_with(dir.path(), 25, 10));
    let raw = fs::read(dir.path().join(FILE)).expect("read");
    assert_eq!(
        verify_bytes(&raw),
        verify(dir.path(), None).expect("verify")
    );
    assert!(verify_bytes(&raw).ok());
    let mut bad = lines(dir.path());
    bad[5][12] ^= 1;
    let mut joined = bad.join(&b'\n');
    joined.push(b'\n');
    write(dir.path(), &bad);
    assert_eq!(
        verify_bytes(&joined),
        verify(dir.path(), None).expect("verify")
    );
    assert!(!verify_bytes(&joined).ok());
    assert_eq!(verify_bytes(b"").entries, 0);
}
