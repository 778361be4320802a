//! Prometheus metrics: a small registry of counters, gauges and histograms with labels, rendered
//! in the text exposition format at `GET /metrics`.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `ember_http_requests_total` | endpoint, method, status | requests answered |
//! | `ember_http_request_duration_seconds` | endpoint | latency until the response head |
//! | `ember_http_requests_inflight` | | requests being handled now |
//! | `ember_queue_duration_seconds` | model | time an input waited for the model thread |
//! | `ember_queue_depth` | model | inputs waiting now |
//! | `ember_queue_rejected_total` | model | requests refused with 429 |
//! | `ember_queue_cancelled_total` | model | waiting inputs dropped because their client left |
//! | `ember_batch_inputs` | model | inputs per forward pass |
//! | `ember_batch_tokens` | model | tokens per forward pass |
//! | `ember_batch_duration_seconds` | model | forward-pass time |
//! | `ember_embedded_tokens_total` | model | tokens embedded (`rate()` of it is tokens per second) |
//! | `ember_embedded_inputs_total` | model | inputs embedded |

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

const LATENCY_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];
const TOKEN_BUCKETS: &[f64] =
    &[16.0, 64.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0, 32768.0, 65536.0, 131072.0];

#[derive(Debug, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(buckets: usize) -> Self {
        Histogram { counts: vec![0; buckets], sum: 0.0, count: 0 }
    }

    fn observe(&mut self, bounds: &[f64], value: f64) {
        if let Some(i) = bounds.iter().position(|&b| value <= b) {
            self.counts[i] += 1;
        }
        self.sum += value;
        self.count += 1;
    }
}

/// A metric with labels: label values → value.
#[derive(Debug)]
struct Family<T> {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    values: Mutex<BTreeMap<Vec<String>, T>>,
}

impl<T> Family<T> {
    fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        Family { name, help, labels, values: Mutex::new(BTreeMap::new()) }
    }

    fn values(&self) -> MutexGuard<'_, BTreeMap<Vec<String>, T>> {
        self.values.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn label_text(&self, values: &[String], extra: Option<(&str, &str)>) -> String {
        let mut parts: Vec<String> =
            self.labels.iter().zip(values).map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
        if let Some((k, v)) = extra {
            parts.push(format!("{k}=\"{v}\""));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", parts.join(","))
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn key(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

impl Family<f64> {
    fn add(&self, labels: &[&str], by: f64) {
        *self.values().entry(key(labels)).or_insert(0.0) += by;
    }

    fn set(&self, labels: &[&str], to: f64) {
        self.values().insert(key(labels), to);
    }

    fn render(&self, kind: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}\n# TYPE {} {kind}", self.name, self.help, self.name);
        for (labels, value) in self.values().iter() {
            let _ = writeln!(out, "{}{} {value}", self.name, self.label_text(labels, None));
        }
    }
}

#[derive(Debug)]
struct HistogramFamily {
    family: Family<Histogram>,
    bounds: &'static [f64],
}

impl HistogramFamily {
    fn new(name: &'static str, help: &'static str, labels: &'static [&'static str], bounds: &'static [f64]) -> Self {
        HistogramFamily { family: Family::new(name, help, labels), bounds }
    }

    fn observe(&self, labels: &[&str], value: f64) {
        self.family
            .values()
            .entry(key(labels))
            .or_insert_with(|| Histogram::new(self.bounds.len()))
            .observe(self.bounds, value);
    }

    fn render(&self, out: &mut String) {
        let f = &self.family;
        let _ = writeln!(out, "# HELP {} {}\n# TYPE {} histogram", f.name, f.help, f.name);
        for (labels, h) in f.values().iter() {
            let mut cumulative = 0;
            for (bound, count) in self.bounds.iter().zip(&h.counts) {
                cumulative += count;
                let le = format!("{bound}");
                let _ = writeln!(out, "{}_bucket{} {cumulative}", f.name, f.label_text(labels, Some(("le", &le))));
            }
            let _ = writeln!(out, "{}_bucket{} {}", f.name, f.label_text(labels, Some(("le", "+Inf"))), h.count);
            let _ = writeln!(out, "{}_sum{} {}", f.name, f.label_text(labels, None), h.sum);
            let _ = writeln!(out, "{}_count{} {}", f.name, f.label_text(labels, None), h.count);
        }
    }
}

/// Every metric the server keeps.
#[derive(Debug)]
pub struct Metrics {
    requests: Family<f64>,
    request_seconds: HistogramFamily,
    inflight: AtomicI64,
    queue_seconds: HistogramFamily,
    queue_depth: Family<f64>,
    queue_rejected: Family<f64>,
    queue_cancelled: Family<f64>,
    batch_inputs: HistogramFamily,
    batch_tokens: HistogramFamily,
    batch_seconds: HistogramFamily,
    tokens: Family<f64>,
    inputs: Family<f64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Family::new(
                "ember_http_requests_total",
                "HTTP requests answered.",
                &["endpoint", "method", "status"],
            ),
            request_seconds: HistogramFamily::new(
                "ember_http_request_duration_seconds",
                "HTTP request latency until the response head, in seconds.",
                &["endpoint"],
                LATENCY_BUCKETS,
            ),
            inflight: AtomicI64::new(0),
            queue_seconds: HistogramFamily::new(
                "ember_queue_duration_seconds",
                "Time an input waited in the model's queue, in seconds.",
                &["model"],
                LATENCY_BUCKETS,
            ),
            queue_depth: Family::new("ember_queue_depth", "Inputs waiting in the model's queue.", &["model"]),
            queue_rejected: Family::new(
                "ember_queue_rejected_total",
                "Requests refused because the model's queue was full.",
                &["model"],
            ),
            queue_cancelled: Family::new(
                "ember_queue_cancelled_total",
                "Waiting inputs dropped because their client went away.",
                &["model"],
            ),
            batch_inputs: HistogramFamily::new(
                "ember_batch_inputs",
                "Inputs per forward pass.",
                &["model"],
                SIZE_BUCKETS,
            ),
            batch_tokens: HistogramFamily::new(
                "ember_batch_tokens",
                "Tokens per forward pass.",
                &["model"],
                TOKEN_BUCKETS,
            ),
            batch_seconds: HistogramFamily::new(
                "ember_batch_duration_seconds",
                "Forward-pass time, in seconds.",
                &["model"],
                LATENCY_BUCKETS,
            ),
            tokens: Family::new(
                "ember_embedded_tokens_total",
                "Tokens embedded (rate() gives tokens per second).",
                &["model"],
            ),
            inputs: Family::new("ember_embedded_inputs_total", "Inputs embedded.", &["model"]),
        }
    }
}

impl Metrics {
    pub fn observe_request(&self, endpoint: &str, method: &str, status: u16, seconds: f64) {
        self.requests.add(&[endpoint, method, &status.to_string()], 1.0);
        self.request_seconds.observe(&[endpoint], seconds);
    }

    pub fn observe_queue_time(&self, model: &str, seconds: f64) {
        self.queue_seconds.observe(&[model], seconds);
    }

    pub fn observe_batch(&self, model: &str, inputs: usize, tokens: usize, seconds: f64) {
        self.batch_inputs.observe(&[model], inputs as f64);
        self.batch_tokens.observe(&[model], tokens as f64);
        self.batch_seconds.observe(&[model], seconds);
        self.tokens.add(&[model], tokens as f64);
    }

    pub fn count_embedded(&self, model: &str, inputs: usize) {
        self.inputs.add(&[model], inputs as f64);
    }

    pub fn set_queue_depth(&self, model: &str, depth: usize) {
        self.queue_depth.set(&[model], depth as f64);
    }

    pub fn queue_rejected(&self, model: &str) {
        self.queue_rejected.add(&[model], 1.0);
    }

    pub fn queue_cancelled(&self, model: &str, inputs: usize) {
        self.queue_cancelled.add(&[model], inputs as f64);
    }

    /// Requests being handled now.
    pub fn inflight(&self) -> i64 {
        self.inflight.load(Ordering::Relaxed)
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.requests.render("counter", &mut out);
        self.request_seconds.render(&mut out);
        let _ = writeln!(
            out,
            "# HELP ember_http_requests_inflight HTTP requests being handled.\n\
             # TYPE ember_http_requests_inflight gauge\nember_http_requests_inflight {}",
            self.inflight()
        );
        self.queue_seconds.render(&mut out);
        self.queue_depth.render("gauge", &mut out);
        self.queue_rejected.render("counter", &mut out);
        self.queue_cancelled.render("counter", &mut out);
        self.batch_inputs.render(&mut out);
        self.batch_tokens.render(&mut out);
        self.batch_seconds.render(&mut out);
        self.tokens.render("counter", &mut out);
        self.inputs.render("counter", &mut out);
        out
    }
}

/// Decrements the inflight gauge however the request ends (a dropped future included).
struct Inflight<'a>(&'a AtomicI64);

impl Drop for Inflight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Middleware: count, time and track every request by its route pattern (not its path, so
/// collection names do not multiply the series).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let metrics = state.metrics();
    let endpoint =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().as_str().to_string();
    metrics.inflight.fetch_add(1, Ordering::Relaxed);
    let _inflight = Inflight(&metrics.inflight);
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.observe_request(&endpoint, &method, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`.
pub async fn metrics_handler(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics().render()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_histograms() {
        let m = Metrics::default();
        m.observe_request("/embed", "POST", 200, 0.003);
        m.observe_request("/embed", "POST", 200, 0.2);
        m.observe_batch("minilm", 3, 40, 0.01);
        let text = m.render();
        assert!(text.contains("ember_http_requests_total{endpoint=\"/embed\",method=\"POST\",status=\"200\"} 2"));
        assert!(text.contains("ember_http_request_duration_seconds_bucket{endpoint=\"/embed\",le=\"0.005\"} 1"));
        assert!(text.contains("ember_http_request_duration_seconds_bucket{endpoint=\"/embed\",le=\"0.25\"} 2"));
        assert!(text.contains("ember_http_request_duration_seconds_bucket{endpoint=\"/embed\",le=\"+Inf\"} 2"));
        assert!(text.contains("ember_http_request_duration_seconds_count{endpoint=\"/embed\"} 2"));
        assert!(text.contains("ember_embedded_tokens_total{model=\"minilm\"} 40"));
        assert!(text.contains("ember_batch_inputs_bucket{model=\"minilm\",le=\"4\"} 1"));
        assert!(text.contains("# TYPE ember_http_requests_inflight gauge\nember_http_requests_inflight 0"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
