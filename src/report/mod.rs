//! Reports: loss curves and histograms ([`plot`]), image grids of originals / noisy inputs /
//! reconstructions ([`grid`]), and result tables as Markdown or CSV ([`table`]). Every file is
//! written atomically through [`crate::fsutil`].
//!
//! Text is drawn with DejaVu Sans, embedded from assets/fonts/ (Bitstream Vera licence, see
//! assets/fonts/DejaVuSans.LICENSE), so plots look the same on every machine and need no
//! system fonts.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, Context, Result};

pub mod grid;
pub mod plot;
pub mod table;

/// DejaVu Sans 2.37 (Debian fonts-dejavu-core), free to redistribute.
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Font family name every report drawing uses.
pub(crate) const FONT_FAMILY: &str = "sans-serif";

/// Register the embedded font with plotters (once per process).
pub(crate) fn ensure_font() -> Result<()> {
    static OK: OnceLock<bool> = OnceLock::new();
    let ok = *OK.get_or_init(|| {
        plotters::style::register_font(FONT_FAMILY, plotters::style::FontStyle::Normal, FONT)
            .is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(anyhow!(
            "the embedded report font could not be loaded (a corrupt build?)"
        ))
    }
}

/// Encode an RGB8 buffer as PNG and write it atomically.
pub(crate) fn write_png_rgb(path: &Path, width: u32, height: u32, rgb: Vec<u8>) -> Result<()> {
    let img = image::RgbImage::from_raw(width, height, rgb)
        .ok_or_else(|| anyhow!("internal: RGB buffer does not match {width}x{height}"))?;
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .with_context(|| format!("encoding PNG for {}", path.display()))?;
    crate::fsutil::write_atomic(path, &bytes)
}
