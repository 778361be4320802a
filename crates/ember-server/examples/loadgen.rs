//! A small HTTP load generator for `scripts/bench-serve.sh`: `concurrency` keep-alive
//! connections, each sending OpenAI-style embedding requests of `batch` sentences (taken in turn
//! from a file) back to back; prints one JSON line with throughput and latency percentiles.
//!
//! Requests run for `warmup + seconds`; the responses that arrive within the last `seconds`
//! count, for throughput and for latency (so a latency longer than the warm-up still counts).
//!
//! ```sh
//! cargo run --release -p ember-server --example loadgen -- \
//!     --addr 127.0.0.1:8080 --path /v1/embeddings --model minilm \
//!     --sentences bench/corpus/sentences.txt --batch 32 --concurrency 64 --seconds 15
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Debug, Clone)]
struct Args {
    addr: String,
    path: String,
    model: String,
    sentences: String,
    batch: usize,
    concurrency: usize,
    seconds: f64,
    warmup: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        addr: "127.0.0.1:8080".into(),
        path: "/v1/embeddings".into(),
        model: "minilm".into(),
        sentences: "bench/corpus/sentences.txt".into(),
        batch: 1,
        concurrency: 1,
        seconds: 10.0,
        warmup: 2.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<f64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--addr" => a.addr = value,
            "--path" => a.path = value,
            "--model" => a.model = value,
            "--sentences" => a.sentences = value,
            "--batch" => a.batch = num(&value)? as usize,
            "--concurrency" => a.concurrency = num(&value)? as usize,
            "--seconds" => a.seconds = num(&value)?,
            "--warmup" => a.warmup = num(&value)?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

/// One request on a keep-alive connection; the status code.
async fn request(
    reader: &mut BufReader<TcpStream>,
    head: &str,
    body: &[u8],
    scratch: &mut Vec<u8>,
) -> std::io::Result<u16> {
    let stream = reader.get_mut();
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut status = 0;
    let mut length = None;
    let mut chunked = false;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if status == 0 {
            status = l.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        } else if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse::<usize>().ok();
            } else if k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
        }
    }
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).await?;
            let size = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
            scratch.resize(size + 2, 0);
            reader.read_exact(scratch).await?;
            if size == 0 {
                break;
            }
        }
    } else {
        scratch.resize(length.unwrap_or(0), 0);
        reader.read_exact(scratch).await?;
    }
    Ok(status)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let sentences: Arc<Vec<String>> = Arc::new(
        std::fs::read_to_string(&args.sentences)?.lines().filter(|l| !l.trim().is_empty()).map(String::from).collect(),
    );
    if sentences.is_empty() {
        return Err("no sentences".into());
    }
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let warm_until = start + Duration::from_secs_f64(args.warmup);
    let end = warm_until + Duration::from_secs_f64(args.seconds);
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let args = args.clone();
        let sentences = Arc::clone(&sentences);
        let next = Arc::clone(&next);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            let mut reader = BufReader::new(TcpStream::connect(&args.addr).await?);
            reader.get_ref().set_nodelay(true)?;
            let mut scratch = Vec::new();
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let first = next.fetch_add(args.batch, Ordering::Relaxed);
                let input: Vec<&str> =
                    (0..args.batch).map(|k| sentences[(first + k) % sentences.len()].as_str()).collect();
                let body = serde_json::json!({ "model": args.model, "input": input }).to_string();
                let head = format!(
                    "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    args.path,
                    args.addr,
                    body.len()
                );
                let sent = Instant::now();
                let status = match request(&mut reader, &head, body.as_bytes(), &mut scratch).await {
                    Ok(s) => s,
                    Err(_) => {
                        errors += 1;
                        reader = BufReader::new(TcpStream::connect(&args.addr).await?);
                        continue;
                    }
                };
                let done = Instant::now();
                if done >= warm_until && done <= end {
                    if status == 200 {
                        latencies.push(done.duration_since(sent).as_secs_f64());
                    } else {
                        errors += 1;
                    }
                }
            }
            Ok::<_, std::io::Error>((latencies, errors))
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await??;
        latencies.extend(l);
        errors += e;
    }
    latencies.sort_by(f64::total_cmp);
    let n = latencies.len();
    let report = serde_json::json!({
        "batch": args.batch,
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "requests": n,
        "errors": errors,
        "requests_per_s": n as f64 / args.seconds,
        "sentences_per_s": (n * args.batch) as f64 / args.seconds,
        "p50_ms": percentile(&latencies, 50.0) * 1e3,
        "p90_ms": percentile(&latencies, 90.0) * 1e3,
        "p99_ms": percentile(&latencies, 99.0) * 1e3,
    });
    println!("{report}");
    Ok(())
}
