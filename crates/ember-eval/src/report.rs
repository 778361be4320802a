//! Comparison reports: a markdown table, a JSON file and an SVG bar chart of main scores per
//! model and dataset, with the time and throughput of each run.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use crate::error::{EvalError, Result};
use crate::task::TaskResult;

/// Scores are reported ×100, as MTEB's leaderboards do.
fn pct(x: f64) -> String {
    format!("{:.2}", x * 100.0)
}

/// The markdown table: one row per (dataset, model).
pub fn markdown(results: &[TaskResult]) -> String {
    let mut out = String::from("| dataset | task | model | main metric | score | time (s) | embedded texts/s | cache hits |\n|---|---|---|---|---:|---:|---:|---:|\n");
    for r in results {
        let embedded = r.texts - r.cache_hits;
        let rate = if r.embed_seconds > 0.0 && embedded > 0 {
            format!("{:.1}", embedded as f64 / r.embed_seconds)
        } else {
            "–".to_string()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.1} | {} | {}/{} |",
            r.dataset,
            r.task,
            r.model,
            r.main_metric,
            pct(r.main_score),
            r.seconds,
            rate,
            r.cache_hits,
            r.texts
        );
    }
    out
}

/// A grouped bar chart: datasets on the x axis, one bar per model, main score ×100.
pub fn svg(results: &[TaskResult]) -> String {
    let datasets: Vec<String> =
        results.iter().map(|r| r.dataset.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let models: Vec<String> = {
        let mut seen = Vec::new();
        for r in results {
            if !seen.contains(&r.model) {
                seen.push(r.model.clone());
            }
        }
        seen
    };
    let colors = ["#d9480f", "#1971c2", "#2f9e44", "#9c36b5", "#f08c00", "#0c8599", "#e03131", "#5c940d"];
    let bar = 28.0;
    let group = bar * models.len() as f64 + 24.0;
    let (left, top, height) = (50.0, 20.0, 240.0);
    let width = left + group * datasets.len() as f64 + 20.0;
    let legend_y = top + height + 50.0;
    let total_h = legend_y + 20.0 * models.len() as f64 + 10.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{total_h:.0}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for tick in (0..=100).step_by(20) {
        let y = top + height * (1.0 - tick as f64 / 100.0);
        let _ = writeln!(s, "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.0}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\">{tick}</text>", width - 20.0, left - 6.0, y + 4.0);
    }
    for (d, dataset) in datasets.iter().enumerate() {
        let gx = left + group * d as f64 + 12.0;
        for (m, model) in models.iter().enumerate() {
            let Some(r) = results.iter().find(|r| &r.dataset == dataset && &r.model == model) else { continue };
            let v = (r.main_score * 100.0).clamp(0.0, 100.0);
            let h = height * v / 100.0;
            let x = gx + bar * m as f64;
            let _ = writeln!(
                s,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{} {}: {:.2}</title></rect><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"9\">{v:.1}</text>",
                top + height - h,
                bar - 4.0,
                colors[m % colors.len()],
                xml(model),
                xml(dataset),
                v,
                x + (bar - 4.0) / 2.0,
                top + height - h - 3.0
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            gx + bar * models.len() as f64 / 2.0,
            top + height + 16.0,
            xml(dataset)
        );
    }
    for (m, model) in models.iter().enumerate() {
        let y = legend_y + 20.0 * m as f64;
        let _ = writeln!(s, "<rect x=\"{left}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{:.0}\" y=\"{:.1}\">{}</text>", y - 10.0, colors[m % colors.len()], left + 18.0, y, xml(model));
    }
    s.push_str("</svg>\n");
    s
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Write `report.md` (table + chart link), `report.json` and `report.svg` beside each other.
pub fn write(path: &Path, results: &[TaskResult]) -> Result<()> {
    let json_path = path.with_extension("json");
    let svg_path = path.with_extension("svg");
    let svg_name = svg_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let md = format!("# ember evaluation\n\nScores ×100.\n\n{}\n![main scores]({svg_name})\n", markdown(results));
    let json = serde_json::to_string_pretty(results)
        .map_err(|e| EvalError::File { path: json_path.clone(), message: e.to_string() })?;
    for (p, body) in [(path.to_path_buf(), md), (json_path, json), (svg_path, svg(results))] {
        std::fs::write(&p, body).map_err(|e| EvalError::io(&p, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::task::TaskKind;

    fn result(model: &str, dataset: &str, score: f64) -> TaskResult {
        TaskResult {
            model: model.into(),
            dataset: dataset.into(),
            task: TaskKind::Sts,
            main_metric: "cosine_spearman".into(),
            main_score: score,
            metrics: BTreeMap::new(),
            seconds: 2.0,
            embed_seconds: 1.0,
            texts: 100,
            cache_hits: 20,
        }
    }

    #[test]
    fn table_and_chart_carry_every_score() {
        let rs = vec![result("a", "sts", 0.8203), result("b", "sts", 0.8342)];
        let md = markdown(&rs);
        assert!(md.contains("| sts | sts | a | cosine_spearman | 82.03 | 2.0 | 80.0 | 20/100 |"), "{md}");
        let chart = svg(&rs);
        assert_eq!(chart.matches("<rect x=").count(), 2 + 2, "two bars and two legend swatches");
        assert!(chart.contains("b sts: 83.42"));
    }
}
