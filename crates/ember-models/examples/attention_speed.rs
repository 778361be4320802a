//! Attention kernel speed on its own: CPU time per token for sequences of a given length, and
//! the achieved GFLOP/s (QKᵀ and PV: 4·n·hidden flops per token per layer).
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo run --release --example attention_speed -p ember-models -- [lengths, default 16,64,128,256] [heads 12] [hidden 384]
//! ```

use std::time::Instant;

use ember_models::cpu::attention::attend;

fn main() {
    let mut args = std::env::args().skip(1);
    let lengths: Vec<usize> = args
        .next()
        .unwrap_or_else(|| "16,64,128,256".into())
        .split(',')
        .map(|s| s.parse().expect("a length"))
        .collect();
    let heads: usize = args.next().map_or(12, |s| s.parse().expect("heads"));
    let hidden: usize = args.next().map_or(384, |s| s.parse().expect("hidden"));
    for n in lengths {
        // 8192 tokens per call, as sequences of length n.
        let seqs = (8192 / n).max(1);
        let lens = vec![n; seqs];
        let tokens = n * seqs;
        let mut state = 12345u64;
        let qkv: Vec<f32> = (0..tokens * 3 * hidden)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect();
        let mut out = vec![0f32; tokens * hidden];
        attend(&qkv, &lens, heads, None, &mut out);
        let mut times = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            attend(&qkv, &lens, heads, None, &mut out);
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let t = times[times.len() / 2];
        let flops = 4.0 * (n * hidden) as f64 * tokens as f64;
        println!(
            "n {n:>4}: {:>8.2} µs per token, {:>6.1} GFLOP/s (median of 7, {tokens} tokens)",
            t / tokens as f64 * 1e6,
            flops / t / 1e9
        );
    }
}
