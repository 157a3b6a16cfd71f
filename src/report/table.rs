//! Result tables as GitHub-flavoured Markdown (for README/report text) and CSV (for scripts).

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

/// A Markdown table with padded columns. Columns whose cells all parse as numbers are
/// right-aligned (`---:`). `|` in cells is escaped and newlines become spaces. A row shorter
/// than the header is padded with empty cells; a longer one widens the table with unnamed
/// columns, so nothing is lost.
pub fn markdown(headers: &[&str], rows: &[Vec<String>]) -> String {
    let ncols = rows
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(0)
        .max(headers.len());
    if ncols == 0 {
        return String::new();
    }
    let clean = |s: &str| s.replace('|', "\\|").replace(['\r', '\n'], " ");
    let head: Vec<String> = (0..ncols)
        .map(|c| clean(headers.get(c).copied().unwrap_or("")))
        .collect();
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            (0..ncols)
                .map(|c| clean(r.get(c).map(String::as_str).unwrap_or("")))
                .collect()
        })
        .collect();
    let numeric: Vec<bool> = (0..ncols)
        .map(|c| {
            let mut any = false;
            let all = body.iter().all(|r| {
                let v = r[c].trim();
                any |= !v.is_empty();
                v.is_empty() || v.parse::<f64>().is_ok()
            });
            all && any
        })
        .collect();
    let width: Vec<usize> = (0..ncols)
        .map(|c| {
            body.iter()
                .map(|r| r[c].chars().count())
                .chain([head[c].chars().count(), 3])
                .max()
                .unwrap_or(3)
        })
        .collect();
    let line = |cells: &[String]| {
        let mut s = String::from("|");
        for c in 0..ncols {
            let pad = width[c] - cells[c].chars().count();
            if numeric[c] {
                s.push_str(&format!(" {}{} |", " ".repeat(pad), cells[c]));
            } else {
                s.push_str(&format!(" {}{} |", cells[c], " ".repeat(pad)));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(&head);
    out.push('|');
    for c in 0..ncols {
        if numeric[c] {
            out.push_str(&format!(" {}: |", "-".repeat(width[c] - 1)));
        } else {
            out.push_str(&format!(" {} |", "-".repeat(width[c])));
        }
    }
    out.push('\n');
    for r in &body {
        out.push_str(&line(r));
    }
    out
}

/// Write a CSV file (RFC 4180 quoting, header line first) atomically. Every row must have as
/// many cells as there are headers.
pub fn write_csv(path: &Path, headers: &[&str], rows: &[Vec<String>]) -> Result<()> {
    if headers.is_empty() {
        bail!("CSV {}: no columns given", path.display());
    }
    for (i, r) in rows.iter().enumerate() {
        if r.len() != headers.len() {
            bail!(
                "CSV {}: row {i} has {} cells but there are {} headers ({})",
                path.display(),
                r.len(),
                headers.len(),
                headers.join(", ")
            );
        }
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(headers)
        .and_then(|_| rows.iter().try_for_each(|r| w.write_record(r)))
        .with_context(|| format!("formatting CSV {}", path.display()))?;
    let bytes = w
        .into_inner()
        .map_err(|e| anyhow!("formatting CSV {}: {e}", path.display()))?;
    crate::fsutil::write_atomic(path, &bytes)
}
