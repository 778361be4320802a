//! Many readers, one writer: every read sees whole batches only.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use common::{config, doc};
use ember_store::{Document, Filter, Store, StoreOptions};
use serde_json::json;

const BATCH: usize = 25;
const SLOTS: usize = 8;

/// Batch `n` writes ids `s{n % SLOTS}-{i}` (so later batches overwrite earlier ones whole) with
/// the batch number in their metadata.
fn batch(n: usize) -> Vec<Document> {
    (0..BATCH)
        .map(|i| doc(&format!("s{}-{i}", n % SLOTS), (n * BATCH + i) as u64, 8, json!({"batch": n, "slot": n % SLOTS})))
        .collect()
}

/// Per slot, the batches its documents carry; whole batches mean exactly one batch per slot
/// with all `BATCH` documents.
fn check_whole(docs: impl Iterator<Item = Document>) -> Result<(), String> {
    let mut per_slot: HashMap<u64, HashMap<u64, usize>> = HashMap::new();
    for d in docs {
        let slot = d.metadata["slot"].as_u64().unwrap();
        let n = d.metadata["batch"].as_u64().unwrap();
        if d != batch(n as usize)[d.id.rsplit('-').next().unwrap().parse::<usize>().unwrap()] {
            return Err(format!("document {} differs from what batch {n} wrote", d.id));
        }
        *per_slot.entry(slot).or_default().entry(n).or_default() += 1;
    }
    for (slot, batches) in per_slot {
        if batches.len() != 1 || batches.values().any(|&c| c != BATCH) {
            return Err(format!("slot {slot} shows a partial write: {batches:?}"));
        }
    }
    Ok(())
}

#[test]
fn readers_see_whole_batches_only() {
    let dir = tempfile::tempdir().unwrap();
    // Small log: flushes and compactions run in the background while readers read.
    let options = StoreOptions { wal_flush_bytes: 32 << 10, max_segments: 3, background_maintenance: true };
    let store = Store::open_with(dir.path(), options).unwrap();
    let c = store.create_collection("docs", config(8)).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..4)
        .map(|r| {
            let (c, done, reads) = (c.clone(), done.clone(), reads.clone());
            std::thread::spawn(move || -> Result<(), String> {
                let mut last_seen = 0;
                while !done.load(Ordering::Acquire) {
                    match r % 2 {
                        0 => check_whole(c.scan(None).unwrap().into_iter())?,
                        _ => {
                            // A filtered search for one slot returns its whole batch or nothing.
                            let slot = reads.load(Ordering::Relaxed) % SLOTS;
                            let filter = Filter::parse(&format!("slot = {slot}")).unwrap();
                            let hits = c.search(&[0.5; 8], 100, Some(&filter)).unwrap();
                            if !(hits.is_empty() || hits.len() == BATCH) {
                                return Err(format!("search saw {} documents of slot {slot}", hits.len()));
                            }
                            check_whole(hits.into_iter().map(|h| h.document))?;
                        }
                    }
                    // The batch count a reader sees never goes backwards.
                    let seen =
                        c.scan(None).unwrap().iter().map(|d| d.metadata["batch"].as_u64().unwrap()).max().unwrap_or(0);
                    if seen < last_seen {
                        return Err(format!("went back from batch {last_seen} to {seen}"));
                    }
                    last_seen = seen;
                    reads.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    for n in 0..400 {
        c.upsert(batch(n)).unwrap();
        if n % 50 == 49 {
            c.compact().unwrap();
        }
    }
    done.store(true, Ordering::Release);
    for r in readers {
        r.join().unwrap().unwrap();
    }
    assert!(reads.load(Ordering::Relaxed) > 20, "the readers ran alongside the writer");
    check_whole(c.scan(None).unwrap().into_iter()).unwrap();
    assert_eq!(c.len(), SLOTS * BATCH);
}
