//! ember's side of the dense-index benchmark (scripts/bench-index.sh runs it next to hnswlib and
//! FAISS on the same files; see bench/index_baselines.py for the data).
//!
//! ```text
//! cargo run --release -p ember-index --example index_bench -- --data DIR \
//!     [--m 16] [--ef-construction 200] [--ef 16,32,64,128,256] [--k 10] [--repeats 3] \
//!     [--oversampling 4,10,20] [--flat-queries 200]
//! ```
//!
//! Reads DIR/base.npy, DIR/queries.npy (float32) and DIR/gt.npy (int32 exact neighbours), builds
//! an `HnswIndex` single-threaded, then for each ef searches every query `repeats` times and
//! reports recall@k and the median queries/s; then the same for binary-quantized flat search
//! with rescoring (per oversampling factor) and for exact flat search. Prints one JSON object.

use std::time::Instant;

use ember_core::Similarity;
use ember_index::distance::Kernels;
use ember_index::{DenseIndex, FlatIndex, HnswIndex, HnswParams, Quantization, QuantizedFlatIndex, Scored};

struct Args {
    data: String,
    m: usize,
    ef_construction: usize,
    ef: Vec<usize>,
    k: usize,
    repeats: usize,
    oversampling: Vec<usize>,
    flat_queries: usize,
    /// Load the HNSW graph from this file instead of building it (for iterating on search).
    load: Option<String>,
    /// Write the built HNSW graph to this file.
    save: Option<String>,
    /// Skip the flat searches.
    hnsw_only: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        data: String::new(),
        m: 16,
        ef_construction: 200,
        ef: vec![16, 32, 64, 128, 256],
        k: 10,
        repeats: 3,
        oversampling: vec![4, 10, 20],
        flat_queries: 200,
        load: None,
        save: None,
        hnsw_only: false,
    };
    let list = |v: &str| -> Result<Vec<usize>, String> {
        v.split(',').map(|x| x.trim().parse::<usize>().map_err(|e| format!("{x}: {e}"))).collect()
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = || v.parse::<usize>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--data" => a.data = v.clone(),
            "--m" => a.m = num()?,
            "--ef-construction" => a.ef_construction = num()?,
            "--ef" => a.ef = list(&v)?,
            "--k" => a.k = num()?,
            "--repeats" => a.repeats = num()?.max(1),
            "--oversampling" => a.oversampling = list(&v)?,
            "--flat-queries" => a.flat_queries = num()?,
            "--load" => a.load = Some(v.clone()),
            "--save" => a.save = Some(v.clone()),
            "--hnsw-only" => a.hnsw_only = v == "1" || v == "true",
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.data.is_empty() {
        return Err("--data DIR is required".into());
    }
    Ok(a)
}

/// A 2-D little-endian `.npy` array (`<f4` or `<i4`, C order) as raw rows.
struct Npy {
    rows: usize,
    cols: usize,
    descr: String,
    data: Vec<u8>,
}

fn read_npy(path: &str) -> Result<Npy, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(format!("{path}: not a .npy file"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len]).map_err(|e| format!("{path}: {e}"))?;
    let field = |key: &str| -> Result<&str, String> {
        let at = header.find(key).ok_or_else(|| format!("{path}: no {key} in header"))?;
        Ok(&header[at + key.len()..])
    };
    if field("'fortran_order':")?.trim_start().starts_with("True") {
        return Err(format!("{path}: Fortran order"));
    }
    let descr = field("'descr':")?.trim_start().trim_start_matches('\'').split('\'').next().unwrap_or("").to_string();
    let shape = field("'shape':")?;
    let shape = &shape[shape.find('(').ok_or("no shape")? + 1..shape.find(')').ok_or("no shape")?];
    let dims: Vec<usize> =
        shape.split(',').filter(|s| !s.trim().is_empty()).map(|s| s.trim().parse().unwrap_or(0)).collect();
    let [rows, cols] = dims[..] else { return Err(format!("{path}: expected 2 dimensions, got {dims:?}")) };
    Ok(Npy { rows, cols, descr, data: bytes[start + header_len..].to_vec() })
}

impl Npy {
    fn f32s(&self) -> Result<Vec<f32>, String> {
        if self.descr != "<f4" {
            return Err(format!("expected <f4, got {}", self.descr));
        }
        Ok(self.data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    fn i32s(&self) -> Result<Vec<i32>, String> {
        if self.descr != "<i4" {
            return Err(format!("expected <i4, got {}", self.descr));
        }
        Ok(self.data.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Seconds this (single-threaded) process has run on a CPU: immune to the machine being shared,
/// unlike wall time. The first field of /proc/self/schedstat, in nanoseconds.
fn cpu_s() -> f64 {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns / 1e9)
}

fn recall(found: &[Vec<Scored>], gt: &[i32], gt_cols: usize, k: usize) -> f64 {
    let mut hits = 0;
    for (q, row) in found.iter().enumerate() {
        let truth = &gt[q * gt_cols..q * gt_cols + k];
        hits += row.iter().take(k).filter(|s| truth.contains(&(s.id as i32))).count();
    }
    hits as f64 / (found.len() * k) as f64
}

/// Run `search` over `queries` once for the results, then `repeats` timed times; the median
/// queries per second of wall time and of CPU time.
fn measure(queries: &[&[f32]], repeats: usize, search: impl Fn(&[f32]) -> Vec<Scored>) -> (Vec<Vec<Scored>>, f64, f64) {
    let found: Vec<Vec<Scored>> = queries.iter().map(|q| search(q)).collect();
    let (mut wall, mut cpu): (Vec<f64>, Vec<f64>) = (0..repeats)
        .map(|_| {
            let (t, c) = (Instant::now(), cpu_s());
            for q in queries {
                std::hint::black_box(search(q));
            }
            let n = queries.len() as f64;
            (n / t.elapsed().as_secs_f64(), n / (cpu_s() - c))
        })
        .unzip();
    wall.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    (found, wall[wall.len() / 2], cpu[cpu.len() / 2])
}

fn main() {
    if let Err(e) = run() {
        eprintln!("index_bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let base_npy = read_npy(&format!("{}/base.npy", args.data))?;
    let (n, dim) = (base_npy.rows, base_npy.cols);
    let base = base_npy.f32s()?;
    drop(base_npy);
    let queries_npy = read_npy(&format!("{}/queries.npy", args.data))?;
    let queries_flat = queries_npy.f32s()?;
    let queries: Vec<&[f32]> = queries_flat.chunks_exact(dim).collect();
    let gt_npy = read_npy(&format!("{}/gt.npy", args.data))?;
    let gt = gt_npy.i32s()?;
    let k = args.k;
    eprintln!("index_bench: {n} x {dim} base, {} queries, kernels {}", queries.len(), Kernels::best().describe());

    // HNSW
    let params = HnswParams { m: args.m, ef_construction: args.ef_construction, ..HnswParams::default() };
    let before = rss_mib();
    let (t, c) = (Instant::now(), cpu_s());
    let hnsw = match &args.load {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
            HnswIndex::from_bytes(&bytes).map_err(|e| format!("{path}: {e}"))?
        }
        None => {
            let mut hnsw = HnswIndex::new(dim, Similarity::Cosine, params).map_err(|e| e.to_string())?;
            hnsw.reserve(n);
            for (id, v) in base.chunks_exact(dim).enumerate() {
                hnsw.insert(id, v).map_err(|e| e.to_string())?;
            }
            hnsw
        }
    };
    let (build_s, build_cpu_s) = (t.elapsed().as_secs_f64(), cpu_s() - c);
    let rss_delta = rss_mib() - before;
    let memory_bytes = hnsw.memory_bytes();
    let bytes = hnsw.to_bytes();
    let index_bytes = bytes.len();
    if let Some(path) = &args.save {
        std::fs::write(path, &bytes).map_err(|e| format!("{path}: {e}"))?;
    }
    drop(bytes);
    eprintln!("index_bench: ember HNSW built in {build_s:.1} s ({build_cpu_s:.1} s CPU), RSS +{rss_delta:.0} MiB");
    let mut sweep = Vec::new();
    for &ef in &args.ef {
        let (found, qps, cpu_qps) =
            measure(&queries, args.repeats, |q| hnsw.search_with(q, k, ef, None).unwrap_or_default());
        let r = recall(&found, &gt, gt_npy.cols, k);
        eprintln!("index_bench: ember ef={ef} recall={r:.4} qps={qps:.0} cpu_qps={cpu_qps:.0}");
        sweep.push(format!(r#"{{"ef": {ef}, "recall": {r}, "qps": {qps}, "cpu_qps": {cpu_qps}}}"#));
    }
    drop(hnsw);
    if args.hnsw_only {
        println!(r#"{{"engine": "ember", "hnsw": [{}]}}"#, sweep.join(", "));
        return Ok(());
    }

    // Quantized flat search with rescoring, and exact flat search.
    let mut quantized = Vec::new();
    let mut bq =
        QuantizedFlatIndex::new(dim, Similarity::Cosine, Quantization::Binary, 1).map_err(|e| e.to_string())?;
    for (id, v) in base.chunks_exact(dim).enumerate() {
        bq.insert(id, v).map_err(|e| e.to_string())?;
    }
    for &over in &args.oversampling {
        let (found, qps, cpu_qps) =
            measure(&queries, args.repeats, |q| bq.search_with(q, k, over, None).unwrap_or_default());
        let r = recall(&found, &gt, gt_npy.cols, k);
        eprintln!("index_bench: ember binary flat oversampling={over} recall={r:.4} qps={qps:.0} cpu_qps={cpu_qps:.0}");
        quantized.push(format!(
            r#"{{"kind": "binary + rescoring", "oversampling": {over}, "recall": {r}, "qps": {qps}, "cpu_qps": {cpu_qps}}}"#
        ));
    }
    drop(bq);
    let mut flat = FlatIndex::new(dim, Similarity::Cosine);
    for (id, v) in base.chunks_exact(dim).enumerate() {
        flat.insert(id, v).map_err(|e| e.to_string())?;
    }
    let few = &queries[..args.flat_queries.min(queries.len())];
    let (found, qps, cpu_qps) = measure(few, args.repeats, |q| flat.search(q, k, None).unwrap_or_default());
    let r = recall(&found, &gt, gt_npy.cols, k);
    eprintln!("index_bench: ember exact flat recall={r:.4} qps={qps:.0} cpu_qps={cpu_qps:.0}");
    quantized.push(format!(
        r#"{{"kind": "exact f32", "oversampling": 0, "recall": {r}, "qps": {qps}, "cpu_qps": {cpu_qps}}}"#
    ));

    println!(
        r#"{{"engine": "ember", "version": "{}", "m": {}, "ef_construction": {}, "k": {k}, "build_s": {build_s}, "build_cpu_s": {build_cpu_s}, "rss_delta_mib": {rss_delta}, "memory_bytes": {memory_bytes}, "index_bytes": {index_bytes}, "kernels": "{}", "hnsw": [{}], "quantized": [{}]}}"#,
        env!("CARGO_PKG_VERSION"),
        args.m,
        args.ef_construction,
        Kernels::best().describe(),
        sweep.join(", "),
        quantized.join(", ")
    );
    Ok(())
}
