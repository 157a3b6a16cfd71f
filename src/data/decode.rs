//! One file to one 128x128 8-bit gray face.
//!
//! - Any format the `image` crate decodes (PNG, JPEG, PGM/PPM/PBM, BMP, TIFF, WebP, GIF, TGA,
//!   ICO, QOI, OpenEXR, HDR, farbfeld, DDS), any channel count and bit depth.
//! - Gray exactly as Pillow's `convert('L')`: L = (R*19595 + G*38470 + B*7471 + 32768) >> 16,
//!   which is L = R*299/1000 + G*587/1000 + B*114/1000 rounded to nearest in Pillow's own
//!   fixed-point arithmetic (checked against Pillow 13 on all 16.7M RGB triples). Alpha is
//!   dropped (as Pillow does); 16-bit and float samples are first rounded to 8 bits.
//! - Not square: centre crop to the largest square (odd leftovers drop the extra row/column at
//!   the bottom/right). Then, if the side is not 128: resize with a Lanczos3 filter (the image
//!   crate's, window widened when shrinking so it also anti-aliases).
//! - An 8-bit gray 128x128 image passes through bit for bit.

use std::io::Read as _;
use std::path::Path;

use image::{imageops::FilterType, DynamicImage, GrayImage, ImageFormat};

use super::{SkipReason, SIDE};

/// The resize filter, named in reports.
pub const FILTER: FilterType = FilterType::Lanczos3;
/// How images become faces, in words (reports and the cache fingerprint).
pub const PIPELINE: &str =
    "gray=PIL convert('L') fixed-point; centre crop to square; resize Lanczos3 to 128x128";

/// A decoded face and what the file was.
#[derive(Clone, Debug)]
pub struct Decoded {
    pub pixels: Vec<u8>,
    /// "PNG", "JPEG", "PGM", ...
    pub format: String,
    pub width: u32,
    pub height: u32,
    /// The decoded sample layout: "L8", "Rgb8", "La16", "Rgb32F", ...
    pub color: String,
}

/// Pillow's RGB -> L conversion, bit for bit.
#[inline]
pub fn luma_pil(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * 19595 + g as u32 * 38470 + b as u32 * 7471 + 0x8000) >> 16) as u8
}

/// Any decoded image to 8-bit gray (see the module notes for the exact rules).
pub fn to_gray(img: &DynamicImage) -> GrayImage {
    match img {
        DynamicImage::ImageLuma8(g) => g.clone(),
        // gray + alpha, or 16-bit gray: one channel, rounded to 8 bits; no weights involved
        DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageLuma16(_)
        | DynamicImage::ImageLumaA16(_) => img.to_luma8(),
        _ => {
            let rgb = img.to_rgb8();
            let (w, h) = rgb.dimensions();
            let px: Vec<u8> = rgb
                .as_raw()
                .chunks_exact(3)
                .map(|p| luma_pil(p[0], p[1], p[2]))
                .collect();
            GrayImage::from_raw(w, h, px).expect("w*h pixels")
        }
    }
}

/// A gray image of any size to the 128x128 face: centre crop to square, then resize.
pub fn to_face(gray: &GrayImage) -> Vec<u8> {
    let (w, h) = gray.dimensions();
    let side = w.min(h);
    let (x0, y0) = ((w - side) / 2, (h - side) / 2);
    let square = if (w, h) == (side, side) {
        gray.clone()
    } else {
        image::imageops::crop_imm(gray, x0, y0, side, side).to_image()
    };
    if side as usize == SIDE {
        square.into_raw()
    } else {
        image::imageops::resize(&square, SIDE as u32, SIDE as u32, FILTER).into_raw()
    }
}

fn format_name(fmt: ImageFormat, head: &[u8]) -> String {
    match fmt {
        ImageFormat::Pnm => match head.get(..2) {
            Some(b"P1") | Some(b"P4") => "PBM",
            Some(b"P2") | Some(b"P5") => "PGM",
            Some(b"P3") | Some(b"P6") => "PPM",
            Some(b"P7") => "PAM",
            _ => "PNM",
        }
        .to_string(),
        ImageFormat::Jpeg => "JPEG".into(),
        ImageFormat::Png => "PNG".into(),
        ImageFormat::Tiff => "TIFF".into(),
        ImageFormat::WebP => "WebP".into(),
        ImageFormat::OpenExr => "OpenEXR".into(),
        other => format!("{other:?}").to_uppercase(),
    }
}

/// Decodes an image held in memory. `ext` (the file's extension) is used only when the content
/// has no recognisable signature (TGA has none).
pub fn decode_bytes(bytes: &[u8], ext: Option<&str>) -> Result<Decoded, (SkipReason, String)> {
    if bytes.is_empty() {
        return Err((SkipReason::EmptyFile, "the file is empty (0 bytes)".into()));
    }
    let by_ext = ext.and_then(ImageFormat::from_extension);
    let fmt = match image::guess_format(bytes) {
        Ok(f) => f,
        Err(_) => match by_ext {
            // Only TGA lacks a signature; for anything else a name like x.png on a file with
            // no PNG signature means the content is not that image.
            Some(ImageFormat::Tga) => ImageFormat::Tga,
            Some(f) => {
                return Err((
                    SkipReason::NotAnImage,
                    format!(
                        "named .{} but the content is not a {} image",
                        ext.unwrap_or(""),
                        format_name(f, bytes)
                    ),
                ))
            }
            None => {
                return Err((
                    SkipReason::NotAnImage,
                    "not an image (no known image signature or extension)".into(),
                ))
            }
        },
    };
    if !fmt.reading_enabled() {
        return Err((
            SkipReason::Unsupported,
            format!(
                "{} images cannot be decoded by this build",
                format_name(fmt, bytes)
            ),
        ));
    }
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), fmt);
    // The default limits refuse decompression bombs (over 512 MiB of pixels).
    reader.limits(image::Limits::default());
    let img = reader.decode().map_err(|e| {
        let reason = match e {
            image::ImageError::Unsupported(_) => SkipReason::Unsupported,
            image::ImageError::Limits(_) => SkipReason::Unsupported,
            _ => SkipReason::Corrupt,
        };
        (reason, format!("{} decoder: {e}", format_name(fmt, bytes)))
    })?;
    if img.width() == 0 || img.height() == 0 {
        return Err((SkipReason::Corrupt, "the image has no pixels".into()));
    }
    let gray = to_gray(&img);
    Ok(Decoded {
        pixels: to_face(&gray),
        format: format_name(fmt, bytes),
        width: img.width(),
        height: img.height(),
        color: format!("{:?}", img.color()),
    })
}

/// Decodes one file. Files that neither start with an image signature nor carry an image
/// extension are turned away after reading 64 bytes, so large non-image files cost nothing.
pub fn decode_file(path: &Path) -> Result<Decoded, (SkipReason, String)> {
    let unreadable = |e: std::io::Error| (SkipReason::Unreadable, format!("cannot read: {e}"));
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let mut f = std::fs::File::open(path).map_err(unreadable)?;
    let mut head = [0u8; 64];
    let mut got = 0;
    while got < head.len() {
        match f.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(unreadable(e)),
        }
    }
    if got == 0 {
        return Err((SkipReason::EmptyFile, "the file is empty (0 bytes)".into()));
    }
    let known_ext = ext
        .as_deref()
        .and_then(ImageFormat::from_extension)
        .is_some();
    if image::guess_format(&head[..got]).is_err() && !known_ext {
        return Err((
            SkipReason::NotAnImage,
            "not an image (no known image signature or extension)".into(),
        ));
    }
    let mut bytes = head[..got].to_vec();
    f.read_to_end(&mut bytes).map_err(unreadable)?;
    decode_bytes(&bytes, ext.as_deref())
}
