//! Durability under SIGKILL. The parent re-runs this test binary as a child (selected by an
//! environment variable) that writes with several threads while compacting, printing each
//! operation before it starts (`BEGIN t j`) and after it returned (`ACK t j`). The parent kills
//! the child at random moments — while it writes, while it compacts, while it is still
//! recovering from the previous kill — then reopens the store and checks that every
//! acknowledged write is there, intact, and that nothing half-written is visible.
//!
//! Set `EMBER_STORE_CRASH_SEED` to replay a run (the seed is printed on failure).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use common::{config, meta, vector};
use ember_store::{Collection, Document, Filter, Store, StoreError, StoreOptions};
use serde_json::json;

const CHILD_ENV: &str = "EMBER_STORE_CRASH_CHILD";
const DIM: usize = 16;
const WRITERS: u64 = 3;
const ROUNDS: u64 = 24;
/// Operations per writer thread and round (bounds the store's growth, and so the test's time).
const OPS: u64 = 150;

fn options() -> StoreOptions {
    // A tiny log threshold so background flushes and compactions happen all the time.
    StoreOptions { wal_flush_bytes: 24 << 10, max_segments: 3, background_maintenance: true }
}

/// A set of documents created by one "fresh" operation and afterwards only overwritten or
/// deleted whole: (round, thread, index of the creating operation).
type SetKey = (u64, u64, u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Planned {
    Fresh,
    Overwrite(u64),
    Delete(u64),
}

fn mix(a: u64, b: u64, c: u64) -> u64 {
    let mut x = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F) ^ c;
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 29)
}

fn kind(j: u64) -> Planned {
    let target = || (0..=j - 3).rev().find(|&f| kind(f) == Planned::Fresh).unwrap_or(0);
    match j {
        j if j >= 3 && j % 7 == 6 => Planned::Delete(target()),
        j if j >= 3 && j % 5 == 4 => Planned::Overwrite(target()),
        _ => Planned::Fresh,
    }
}

fn set_ids((round, t, f): SetKey) -> Vec<String> {
    let size = 1 + mix(round, t, f) % 8;
    (0..size).map(|i| format!("r{round}-t{t}-f{f}-{i}")).collect()
}

/// What operation `j` of thread `t` writes to `id` (of set `set`).
fn written(set: SetKey, id: &str, j: u64) -> Document {
    let id_hash = id.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01B3));
    let seed = mix(set.0 * 1000 + set.1, set.2, j) ^ id_hash;
    Document {
        id: id.to_string(),
        text: format!("{id} as written by op {j}: {} ✓", "λ".repeat((seed % 40) as usize)),
        vector: vector(seed, DIM),
        metadata: meta(json!({
            "set": format!("{}-{}-{}", set.0, set.1, set.2),
            "writer": j,
            "size": set_ids(set).len(),
            "nested": {"round": set.0, "tags": [id, j]},
        })),
        ..Document::default()
    }
}

/// Operation `j` of thread `t`: the set it touches and the state it leaves that set in
/// (`Some(j)`: written by `j`; `None`: deleted).
fn effect(round: u64, t: u64, j: u64) -> (SetKey, Option<u64>) {
    match kind(j) {
        Planned::Fresh => ((round, t, j), Some(j)),
        Planned::Overwrite(f) => ((round, t, f), Some(j)),
        Planned::Delete(f) => ((round, t, f), None),
    }
}

fn run(c: &Collection, round: u64, t: u64, j: u64) -> Result<(), StoreError> {
    let (set, state) = effect(round, t, j);
    let ids = set_ids(set);
    match state {
        Some(writer) => c.upsert(ids.iter().map(|id| written(set, id, writer)).collect()),
        None => c.delete(&ids.iter().map(String::as_str).collect::<Vec<_>>()).map(drop),
    }
}

fn say(line: &str) {
    // One write per line (stdout is line-buffered), so a kill never leaves half a line.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The child: only runs when the parent sets `CHILD_ENV` to "<store dir>|<round>".
#[test]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let (dir, round) = spec.split_once('|').unwrap();
    let round: u64 = round.parse().unwrap();
    let store = Store::open_with(Path::new(dir), options()).unwrap();
    let c = match store.collection("docs") {
        Ok(c) => c,
        Err(StoreError::NotFound { .. }) => store.create_collection("docs", config(DIM)).unwrap(),
        Err(e) => panic!("{e}"),
    };
    say("READY");
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let c = c.clone();
            std::thread::spawn(move || {
                for j in 0..OPS {
                    say(&format!("BEGIN {t} {j}"));
                    run(&c, round, t, j).unwrap();
                    say(&format!("ACK {t} {j}"));
                }
            })
        })
        .collect();
    // Compact until killed (the parent kills well before this ends).
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(15));
        say("COMPACT-BEGIN");
        c.compact().unwrap();
        say("COMPACT-END");
    }
    writers.into_iter().for_each(|w| w.join().unwrap());
    say("DONE");
}

/// A small xorshift generator, so the schedule is reproducible from one seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KillAt {
    /// A random time after the child reported it was ready.
    Writing(u64),
    /// Right after the child announced a compaction (plus a few random microseconds).
    Compacting(u64),
    /// A random time after the start, probably while the child is still opening the store.
    Opening(u64),
}

struct Outcome {
    lines: Vec<String>,
    compacting_at_kill: bool,
    exited_by_itself: bool,
}

fn run_child(dir: &Path, round: u64, kill_at: KillAt) -> Outcome {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1", "--quiet"])
        .env(CHILD_ENV, format!("{}|{round}", dir.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match stdout.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                // A line without its newline was cut by the kill: not a complete report.
                Ok(_) if !line.ends_with('\n') => break,
                Ok(_) => {
                    if tx.send(line.trim_end().to_string()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let start = Instant::now();
    let mut lines = Vec::new();
    let mut ready_at = None;
    let mut compactions_done = 0;
    let mut exited_by_itself = false;
    loop {
        let deadline = match kill_at {
            KillAt::Opening(us) => Some(start + Duration::from_micros(us)),
            KillAt::Writing(ms) => ready_at.map(|r: Instant| r + Duration::from_millis(ms)),
            KillAt::Compacting(_) => None,
        };
        let wait = deadline.map_or(Duration::from_millis(50), |d| d.saturating_duration_since(Instant::now()));
        match rx.recv_timeout(wait) {
            Ok(line) => {
                let compaction_started = line == "COMPACT-BEGIN";
                if line == "READY" {
                    ready_at = Some(Instant::now());
                }
                if line == "COMPACT-END" {
                    compactions_done += 1;
                }
                lines.push(line);
                if let (KillAt::Compacting(us), true) = (kill_at, compaction_started) {
                    if compactions_done >= 1 {
                        std::thread::sleep(Duration::from_micros(us));
                        break;
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) if deadline.is_some_and(|d| Instant::now() >= d) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                exited_by_itself = true;
                break;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the child never reached its kill point");
    }
    let _ = child.kill(); // SIGKILL
    let status = child.wait().unwrap();
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    if exited_by_itself {
        assert!(status.success(), "the child failed on its own: {status}");
    }
    let compacting_at_kill =
        lines.iter().rev().find(|l| l.starts_with("COMPACT-")).is_some_and(|l| l == "COMPACT-BEGIN");
    Outcome { lines, compacting_at_kill, exited_by_itself }
}

/// Per set, the state every acknowledged operation of its thread leaves, and the alternative
/// an operation begun but not acknowledged may have left.
fn expectations(round: u64, lines: &[String]) -> BTreeMap<SetKey, (Option<u64>, Option<Option<u64>>)> {
    let mut acked: HashMap<u64, Vec<u64>> = HashMap::new();
    let mut begun: HashMap<u64, u64> = HashMap::new();
    for line in lines {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["BEGIN", t, j] => {
                begun.insert(t.parse().unwrap(), j.parse().unwrap());
            }
            ["ACK", t, j] => acked.entry(t.parse().unwrap()).or_default().push(j.parse().unwrap()),
            _ => {}
        }
    }
    let mut sets: BTreeMap<SetKey, (Option<u64>, Option<Option<u64>>)> = BTreeMap::new();
    for t in 0..WRITERS {
        let acks = acked.remove(&t).unwrap_or_default();
        assert!(acks.iter().enumerate().all(|(i, &j)| i as u64 == j), "thread {t} acknowledged out of order");
        for &j in &acks {
            let (set, state) = effect(round, t, j);
            sets.entry(set).or_insert((None, None)).0 = state;
        }
        if let Some(&j) = begun.get(&t).filter(|&&j| j == acks.len() as u64) {
            let (set, state) = effect(round, t, j);
            sets.entry(set).or_insert((None, None)).1 = Some(state);
        }
    }
    sets
}

/// The state of a set as stored: all absent, or all written by the same operation and equal to
/// what it wrote. Anything else is a partial or damaged write.
fn observe(c: &Collection, set: SetKey) -> Result<Option<u64>, String> {
    let ids = set_ids(set);
    let docs: Vec<Option<Document>> = ids.iter().map(|id| c.get(id).unwrap()).collect();
    if docs.iter().all(Option::is_none) {
        return Ok(None);
    }
    let Some(Some(first)) = docs.first() else { return Err(format!("set {set:?}: first document missing")) };
    let writer = first.metadata["writer"].as_u64().unwrap();
    for (id, doc) in ids.iter().zip(&docs) {
        match doc {
            Some(d) if *d == written(set, id, writer) => {}
            Some(d) => return Err(format!("set {set:?}: {id} differs from what op {writer} wrote: {d:?}")),
            None => return Err(format!("set {set:?}: {id} missing while others are present (partial write)")),
        }
    }
    Ok(Some(writer))
}

/// Search agrees with `get`: the set's tag finds exactly its documents, and a document's own
/// vector finds it first.
fn check_search(c: &Collection, set: SetKey, writer: u64) -> Result<(), String> {
    let ids = set_ids(set);
    let filter = Filter::parse(&format!("set = \"{}-{}-{}\"", set.0, set.1, set.2)).unwrap();
    let hits = c.search(&vector(1, DIM), 100, Some(&filter)).unwrap();
    if hits.len() != ids.len() {
        return Err(format!("set {set:?}: a filtered search found {} of {} documents", hits.len(), ids.len()));
    }
    let first = written(set, &ids[0], writer);
    let own = c.search(&first.vector, 1, Some(&filter)).unwrap();
    if own.first().map(|h| &h.document) != Some(&first) {
        return Err(format!("set {set:?}: searching {}'s vector did not find it", first.id));
    }
    Ok(())
}

#[test]
fn acknowledged_writes_survive_sigkill_at_random_points() {
    let seed = std::env::var("EMBER_STORE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1);
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    // Every set ever written, and the state it was verified in.
    let mut model: BTreeMap<SetKey, Option<u64>> = BTreeMap::new();
    let mut kills_while_compacting = 0;
    let mut acknowledged = 0;
    for round in 0..ROUNDS {
        let kill_at = match round % 4 {
            0 | 2 => KillAt::Writing(5 + rng.below(120)),
            1 => KillAt::Compacting(rng.below(3000)),
            _ => KillAt::Opening(rng.below(40_000)),
        };
        let t0 = Instant::now();
        let outcome = run_child(dir.path(), round, kill_at);
        eprintln!(
            "round {round}: child {:?}, {} lines, compacting {}",
            t0.elapsed(),
            outcome.lines.len(),
            outcome.compacting_at_kill
        );
        let t0 = Instant::now();
        let context = format!("seed {seed}, round {round}, kill {kill_at:?}");
        assert!(!outcome.exited_by_itself, "{context}: the child finished before it was killed");
        kills_while_compacting += outcome.compacting_at_kill as u32;
        acknowledged += outcome.lines.iter().filter(|l| l.starts_with("ACK")).count();

        // Reopen: no repair, no error.
        let store = Store::open_with(dir.path(), options()).unwrap_or_else(|e| panic!("{context}: {e}"));
        let c = match store.collection("docs") {
            Ok(c) => c,
            Err(StoreError::NotFound { .. }) if model.is_empty() => {
                assert!(outcome.lines.iter().all(|l| !l.starts_with("ACK")), "{context}: acknowledged writes lost");
                continue;
            }
            Err(e) => panic!("{context}: {e}"),
        };
        let mut present = Vec::new();
        for (set, (acked, in_flight)) in expectations(round, &outcome.lines) {
            let seen = observe(&c, set).unwrap_or_else(|e| panic!("{context}: {e}"));
            let allowed: HashSet<Option<u64>> = [Some(acked), in_flight].into_iter().flatten().collect();
            assert!(allowed.contains(&seen), "{context}: set {set:?} is {seen:?}, expected one of {allowed:?}");
            if let Some(writer) = seen {
                present.push((set, writer));
            }
            model.insert(set, seen);
        }
        for _ in 0..5.min(present.len()) {
            let (set, writer) = present[rng.below(present.len() as u64) as usize];
            check_search(&c, set, writer).unwrap_or_else(|e| panic!("{context}: {e}"));
        }
        // Earlier rounds' sets are as they were (checked every few rounds, and at the end), and
        // nothing else is visible.
        if round % 4 == 3 {
            for (&set, &state) in &model {
                assert_eq!(observe(&c, set).unwrap_or_else(|e| panic!("{context}: {e}")), state, "{context}: {set:?}");
            }
        }
        let expected_count: usize = model.iter().filter(|(_, s)| s.is_some()).map(|(&set, _)| set_ids(set).len()).sum();
        assert_eq!(c.len(), expected_count, "{context}: unexpected documents are visible");
        eprintln!("  verify {:?}, {} docs, {} sets", t0.elapsed(), c.len(), model.len());
    }
    assert!(acknowledged > 500, "only {acknowledged} writes were acknowledged in {ROUNDS} rounds");
    assert!(kills_while_compacting >= 2, "only {kills_while_compacting} kills landed during a compaction");

    // Finally a compaction and a clean reopen keep exactly the model.
    {
        let store = Store::open_with(dir.path(), options()).unwrap();
        store.collection("docs").unwrap().compact().unwrap();
    }
    let store = Store::open_with(dir.path(), options()).unwrap();
    let c = store.collection("docs").unwrap();
    assert_eq!(c.info().segments, 1);
    for (&set, &state) in &model {
        assert_eq!(observe(&c, set).unwrap(), state);
    }
}
