//! GFLOP/s of the packed GEMM on the shapes of MiniLM / MPNet layers, on one thread and on all.
//!
//! ```text
//! cargo run --release --example gemm_speed -p ember-models
//! ```

use std::time::Instant;

use ember_models::cpu::gemm::{Epilogue, PackedLinear};

fn main() {
    let mut shapes = vec![
        (15, 1152, 384),
        (15, 1536, 384),
        (15, 384, 1536),
        (1241, 1152, 384),
        (1241, 1536, 384),
        (1241, 384, 1536),
        (1241, 2304, 768),
    ];
    // `gemm_speed M N K`: that shape only (e.g. under `perf stat`, which counts cycles
    // whatever else the machine runs).
    let dims: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    if let [m, n, k] = dims[..] {
        shapes = vec![(m, n, k)];
    }
    let pool1 = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("pool");
    for &(m, n, k) in &shapes {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 * 0.01).collect();
        let w: Vec<f32> = (0..n * k).map(|i| ((i * 5) % 11) as f32 * 0.01).collect();
        // `EMBER_COLD=1`: cycle through 32 copies of the weight, so that each call finds it
        // in L3 rather than L2, as a layer of a real model does.
        let copies = if std::env::var_os("EMBER_COLD").is_some() { 32 } else { 1 };
        let all: Vec<PackedLinear> = (0..copies).map(|_| PackedLinear::new(&w, None, n, k)).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let mut c = vec![0f32; m * n];
        let flops = 2.0 * (m * n * k) as f64;
        let reps = ((4e9 / flops) as usize).max(3);
        // The fastest call: the machine is shared, and the minimum is what the code can do.
        let time = |c: &mut Vec<f32>| {
            let mut best = f64::INFINITY;
            for _ in 0..reps {
                let start = Instant::now();
                let packed = &all[next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % copies];
                packed.forward(&a, m, c, Epilogue::Bias);
                best = best.min(start.elapsed().as_secs_f64());
            }
            flops / best / 1e9
        };
        let one = pool1.install(|| time(&mut c));
        let all = time(&mut c);
        println!(
            "{m:>5}×{n:>5}×{k:>5}: 1 thread {one:6.1} GFLOP/s | {} threads {all:6.1} GFLOP/s",
            rayon::current_num_threads()
        );
    }
}
