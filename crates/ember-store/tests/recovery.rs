//! Opening after damage: torn tails are dropped, everything else is an error naming the file.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

mod common;

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use common::{collection_dir, config, copy_dir, doc, files_with};
use ember_store::{Document, Store, StoreError, StoreOptions};
use serde_json::json;

fn batch(n: u64) -> Vec<Document> {
    (0..3).map(|i| doc(&format!("b{n}-{i}"), n * 10 + i, 6, json!({"batch": n}))).collect()
}

/// A store with three logged batches (and no segment); returns the log's path and the offset
/// where the third batch's record starts.
fn three_batches(dir: &Path) -> (PathBuf, u64) {
    let store = Store::open(dir).unwrap();
    let c = store.create_collection("docs", config(6)).unwrap();
    c.upsert(batch(0)).unwrap();
    c.upsert(batch(1)).unwrap();
    let third_at = c.info().wal_bytes;
    c.upsert(batch(2)).unwrap();
    let wal = files_with(&collection_dir(dir, "docs"), "wal-").remove(0);
    (wal, third_at)
}

fn ids(store_dir: &Path) -> Result<Vec<String>, StoreError> {
    let store = Store::open(store_dir)?;
    let c = store.collection("docs")?;
    Ok(c.scan(None)?.into_iter().map(|d| d.id).collect())
}

#[test]
fn a_torn_log_tail_is_dropped_and_earlier_records_kept() {
    let base = tempfile::tempdir().unwrap();
    let (wal, third_at) = three_batches(base.path());
    let full = fs::metadata(&wal).unwrap().len();
    let first_two: Vec<String> = batch(0).into_iter().chain(batch(1)).map(|d| d.id).collect();
    let mut cuts: Vec<u64> = (third_at..full).step_by(7).collect();
    cuts.extend([third_at + 1, third_at + 11, third_at + 12, full - 1]);
    for cut in cuts {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        let wal = dir.path().join(wal.strip_prefix(base.path()).unwrap());
        OpenOptions::new().write(true).open(&wal).unwrap().set_len(cut).unwrap();
        assert_eq!(ids(dir.path()).unwrap(), first_two, "cut at {cut}");
        assert_eq!(fs::metadata(&wal).unwrap().len(), third_at, "the torn tail is cut off");
        // New writes land after the last whole record and survive another reopen.
        {
            let store = Store::open(dir.path()).unwrap();
            store.collection("docs").unwrap().upsert(batch(3)).unwrap();
        }
        assert_eq!(ids(dir.path()).unwrap().len(), 9, "cut at {cut}");
    }
    // A zero-filled tail (an append the file system extended but never wrote) is torn too.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(base.path(), dir.path());
    let wal = dir.path().join(wal.strip_prefix(base.path()).unwrap());
    let mut bytes = fs::read(&wal).unwrap();
    bytes.extend_from_slice(&[0; 4096]);
    fs::write(&wal, bytes).unwrap();
    assert_eq!(ids(dir.path()).unwrap().len(), 9);
}

#[test]
fn damage_before_the_last_log_record_is_an_error_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = three_batches(dir.path());
    let mut bytes = fs::read(&wal).unwrap();
    let second_at = {
        // header (16) + first record (12-byte frame header + payload)
        let len = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as u64;
        16 + 12 + len
    };
    bytes[second_at as usize + 40] ^= 0x01;
    fs::write(&wal, &bytes).unwrap();
    let err = ids(dir.path()).unwrap_err();
    match &err {
        StoreError::Corruption { path, offset, .. } => {
            assert_eq!((path, *offset), (&wal, second_at), "{err}");
        }
        other => panic!("expected corruption, got {other}"),
    }
    assert!(err.to_string().contains("wal-0000000001.log"), "{err}");
    assert!(err.to_string().contains(&format!("offset {second_at}")), "{err}");
}

/// A store whose documents live in one compacted segment, plus the segment's path.
fn compacted(dir: &Path) -> PathBuf {
    let store = Store::open(dir).unwrap();
    let c = store.create_collection("docs", config(6)).unwrap();
    for n in 0..5 {
        c.upsert(batch(n)).unwrap();
    }
    c.compact().unwrap();
    files_with(&collection_dir(dir, "docs"), "seg-").remove(0)
}

#[test]
fn a_flipped_bit_in_a_segment_is_an_error_naming_the_file() {
    let base = tempfile::tempdir().unwrap();
    let segment = compacted(base.path());
    let len = fs::metadata(&segment).unwrap().len() as usize;
    for at in [0, 9, 14, 16, 20, 30, len / 2, len - 25, len - 10, len - 1] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        let segment = dir.path().join(segment.strip_prefix(base.path()).unwrap());
        let mut bytes = fs::read(&segment).unwrap();
        bytes[at] ^= 0x20;
        fs::write(&segment, &bytes).unwrap();
        let store = Store::open(dir.path()).unwrap();
        let err = store.collection("docs").unwrap_err();
        assert!(err.to_string().contains(&segment.display().to_string()), "byte {at}: {err}");
        assert!(store.list().is_err(), "list reports it too");
        if let StoreError::Corruption { offset, .. } = err {
            assert!(offset as usize <= len);
        }
    }
    // A truncated segment, too.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(base.path(), dir.path());
    let segment = dir.path().join(segment.strip_prefix(base.path()).unwrap());
    OpenOptions::new().write(true).open(&segment).unwrap().set_len(len as u64 - 3).unwrap();
    let err = Store::open(dir.path()).unwrap().collection("docs").unwrap_err();
    assert!(matches!(&err, StoreError::Corruption { path, .. } if path == &segment), "{err}");
}

#[test]
fn foreign_or_future_files_are_refused_by_magic_and_version() {
    let dir = tempfile::tempdir().unwrap();
    compacted(dir.path());
    let marker = dir.path().join("STORE");
    let good = fs::read(&marker).unwrap();
    let mut future = good.clone();
    future[8] = 9;
    fs::write(&marker, &future).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedVersion { found: 9, supported: 1, .. }), "{err}");
    assert!(err.to_string().ends_with("STORE has format version 9; this build reads version 1"), "{err}");
    fs::write(&marker, b"something else entirely").unwrap();
    assert!(matches!(Store::open(dir.path()), Err(StoreError::BadMagic { .. })));
    fs::write(&marker, &good).unwrap();

    let manifest = collection_dir(dir.path(), "docs").join("MANIFEST");
    let good = fs::read(&manifest).unwrap();
    let mut bad = good.clone();
    bad[40] ^= 1;
    fs::write(&manifest, &bad).unwrap();
    let err = Store::open(dir.path()).unwrap().collection("docs").unwrap_err();
    assert!(matches!(&err, StoreError::Corruption { path, .. } if path == &manifest), "{err}");
    fs::write(&manifest, &good).unwrap();
    assert_eq!(ids(dir.path()).unwrap().len(), 15);
}

#[test]
fn leftovers_of_an_interrupted_compaction_are_tidied() {
    let dir = tempfile::tempdir().unwrap();
    let segment = compacted(dir.path());
    let cdir = collection_dir(dir.path(), "docs");
    // What a crash can leave: a half-written segment, a finished segment the manifest does not
    // name yet, a log already folded, a manifest being replaced, a collection being created.
    fs::write(cdir.join("seg-0000000007.seg.tmp"), b"partial").unwrap();
    fs::copy(&segment, cdir.join("seg-0000000009.seg")).unwrap();
    fs::write(cdir.join("wal-0000000000.log"), b"old").unwrap();
    fs::write(cdir.join("MANIFEST.tmp"), b"partial").unwrap();
    fs::create_dir(dir.path().join("collections/.tmp-new")).unwrap();
    assert_eq!(ids(dir.path()).unwrap().len(), 15);
    let mut left: Vec<String> =
        fs::read_dir(&cdir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, ["MANIFEST", "seg-0000000001.seg", "wal-0000000002.log"]);
    assert!(!dir.path().join("collections/.tmp-new").exists());
}

#[test]
fn missing_files_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let segment = compacted(dir.path());
    fs::remove_file(&segment).unwrap();
    let err = Store::open(dir.path()).unwrap().collection("docs").unwrap_err();
    assert!(matches!(&err, StoreError::MissingFile { path, .. } if path == &segment), "{err}");

    let dir = tempfile::tempdir().unwrap();
    three_batches(dir.path());
    let wal = files_with(&collection_dir(dir.path(), "docs"), "wal-").remove(0);
    fs::remove_file(&wal).unwrap();
    let err = Store::open(dir.path()).unwrap().collection("docs").unwrap_err();
    assert!(matches!(&err, StoreError::MissingFile { path, .. } if path == &wal), "{err}");
}

#[test]
fn a_crash_between_rotation_and_manifest_commit_loses_nothing() {
    // Simulate: the flush rotated the log (wal-2 exists) and wrote its segment, but died before
    // the manifest named it. Opening must replay wal-1 then wal-2 and ignore the orphan segment.
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions { background_maintenance: false, ..StoreOptions::default() };
    let (wal1, _) = three_batches(dir.path());
    let cdir = wal1.parent().unwrap().to_path_buf();
    fs::write(cdir.join("wal-0000000002.log"), &fs::read(&wal1).unwrap()[..16]).unwrap();
    fs::write(cdir.join("seg-0000000001.seg"), b"orphan, never committed").unwrap();
    {
        let store = Store::open_with(dir.path(), options.clone()).unwrap();
        let c = store.collection("docs").unwrap();
        assert_eq!(c.len(), 9);
        c.upsert(batch(7)).unwrap();
    }
    assert!(!cdir.join("seg-0000000001.seg").exists());
    assert!(fs::metadata(cdir.join("wal-0000000002.log")).unwrap().len() > 16, "new writes go to the newest log");
    let store = Store::open_with(dir.path(), options).unwrap();
    assert_eq!(store.collection("docs").unwrap().len(), 12);
}
