//! Image grids: one labelled row per kind of image (originals, noisy inputs, reconstructions),
//! under a caption such as "synthetic faces: real results need real faces".

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use plotters::prelude::*;

use super::{ensure_font, write_png_rgb, FONT_FAMILY};

/// Gap between images and around the grid, in pixels.
const PAD: u32 = 6;
const LABEL_FONT: u32 = 16;
const CAPTION_FONT: u32 = 18;
/// Colour of NaN/inf pixels: magenta, which no grayscale image contains, so bugs show.
const BAD: [u8; 3] = [255, 0, 255];

/// Write a PNG grid: row `r` shows `rows[r].1` (square grayscale images, row-major, values in
/// [0,1], clamped; 128x128 for facegpu, any square size accepted as long as all agree) after
/// the label `rows[r].0`; `caption` (may be empty) goes on a line above.
pub fn image_grid(path: &Path, rows: &[(&str, Vec<&[f32]>)], caption: &str) -> Result<()> {
    ensure_font()?;
    let side = image_side(path, rows)?;
    let ncols = rows.iter().map(|(_, v)| v.len()).max().unwrap_or(0) as u32;
    if rows.is_empty() || ncols == 0 {
        bail!("image grid {}: no images given", path.display());
    }

    // Measure text with a throwaway backend so the label column fits the longest label.
    let label_style = TextStyle::from((FONT_FAMILY, LABEL_FONT).into_font());
    let caption_style = TextStyle::from((FONT_FAMILY, CAPTION_FONT).into_font());
    let (label_w, caption_w) = {
        let mut scratch = vec![0u8; 3 * 4];
        let area = BitMapBackend::with_buffer(&mut scratch, (2, 2)).into_drawing_area();
        let mut lw = 0u32;
        for (l, _) in rows {
            lw = lw.max(area.estimate_text_size(l, &label_style).map_err(de)?.0);
        }
        let cw = if caption.is_empty() {
            0
        } else {
            area.estimate_text_size(caption, &caption_style)
                .map_err(de)?
                .0
        };
        (lw, cw)
    };
    let label_col = if label_w == 0 { 0 } else { label_w + 2 * PAD };
    let caption_h = if caption.is_empty() {
        0
    } else {
        CAPTION_FONT + 2 * PAD
    };
    let width = (label_col + PAD + ncols * (side + PAD)).max(caption_w + 2 * PAD);
    let height = caption_h + PAD + rows.len() as u32 * (side + PAD);
    if width > 16384 || height > 16384 {
        bail!(
            "image grid {} would be {width}x{height} pixels; show fewer images per row or fewer rows",
            path.display()
        );
    }

    let mut buf = vec![255u8; width as usize * height as usize * 3];
    for (r, (_, imgs)) in rows.iter().enumerate() {
        let y0 = caption_h + PAD + r as u32 * (side + PAD);
        for (c, img) in imgs.iter().enumerate() {
            let x0 = label_col + PAD + c as u32 * (side + PAD);
            for y in 0..side {
                let row = ((y0 + y) * width + x0) as usize * 3;
                for x in 0..side {
                    let v = img[(y * side + x) as usize];
                    let px = if v.is_finite() {
                        let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                        [g, g, g]
                    } else {
                        BAD
                    };
                    buf[row + x as usize * 3..row + x as usize * 3 + 3].copy_from_slice(&px);
                }
            }
        }
    }
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        if !caption.is_empty() {
            root.draw(&Text::new(
                caption.to_string(),
                (PAD as i32, PAD as i32),
                caption_style.clone(),
            ))
            .map_err(de)?;
        }
        for (r, (label, _)) in rows.iter().enumerate() {
            let yc = caption_h + PAD + r as u32 * (side + PAD) + side / 2 - LABEL_FONT / 2;
            root.draw(&Text::new(
                label.to_string(),
                (PAD as i32, yc as i32),
                label_style.clone(),
            ))
            .map_err(de)?;
        }
        root.present().map_err(de)?;
    }
    write_png_rgb(path, width, height, buf)
}

/// The common side length of all images (each must be a non-empty square).
fn image_side(path: &Path, rows: &[(&str, Vec<&[f32]>)]) -> Result<u32> {
    let mut side = None;
    for (label, imgs) in rows {
        for (i, img) in imgs.iter().enumerate() {
            let s = (img.len() as f64).sqrt().round() as usize;
            if s == 0 || s * s != img.len() {
                bail!(
                    "image grid {}: image {i} of row \"{label}\" has {} values, not a square image (128x128 = 16384)",
                    path.display(),
                    img.len()
                );
            }
            match side {
                None => side = Some(s),
                Some(prev) if prev != s => bail!(
                    "image grid {}: image {i} of row \"{label}\" is {s}x{s}, earlier images are {prev}x{prev}; all must be the same size",
                    path.display()
                ),
                _ => {}
            }
        }
    }
    side.map(|s| s as u32)
        .ok_or_else(|| anyhow!("image grid {}: no images given", path.display()))
}

fn de<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing the image grid failed: {e}")
}
