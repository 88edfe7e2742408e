//! Draws the plots of BENCHMARKS.md: classification time against rule count (from criterion's
//! results) and latency distributions per mode (from `rebound bench --histogram` files).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Parser;
use plotters::prelude::*;
use serde::Deserialize;

#[derive(Parser)]
#[command(about)]
struct Args {
    /// criterion's output directory.
    #[arg(long, default_value = "target/criterion")]
    criterion: PathBuf,
    /// `rebound bench --histogram` files, one series each.
    #[arg(long, num_args = 1..)]
    latency: Vec<PathBuf>,
    /// A TrueType font for the labels (plotters draws text with it).
    #[arg(long, default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")]
    font: PathBuf,
    /// Where the PNG files go.
    #[arg(long, default_value = "docs/bench")]
    out: PathBuf,
}

/// Synthetic rule counts `benches/engine.rs` adds to the shipped rules.
const SIZES: [u32; 4] = [100, 1_000, 10_000, 100_000];

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let font = std::fs::read(&args.font).with_context(|| {
        format!(
            "cannot read the font {} (Debian: fonts-dejavu-core; or pass --font)",
            args.font.display()
        )
    })?;
    // plotters keeps registered fonts for the life of the process.
    plotters::style::register_font("sans-serif", FontStyle::Normal, font.leak())
        .map_err(|_| anyhow::anyhow!("{} is not a usable TrueType font", args.font.display()))?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let scaling = args.out.join("classify_vs_rules.png");
    rule_scaling(&args.criterion, &scaling)?;
    println!("wrote {}", scaling.display());
    if !args.latency.is_empty() {
        let latency = args.out.join("latency.png");
        latency_distributions(&args.latency, &latency)?;
        println!("wrote {}", latency.display());
    }
    Ok(())
}

#[derive(Deserialize)]
struct Estimates {
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

/// criterion's median estimate for a benchmark, in ns.
fn median_ns(criterion: &Path, bench: &str) -> anyhow::Result<f64> {
    let path = criterion.join(bench).join("new/estimates.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {} (run `cargo bench --bench engine -- classify` first)",
            path.display()
        )
    })?;
    let estimates: Estimates = serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
    Ok(estimates.median.point_estimate)
}

fn rule_scaling(criterion: &Path, out: &Path) -> anyhow::Result<()> {
    let shipped = median_ns(criterion, "classify/shipped")?;
    let mut points = Vec::new();
    for n in SIZES {
        points.push((f64::from(n), median_ns(criterion, &format!("classify/rules/{n}"))?));
    }
    let top = points.iter().map(|p| p.1).fold(shipped, f64::max).max(1_000.0) * 1.25;
    let root = BitMapBackend::new(out, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(draw)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Classification time against rule count", ("sans-serif", 24))
        .margin(16)
        .margin_right(40)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d((50f64..200_000f64).log_scale(), 0f64..top)
        .map_err(draw)?;
    chart
        .configure_mesh()
        .x_desc("synthetic rules added to the shipped rules")
        .y_desc("ns per reply (criterion median)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(draw)?;
    let span = [50f64, 200_000f64];
    let flat = |y: f64| span.iter().map(move |&x| (x, y));
    chart
        .draw_series(LineSeries::new(flat(shipped), BLACK.stroke_width(1)))
        .map_err(draw)?
        .label(format!("shipped rules only: {shipped:.0} ns"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    chart
        .draw_series(LineSeries::new(flat(1_000.0), RED.stroke_width(1)))
        .map_err(draw)?
        .label("1 µs target (shipped rules)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart
        .draw_series(LineSeries::new(points.clone(), BLUE.stroke_width(2)))
        .map_err(draw)?
        .label("shipped + synthetic")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .draw_series(points.iter().map(|&p| Circle::new(p, 4, BLUE.filled())))
        .map_err(draw)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()
        .map_err(draw)?;
    root.present().map_err(draw)?;
    Ok(())
}

/// What `rebound bench --histogram` writes.
#[derive(Deserialize)]
struct Distribution {
    mode: String,
    baseline: bool,
    rate: Option<f64>,
    classifications_per_sec: f64,
    latency_us: Vec<(f64, u64)>,
}

/// Percentile as "nines": 90% is 1, 99% is 2, 99.9% is 3.
fn nines(percentile: f64) -> f64 {
    -(1.0 - percentile / 100.0).max(1e-6).log10()
}

fn latency_distributions(files: &[PathBuf], out: &Path) -> anyhow::Result<()> {
    let mut runs = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let run: Distribution = serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
        if run.latency_us.is_empty() {
            bail!("{}: no latency points", path.display());
        }
        runs.push(run);
    }
    let highest = runs
        .iter()
        .flat_map(|r| r.latency_us.iter().map(|p| p.1))
        .max()
        .unwrap_or(1)
        .max(10) as f64;
    let root = BitMapBackend::new(out, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(draw)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Latency distribution per mode", ("sans-serif", 24))
        .margin(16)
        .margin_right(40)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..5f64, (10f64..highest * 2.0).log_scale())
        .map_err(draw)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency per request, µs")
        .x_labels(6)
        .x_label_formatter(&|x| format!("{}%", 100.0 - 100.0 * 10f64.powf(-x)))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(draw)?;
    let palette = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    for (i, run) in runs.iter().enumerate() {
        let color = palette[i % palette.len()];
        let rate = run.rate.map_or(String::new(), |r| format!(" at {r:.0}/s"));
        let label = format!(
            "{}{}{} ({:.0} classifications/s)",
            run.mode,
            if run.baseline { " baseline" } else { "" },
            rate,
            run.classifications_per_sec
        );
        let points: Vec<(f64, f64)> = run
            .latency_us
            .iter()
            .map(|&(p, us)| (nines(p), us.max(10) as f64))
            .collect();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(draw)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(draw)?;
    root.present().map_err(draw)?;
    Ok(())
}

/// plotters' errors borrow the backend's error type; keep their text.
fn draw(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing failed: {e}")
}
