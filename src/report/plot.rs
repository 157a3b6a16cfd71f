//! PNG plots: loss curves (several series against epoch or step) and histograms (e.g. per-image
//! PSNR). Non-finite values (a diverged loss) are left out and counted in a note on the plot,
//! never a panic.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use plotters::prelude::*;

use super::{ensure_font, write_png_rgb, FONT_FAMILY};

/// How [`loss_curves_with`] draws.
#[derive(Clone, Debug)]
pub struct CurveOptions {
    /// Logarithmic y axis (points with y <= 0 are then left out and counted in the note).
    pub log_y: bool,
    pub x_label: String,
    pub y_label: String,
    /// Image size in pixels (width, height).
    pub size: (u32, u32),
}

impl Default for CurveOptions {
    fn default() -> Self {
        CurveOptions {
            log_y: false,
            x_label: "epoch".into(),
            y_label: "loss".into(),
            size: (800, 500),
        }
    }
}

/// Line plot of each `(name, points)` series (x, y), e.g. train and val loss against epoch, with
/// a legend; linear axes, 800x500 PNG. See [`loss_curves_with`] for log-y and labels.
pub fn loss_curves(path: &Path, title: &str, series: &[(&str, &[(f64, f64)])]) -> Result<()> {
    loss_curves_with(path, title, series, &CurveOptions::default())
}

/// [`loss_curves`] with options.
pub fn loss_curves_with(
    path: &Path,
    title: &str,
    series: &[(&str, &[(f64, f64)])],
    opts: &CurveOptions,
) -> Result<()> {
    ensure_font()?;
    let (w, h) = check_size(opts.size)?;
    let mut dropped = 0usize;
    let kept: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(name, pts)| {
            let v: Vec<(f64, f64)> = pts
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite() && (!opts.log_y || *y > 0.0))
                .collect();
            dropped += pts.len() - v.len();
            (*name, v)
        })
        .collect();
    let xr = range(kept.iter().flat_map(|(_, v)| v.iter().map(|p| p.0)), 0.0);

    let mut buf = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(de)?;
        let builder = || {
            let mut b = ChartBuilder::on(&root);
            b.caption(title, (FONT_FAMILY, 22))
                .margin(14)
                .x_label_area_size(46)
                .y_label_area_size(78);
            b
        };
        // The two y axes are different coordinate types, so the drawing is written once as a
        // macro and instantiated for each.
        macro_rules! draw {
            ($chart:expr, $y_desc:expr, $y_labels:expr, $y_fmt:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(opts.x_label.as_str())
                    .y_desc($y_desc)
                    .label_style((FONT_FAMILY, 14))
                    .axis_desc_style((FONT_FAMILY, 15))
                    .x_label_formatter(&|v| fmt_num(*v))
                    .y_labels($y_labels)
                    .y_label_formatter(&$y_fmt)
                    .light_line_style(RGBColor(235, 235, 235))
                    .draw()
                    .map_err(de)?;
                let mut any_label = false;
                for (i, (name, pts)) in kept.iter().enumerate() {
                    let color = Palette99::pick(i).to_rgba();
                    let drawn = chart
                        .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                        .map_err(de)?;
                    if !name.is_empty() {
                        any_label = true;
                        drawn.label(*name).legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(2))
                        });
                    }
                    // Markers make single points and sparse series visible.
                    if pts.len() <= 60 {
                        chart
                            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                            .map_err(de)?;
                    }
                }
                if any_label {
                    chart
                        .configure_series_labels()
                        .position(SeriesLabelPosition::UpperRight)
                        .background_style(WHITE.mix(0.85))
                        .border_style(BLACK.mix(0.5))
                        .label_font((FONT_FAMILY, 14))
                        .draw()
                        .map_err(de)?;
                }
            }};
        }
        if opts.log_y {
            let lr = range(
                kept.iter().flat_map(|(_, v)| v.iter().map(|p| p.1.log10())),
                0.05,
            );
            // Whole decades: plotters puts log ticks at powers of ten and their multiples, so
            // a range inside one decade would get no labels.
            let (d0, mut d1) = (lr.0.floor(), lr.1.ceil());
            if d1 <= d0 {
                d1 = d0 + 1.0;
            }
            // (Widened by 1e-9 so rounding keeps both end decades' ticks.)
            let yr = (10f64.powf(d0) * (1.0 - 1e-9), 10f64.powf(d1) * (1.0 + 1e-9));
            draw!(
                builder()
                    .build_cartesian_2d(xr.0..xr.1, (yr.0..yr.1).log_scale())
                    .map_err(de)?,
                format!("{} (log scale)", opts.y_label),
                // One label per decade: plotters' finer log ticks repeat each power of ten,
                // which would print those labels twice.
                (d1 - d0) as usize + 1,
                |v: &f64| fmt_num(*v)
            );
        } else {
            let yr = range(kept.iter().flat_map(|(_, v)| v.iter().map(|p| p.1)), 0.05);
            draw!(
                builder()
                    .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
                    .map_err(de)?,
                opts.y_label.as_str(),
                10,
                |v: &f64| fmt_num(*v)
            );
        }
        let total: usize = kept.iter().map(|(_, v)| v.len()).sum();
        let note = if total == 0 {
            Some("no finite data to plot".to_string())
        } else if dropped > 0 {
            Some(format!(
                "{dropped} point(s) not shown (non-finite{})",
                if opts.log_y { " or <= 0" } else { "" }
            ))
        } else {
            None
        };
        if let Some(note) = note {
            root.draw(&Text::new(
                note,
                (10, h as i32 - 18),
                (FONT_FAMILY, 13).into_font().color(&RED),
            ))
            .map_err(de)?;
        }
        root.present().map_err(de)?;
    }
    write_png_rgb(path, w, h, buf)
}

/// Histogram of `values` in `bins` equal-width bins between their min and max, with n, mean,
/// median, min and max written under the title; 800x500 PNG. Non-finite values are counted in a
/// note and left out.
pub fn histogram(path: &Path, title: &str, values: &[f64], bins: usize) -> Result<()> {
    histogram_labeled(path, title, "value", values, bins)
}

/// [`histogram`] with a name for the x axis (e.g. "PSNR (dB)").
pub fn histogram_labeled(
    path: &Path,
    title: &str,
    x_label: &str,
    values: &[f64],
    bins: usize,
) -> Result<()> {
    ensure_font()?;
    if bins == 0 {
        bail!("histogram {}: bins must be at least 1", path.display());
    }
    let (w, h) = (800u32, 500u32);
    let mut finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    finite.sort_by(|a, b| a.total_cmp(b));
    let dropped = values.len() - finite.len();
    let (lo, hi) = range(finite.iter().copied(), 0.0);
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &v in &finite {
        let b = (((v - lo) / width) as usize).min(bins - 1);
        counts[b] += 1;
    }
    let cmax = counts.iter().copied().max().unwrap_or(0).max(1);
    let stats = if finite.is_empty() {
        "no finite values".to_string()
    } else {
        let n = finite.len();
        let mean = finite.iter().sum::<f64>() / n as f64;
        let median = if n % 2 == 1 {
            finite[n / 2]
        } else {
            0.5 * (finite[n / 2 - 1] + finite[n / 2])
        };
        format!(
            "n = {n}   mean = {}   median = {}   min = {}   max = {}",
            fmt_num(mean),
            fmt_num(median),
            fmt_num(finite[0]),
            fmt_num(finite[n - 1])
        )
    };

    let mut buf = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(de)?;
        let (top, body) = root.split_vertically(58);
        top.draw(&Text::new(title.to_string(), (14, 8), (FONT_FAMILY, 22)))
            .map_err(de)?;
        top.draw(&Text::new(stats, (14, 36), (FONT_FAMILY, 14)))
            .map_err(de)?;
        let mut chart = ChartBuilder::on(&body)
            .margin(14)
            .x_label_area_size(46)
            .y_label_area_size(70)
            .build_cartesian_2d(lo..hi, 0f64..cmax as f64 * 1.08)
            .map_err(de)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc("count")
            .label_style((FONT_FAMILY, 14))
            .axis_desc_style((FONT_FAMILY, 15))
            .x_label_formatter(&|v| fmt_num(*v))
            .y_label_formatter(&|v| {
                // Counts are integers: leave fractional ticks unlabelled.
                if (v - v.round()).abs() < 1e-9 {
                    format!("{}", v.round() as i64)
                } else {
                    String::new()
                }
            })
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(de)?;
        let fill = RGBColor(70, 110, 180);
        chart
            .draw_series(
                counts
                    .iter()
                    .enumerate()
                    .filter(|(_, &c)| c > 0)
                    .map(|(i, &c)| {
                        let x0 = lo + i as f64 * width;
                        Rectangle::new([(x0, 0.0), (x0 + width, c as f64)], fill.filled())
                    }),
            )
            .map_err(de)?;
        chart
            .draw_series(
                counts
                    .iter()
                    .enumerate()
                    .filter(|(_, &c)| c > 0)
                    .map(|(i, &c)| {
                        let x0 = lo + i as f64 * width;
                        Rectangle::new([(x0, 0.0), (x0 + width, c as f64)], WHITE.stroke_width(1))
                    }),
            )
            .map_err(de)?;
        if dropped > 0 {
            root.draw(&Text::new(
                format!("{dropped} non-finite value(s) not shown"),
                (10, h as i32 - 18),
                (FONT_FAMILY, 13).into_font().color(&RED),
            ))
            .map_err(de)?;
        }
        root.present().map_err(de)?;
    }
    write_png_rgb(path, w, h, buf)
}

fn check_size((w, h): (u32, u32)) -> Result<(u32, u32)> {
    if !(200..=8192).contains(&w) || !(150..=8192).contains(&h) {
        bail!("plot size {w}x{h} is out of range; use 200..8192 by 150..8192 pixels");
    }
    Ok((w, h))
}

/// (min, max) of the values, widened by `pad` of the span; a sane range when empty or flat.
fn range(vals: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in vals {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo <= f64::EPSILON * lo.abs().max(hi.abs()).max(1e-300) {
        let d = if lo == 0.0 { 0.5 } else { 0.5 * lo.abs() };
        return (lo - d, hi + d);
    }
    let p = (hi - lo) * pad;
    (lo - p, hi + p)
}

/// Compact tick/stat label: 4 significant digits, scientific outside [1e-3, 1e5).
pub(crate) fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.2e}")
    } else {
        let digits = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
        let s = format!("{v:.digits$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }
}

/// plotters errors carry the backend error; keep the message.
fn de<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing the plot failed: {e}")
}
