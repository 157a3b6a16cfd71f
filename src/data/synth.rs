//! The embedded default dataset: procedural faces, drawn on the CPU from a seed.
//!
//! Each face is drawn in layers with analytic anti-aliasing (signed distances, one-pixel
//! ramps): background (gradient, soft blobs), shoulders and clothes, neck, ears, an egg-shaped
//! head lit by a random directional light (Lambert shading on an ellipsoid), eye sockets,
//! eyes (sclera, iris, pupil, catch-light, lids, gaze), brows, nose (bridge shadow, nostrils,
//! tip highlight), mouth (lips, smile, sometimes open with teeth), moustache/beard, hair
//! (five styles, strand texture, hairline), glasses or sunglasses, and sensor noise. Head
//! size, position, roll, yaw and pitch vary too.
//!
//! Face `i` of seed `s` depends on (s, i) alone, so the first N faces of any count agree.
//! Only +, -, *, / and sqrt are used per pixel (no libm transcendental functions), so the
//! faces are the same bit for bit on every platform.
//!
//! These are NOT photographs. They make every command work on a fresh machine and training
//! on them is meaningful (there is structure to learn), but results on them say nothing about
//! real faces.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use rayon::prelude::*;
use serde::Serialize;

use super::hash::{mix64, SplitMix};
use super::{Dataset, Source, PIXELS, SIDE};

const N: usize = SIDE;

/// Bumped whenever the drawing changes, so cached synthetic sets are redrawn.
pub const VERSION: u32 = 1;

/// A float canvas in [0, 1] (0 black).
struct Canvas {
    px: Vec<f64>,
}

#[inline]
fn clamp01(x: f64) -> f64 {
    x.clamp(0.0, 1.0)
}

/// Coverage of a pixel by a shape whose signed distance (pixels, negative inside) is d.
#[inline]
fn cov(d: f64) -> f64 {
    clamp01(0.5 - d)
}

/// A smooth bump: 1 at r = 0, 0 from r = 1 on (C1-continuous).
#[inline]
fn bump(r2: f64) -> f64 {
    if r2 >= 1.0 {
        0.0
    } else {
        let t = 1.0 - r2;
        t * t
    }
}

#[inline]
fn smoothstep(e0: f64, e1: f64, x: f64) -> f64 {
    let t = clamp01((x - e0) / (e1 - e0));
    t * t * (3.0 - 2.0 * t)
}

/// Approximate signed distance to an axis-aligned ellipse with radii (a, b) centred at 0
/// (Inigo Quilez's k0*(k0-1)/k1 estimate: exact on the axes, close elsewhere).
#[inline]
fn ellipse_sd(x: f64, y: f64, a: f64, b: f64) -> f64 {
    let k0 = ((x / a) * (x / a) + (y / b) * (y / b)).sqrt();
    let k1 = ((x / (a * a)) * (x / (a * a)) + (y / (b * b)) * (y / (b * b))).sqrt();
    if k1 < 1e-12 {
        -a.min(b)
    } else {
        k0 * (k0 - 1.0) / k1
    }
}

/// sin and cos for the small angles used here (|x| < 0.6), by Taylor series: platform-exact.
fn sin_cos_small(x: f64) -> (f64, f64) {
    let x2 = x * x;
    let s = x * (1.0 - x2 / 6.0 * (1.0 - x2 / 20.0 * (1.0 - x2 / 42.0 * (1.0 - x2 / 72.0))));
    let c = 1.0 - x2 / 2.0 * (1.0 - x2 / 12.0 * (1.0 - x2 / 30.0 * (1.0 - x2 / 56.0)));
    (s, c)
}

/// Smooth value noise in [0, 1] on a unit lattice (hash corners, smoothstep blend).
fn value_noise(x: f64, y: f64, seed: u64) -> f64 {
    let (fx, fy) = (x.floor(), y.floor());
    let (ix, iy) = (fx as i64, fy as i64);
    let (tx, ty) = (x - fx, y - fy);
    let h = |i: i64, j: i64| {
        (mix64(seed ^ mix64((i as u64).wrapping_mul(0x9E37_79B9) ^ ((j as u64) << 32))) >> 11)
            as f64
            / (1u64 << 53) as f64
    };
    let (sx, sy) = (tx * tx * (3.0 - 2.0 * tx), ty * ty * (3.0 - 2.0 * ty));
    let a = h(ix, iy) + (h(ix + 1, iy) - h(ix, iy)) * sx;
    let b = h(ix, iy + 1) + (h(ix + 1, iy + 1) - h(ix, iy + 1)) * sx;
    a + (b - a) * sy
}

impl Canvas {
    fn new() -> Canvas {
        Canvas {
            px: vec![0.0; PIXELS],
        }
    }
    /// Paints over the pixels of a bounding box: f(x, y) gives (alpha, value) at the pixel
    /// centre; the pixel becomes mix(old, value, alpha).
    fn paint(&mut self, bbox: [f64; 4], f: impl Fn(f64, f64, f64) -> (f64, f64)) {
        let x0 = (bbox[0].floor().max(0.0)) as usize;
        let y0 = (bbox[1].floor().max(0.0)) as usize;
        let x1 = (bbox[2].ceil().min(N as f64).max(0.0)) as usize;
        let y1 = (bbox[3].ceil().min(N as f64).max(0.0)) as usize;
        for y in y0..y1 {
            for x in x0..x1 {
                let i = y * N + x;
                let old = self.px[i];
                let (a, v) = f(x as f64 + 0.5, y as f64 + 0.5, old);
                if a > 0.0 {
                    let a = a.min(1.0);
                    self.px[i] = old + (v - old) * a;
                }
            }
        }
    }
    fn to_u8(&self) -> Vec<u8> {
        self.px
            .iter()
            .map(|&v| (clamp01(v) * 255.0 + 0.5) as u8)
            .collect()
    }
}

/// Everything random about one face, drawn in a fixed order.
struct Face {
    // background
    bg: f64,
    bg_gx: f64,
    bg_gy: f64,
    bg_blobs: Vec<(f64, f64, f64, f64)>,
    // head frame
    cx: f64,
    cy: f64,
    rx: f64,
    ry: f64,
    roll: f64,
    yaw: f64,
    pitch: f64,
    taper: f64,
    skin: f64,
    light: [f64; 3],
    light_k: f64,
    // hair
    hair_style: u32,
    hair: f64,
    hairline: f64,
    fringe: f64,
    hair_part: f64,
    hair_volume: f64,
    // eyes and brows
    eye_y: f64,
    eye_x: f64,
    eye_w: f64,
    eye_h: f64,
    iris: f64,
    gaze: (f64, f64),
    blink: bool,
    brow_gap: f64,
    brow_t: f64,
    brow_arch: f64,
    brow_level: f64,
    brow_tilt: f64,
    // nose and mouth
    nose_y: f64,
    nose_w: f64,
    mouth_y: f64,
    mouth_w: f64,
    smile: f64,
    open: f64,
    lip_up: f64,
    lip_down: f64,
    lip: f64,
    // extras
    moustache: bool,
    beard: bool,
    glasses: Option<Glasses>,
    clothes: f64,
    neckline: f64,
    sensor: f64,
    noise_seed: u64,
}

struct Glasses {
    r: f64,
    shape: f64, // 0 round .. 1 rectangular
    t: f64,
    level: f64,
    dark: bool,
}

impl Face {
    fn draw(rng: &mut SplitMix) -> Face {
        let bg = rng.range(0.08, 0.92);
        let bg_gx = rng.range(-0.25, 0.25);
        let bg_gy = rng.range(-0.2, 0.2);
        let bg_blobs = (0..4)
            .map(|_| {
                (
                    rng.range(0.0, 128.0),
                    rng.range(0.0, 128.0),
                    rng.range(18.0, 60.0),
                    rng.range(-0.18, 0.18),
                )
            })
            .collect();
        let rx = rng.range(32.0, 42.0);
        let ry = rx * rng.range(1.18, 1.38);
        let cx = 64.0 + rng.normalish() * 3.0;
        let cy = 62.0 + rng.normalish() * 3.0;
        let roll = (rng.normalish() * 0.07).clamp(-0.22, 0.22);
        let yaw = rng.range(-0.32, 0.32);
        let pitch = rng.range(-0.12, 0.12);
        let taper = rng.range(0.05, 0.3);
        let skin = if rng.chance(0.18) {
            rng.range(0.16, 0.34)
        } else {
            rng.range(0.36, 0.86)
        };
        let (lx, ly) = (rng.range(-0.85, 0.85), rng.range(-0.7, 0.15));
        let lz = 0.75;
        let ln = (lx * lx + ly * ly + lz * lz).sqrt();
        let light = [lx / ln, ly / ln, lz / ln];
        let light_k = rng.range(0.25, 0.6);
        let hair_style = match rng.below(100) {
            0..=5 => 0,   // bald / shaved
            6..=50 => 1,  // short
            51..=78 => 2, // long
            79..=89 => 3, // big / curly
            _ => 4,       // slicked back, high hairline
        };
        let hair = match rng.below(100) {
            0..=49 => rng.range(0.03, 0.18),
            50..=79 => rng.range(0.18, 0.42),
            80..=91 => rng.range(0.5, 0.78),
            _ => rng.range(0.55, 0.88),
        };
        let hairline = rng.range(-0.78, -0.52);
        let fringe = if rng.chance(0.25) {
            rng.range(0.1, 0.3)
        } else {
            0.0
        };
        let hair_part = rng.range(-0.5, 0.5);
        let hair_volume = rng.range(1.03, 1.14);
        let eye_y = rng.range(-0.08, 0.06);
        let eye_x = rng.range(0.36, 0.46);
        let eye_w = rng.range(0.15, 0.2);
        let eye_h = rng.range(0.36, 0.56);
        let iris = rng.range(0.08, 0.5);
        let gaze = (rng.range(-0.3, 0.3), rng.range(-0.15, 0.15));
        let blink = rng.chance(0.05);
        let brow_gap = rng.range(0.16, 0.26);
        let brow_t = rng.range(1.6, 4.2);
        let brow_arch = rng.range(0.5, 3.5);
        let brow_level = (hair.min(skin - 0.18) * rng.range(0.8, 1.1)).max(0.02);
        let brow_tilt = rng.range(-0.12, 0.12);
        let nose_y = rng.range(0.27, 0.4);
        let nose_w = rng.range(0.18, 0.27);
        let mouth_y = rng.range(0.55, 0.66);
        let mouth_w = rng.range(0.24, 0.38);
        let smile = rng.range(-0.08, 0.35);
        let open = if rng.chance(0.22) {
            rng.range(1.5, 8.0)
        } else {
            0.0
        };
        let lip_up = rng.range(1.5, 3.5);
        let lip_down = rng.range(2.0, 4.5);
        let lip = skin * rng.range(0.62, 0.82);
        let moustache = rng.chance(0.12);
        let beard = rng.chance(0.1);
        let glasses = if rng.chance(0.25) {
            Some(Glasses {
                r: rng.range(1.25, 1.55),
                shape: rng.range(0.0, 1.0),
                t: rng.range(1.0, 2.6),
                level: rng.range(0.03, 0.4),
                dark: rng.chance(0.22),
            })
        } else {
            None
        };
        let clothes = rng.range(0.05, 0.9);
        let neckline = rng.range(0.0, 1.0);
        let sensor = rng.range(0.004, 0.02);
        let noise_seed = rng.next_u64();
        Face {
            bg,
            bg_gx,
            bg_gy,
            bg_blobs,
            cx,
            cy,
            rx,
            ry,
            roll,
            yaw,
            pitch,
            taper,
            skin,
            light,
            light_k,
            hair_style,
            hair,
            hairline,
            fringe,
            hair_part,
            hair_volume,
            eye_y,
            eye_x,
            eye_w,
            eye_h,
            iris,
            gaze,
            blink,
            brow_gap,
            brow_t,
            brow_arch,
            brow_level,
            brow_tilt,
            nose_y,
            nose_w,
            mouth_y,
            mouth_w,
            smile,
            open,
            lip_up,
            lip_down,
            lip,
            moustache,
            beard,
            glasses,
            clothes,
            neckline,
            sensor,
            noise_seed,
        }
    }
}

/// Image <-> head frame (origin at the head centre, rotated by the roll).
#[derive(Clone, Copy)]
struct Frame {
    cx: f64,
    cy: f64,
    s: f64,
    c: f64,
}

impl Frame {
    #[inline]
    fn local(&self, x: f64, y: f64) -> (f64, f64) {
        let (dx, dy) = (x - self.cx, y - self.cy);
        (self.c * dx + self.s * dy, -self.s * dx + self.c * dy)
    }
}

/// Head half-width at height v (egg shape: narrower towards the chin).
#[inline]
fn head_w(f: &Face, v: f64) -> f64 {
    let t = (v / f.ry).max(0.0);
    f.rx * (1.0 - f.taper * t * t)
}

/// Signed distance to the head outline (pixels, approximate).
#[inline]
fn head_sd(f: &Face, u: f64, v: f64) -> f64 {
    ellipse_sd(u, v, head_w(f, v).max(1.0), f.ry)
}

/// Lambert shading on the ellipsoid under the head, in [amb, amb + k].
#[inline]
fn head_shade(f: &Face, u: f64, v: f64) -> f64 {
    let nu = u / (f.rx * 1.05);
    let nv = v / (f.ry * 1.05);
    let nz = (1.0 - nu * nu - nv * nv).max(0.0).sqrt();
    let d = nu * f.light[0] + nv * f.light[1] + nz * f.light[2];
    (1.0 - f.light_k) + f.light_k * d.max(0.0) * 1.15
}

/// A tapered stroke along y = cy + k s^2 for s = (u - cx)/w in [-1, 1] (pixel units, frame
/// coordinates). Thickness t at the middle, thinning to the ends; `bias` > 0 thickens the
/// s < 0 end (brows: thick inside).
#[inline]
#[allow(clippy::too_many_arguments)]
fn stroke(u: f64, v: f64, cx: f64, cy: f64, w: f64, k: f64, t: f64, bias: f64) -> f64 {
    let s = (u - cx) / w;
    if !(-1.0..=1.0).contains(&s) {
        return 0.0;
    }
    let y = cy + k * s * s;
    let slope = 2.0 * k * s / w;
    let d = (v - y).abs() / (1.0 + slope * slope).sqrt();
    let end = (1.0 - s * s).sqrt();
    let th = t * end.sqrt() * (1.0 - bias * s).clamp(0.3, 1.7);
    cov(d - 0.5 * th)
}

/// Draws face `index` of `seed`.
pub fn face(seed: u64, index: u64) -> Vec<u8> {
    let mut rng = SplitMix::stream(seed ^ 0x7379_6e74_6865_7469, index); // "syntheti"
    let f = Face::draw(&mut rng);
    let (s, c) = sin_cos_small(f.roll);
    let fr = Frame {
        cx: f.cx,
        cy: f.cy,
        s,
        c,
    };
    let mut cv = Canvas::new();
    let full = [0.0, 0.0, N as f64, N as f64];
    let (rx, ry) = (f.rx, f.ry);
    // Yaw/pitch: a feature at frame position (u0, v0) and depth z (fraction of rx in front of
    // the head centre) moves by z*yaw horizontally and z*pitch vertically; features on the
    // side turned away are foreshortened.
    let place =
        |u0: f64, v0: f64, z: f64| -> (f64, f64) { (u0 + z * rx * f.yaw, v0 + z * rx * f.pitch) };
    let fore = |u0: f64| -> f64 { (1.0 - 1.1 * f.yaw * u0 / rx).clamp(0.55, 1.25) };

    // bounding boxes (image coordinates) of the head and everything on it, and of the hair
    let head_box = rot_bbox(&fr, [-rx * 1.1, -ry * 1.1, rx * 1.1, ry * 1.1]);
    let hair_box = rot_bbox(&fr, [-rx * 1.45, -ry * 1.35, rx * 1.45, ry * 1.55]);

    // 1. background: gradient and soft blobs
    cv.paint(full, |x, y, _| {
        let mut v = f.bg + f.bg_gx * (x / 64.0 - 1.0) + f.bg_gy * (y / 64.0 - 1.0);
        for &(bx, by, br, ba) in &f.bg_blobs {
            let r2 = ((x - bx) * (x - bx) + (y - by) * (y - by)) / (br * br);
            v += ba * bump(r2);
        }
        (1.0, v)
    });

    // hair outer shape (frame coords): used behind (long hair) and in front (cap)
    let hv = f.hair_volume;
    let hair_outer = |u: f64, v: f64| -> f64 {
        let cap = ellipse_sd(u, v + 0.1 * ry, rx * hv, ry * (0.97 + 0.2 * (hv - 1.0)));
        match f.hair_style {
            // long: the cap and a mass of hair framing the face down to the shoulders
            2 => cap.min(ellipse_sd(u, v - 0.3 * ry, rx * 1.22, ry * 1.2)),
            3 => ellipse_sd(u, v + 0.18 * ry, rx * 1.38, ry * 1.12),
            _ => cap,
        }
    };
    let hair_tex = |u: f64, v: f64| -> f64 {
        // strands: value noise stretched along the fall of the hair
        let n1 = value_noise(u * 0.9, v * 0.12, f.noise_seed);
        let n2 = value_noise(u * 0.35, v * 0.35, f.noise_seed ^ 1);
        if f.hair_style == 3 {
            let n3 = value_noise(u * 0.45, v * 0.45, f.noise_seed ^ 2);
            return 0.14 * (n3 - 0.5) + 0.08 * (n2 - 0.5);
        }
        0.09 * (n1 - 0.5) + 0.06 * (n2 - 0.5)
    };
    let hair_val = |u: f64, v: f64| -> f64 {
        let sh = head_shade(&f, u * 0.9, v * 0.9);
        f.hair * (0.7 + 0.5 * (sh - (1.0 - f.light_k))) + hair_tex(u, v) * (0.4 + f.hair)
    };

    // 2. long or big hair behind the head and shoulders
    if f.hair_style == 2 || f.hair_style == 3 {
        cv.paint(hair_box, |x, y, _| {
            let (u, v) = fr.local(x, y);
            let a = cov(hair_outer(u, v));
            if a <= 0.0 {
                return (0.0, 0.0);
            }
            (a, hair_val(u, v))
        });
    }

    // 3. shoulders and clothes, with a neckline
    let sh_y = f.cy + ry * 1.05 + 18.0;
    cv.paint([0.0, sh_y - 30.0, N as f64, N as f64], |x, y, _| {
        let d = ellipse_sd(x - f.cx, y - (sh_y + 40.0), rx * 2.3, 52.0);
        let shade = 1.0 - 0.25 * ((x - f.cx) / 90.0) * f.light[0].signum();
        (cov(d), f.clothes * shade)
    });

    // 4. neck (skin, shaded darker under the jaw), with the neckline cut into the clothes
    let neck_w = rx * 0.52;
    cv.paint([f.cx - rx, f.cy, f.cx + rx, N as f64], |x, y, _| {
        let (u, v) = fr.local(x, y);
        let side = u.abs() - neck_w * (1.0 + 0.004 * (v - ry).max(0.0));
        let top = ry * 0.3 - v;
        let neckline_depth = ry * (1.25 + 0.35 * f.neckline);
        let bottom =
            v - neckline_depth - (1.0 - (u / (neck_w * 1.6)).powi(2)).max(0.0) * 10.0 * f.neckline;
        let d = side.max(top).max(bottom);
        let shadow = 0.55 + 0.3 * smoothstep(ry * 0.85, ry * 1.35, v);
        (
            cov(d),
            f.skin * shadow * (1.0 - 0.15 * u / neck_w * f.light[0]),
        )
    });

    // 5. ears (the one on the side turned away hides behind the head)
    for side in [-1.0f64, 1.0] {
        let (eu, ev) = (
            side * rx * 0.98 - f.yaw * rx * 0.35,
            ry * 0.06 + f.pitch * rx * 0.2,
        );
        let vis = (1.0 + side * f.yaw * 2.5).clamp(0.2, 1.3);
        let (ea, eb) = (rx * 0.16 * vis, ry * 0.23);
        if vis < 0.6 {
            continue; // turned away: hidden behind the head
        }
        let ear_box = rot_bbox(
            &fr,
            [eu - ea - 1.0, ev - eb - 1.0, eu + ea + 1.0, ev + eb + 1.0],
        );
        cv.paint(ear_box, |x, y, _| {
            let (u, v) = fr.local(x, y);
            let d = ellipse_sd(u - eu, v - ev, ea, eb);
            let inner = bump(((u - eu) / (ea * 0.6)).powi(2) + ((v - ev) / (eb * 0.65)).powi(2));
            (
                cov(d),
                f.skin * (0.8 - 0.18 * inner) * head_shade(&f, u * 0.9, v),
            )
        });
    }

    // 6. the head, lit
    cv.paint(head_box, |x, y, _| {
        let (u, v) = fr.local(x, y);
        let d = head_sd(&f, u, v);
        if d > 1.0 {
            return (0.0, 0.0);
        }
        // a darker rim where the surface turns away (soft, inside the outline)
        let rim = 1.0 - 0.18 * smoothstep(-6.0, 0.0, d);
        (cov(d), f.skin * head_shade(&f, u, v) * rim)
    });

    // 7. modelling: eye sockets, cheekbones, under the nose and lower lip, chin
    let (el_u, el_v) = place(-f.eye_x * rx, f.eye_y * ry, 0.75);
    let (er_u, er_v) = place(f.eye_x * rx, f.eye_y * ry, 0.75);
    let (nu, nv) = place(0.0, f.nose_y * ry, 1.0);
    let (mu, mv) = place(0.0, f.mouth_y * ry, 0.9);
    cv.paint(head_box, |x, y, old| {
        let (u, v) = fr.local(x, y);
        let inside = cov(head_sd(&f, u, v) + 2.0);
        if inside <= 0.0 {
            return (0.0, old);
        }
        let mut m = 1.0;
        for (eu, ev, side) in [(el_u, el_v, -1.0), (er_u, er_v, 1.0)] {
            let w = f.eye_w * rx * 1.7 * fore(side * f.eye_x * rx);
            m -= 0.22
                * bump(((u - eu) / w).powi(2) + ((v - ev + 1.0) / (f.eye_w * rx * 1.2)).powi(2));
        }
        m -= 0.12
            * bump(((u - nu) / (f.nose_w * rx * 1.2)).powi(2) + ((v - nv - 4.0) / 4.0).powi(2));
        m -= 0.1
            * bump(
                ((u - mu) / (f.mouth_w * rx)).powi(2) + ((v - mv - f.lip_down - 4.0) / 3.5).powi(2),
            );
        m += 0.06 * bump(((u - mu) / (rx * 0.25)).powi(2) + ((v - ry * 0.86) / (ry * 0.1)).powi(2));
        (inside, old * m)
    });

    // 8. eyes
    for (eu, ev, side) in [(el_u, el_v, -1.0f64), (er_u, er_v, 1.0)] {
        let w = f.eye_w * rx * fore(side * f.eye_x * rx);
        let h = w * f.eye_h / fore(side * f.eye_x * rx).sqrt();
        let ir = h * 0.92;
        let (gu, gv) = (eu + f.gaze.0 * w + f.yaw * w * 0.5, ev + f.gaze.1 * h);
        let lid = f.skin * 0.45;
        let bb = [eu - w * 2.0, ev - h * 3.0, eu + w * 2.0, ev + h * 3.0];
        let bbox = rot_bbox(&fr, bb);
        if f.blink {
            cv.paint(bbox, |x, y, _| {
                let (u, v) = fr.local(x, y);
                (stroke(u, v, eu, ev + h * 0.2, w, -h * 0.25, 1.6, 0.0), lid)
            });
            continue;
        }
        cv.paint(bbox, |x, y, _| {
            let (u, v) = fr.local(x, y);
            // almond: an ellipse pinched at the corners
            let s = ((u - eu) / w).clamp(-1.0, 1.0);
            let hh = h * (1.0 - 0.25 * s * s);
            let d = ellipse_sd(u - eu, v - ev, w, hh.max(0.5));
            let c_eye = cov(d);
            if c_eye <= 0.0 {
                return (0.0, 0.0);
            }
            let sclera = (0.78 + 0.12 * f.skin) * head_shade(&f, u, v);
            let r2 = ((u - gu) * (u - gu) + (v - gv) * (v - gv)).sqrt();
            let iris = cov(r2 - ir);
            let pupil = cov(r2 - ir * 0.45);
            let mut val = sclera + (f.iris - sclera) * iris;
            val += (0.03 - val) * pupil;
            // catch-light towards the light
            let hl = ((u - gu + ir * 0.35 * f.light[0]) * (u - gu + ir * 0.35 * f.light[0])
                + (v - gv + ir * 0.35) * (v - gv + ir * 0.35))
                .sqrt();
            val += (0.95 - val) * cov(hl - ir * 0.22) * 0.9;
            // the upper lid shades the top of the eye
            val *= 1.0 - 0.35 * smoothstep(ev, ev - hh, v);
            (c_eye, val)
        });
        // lids: a dark upper line, a faint lower one, a crease above
        cv.paint(bbox, |x, y, old| {
            let (u, v) = fr.local(x, y);
            let up = stroke(u, v, eu, ev - h * 0.95, w * 1.08, h * 0.95, 1.7, 0.0);
            let low = stroke(u, v, eu, ev + h * 0.95, w * 0.95, -h * 0.9, 0.9, 0.0) * 0.45;
            let crease = stroke(u, v, eu, ev - h * 1.9, w * 0.95, h * 0.9, 1.0, 0.0) * 0.3;
            let a = up.max(low).max(crease);
            (a, old.min(lid))
        });
    }

    // 9. brows
    let brow_c = f.brow_level;
    for (eu, ev, side) in [(el_u, el_v, -1.0f64), (er_u, er_v, 1.0)] {
        let w = f.eye_w * rx * 1.35 * fore(side * f.eye_x * rx);
        let by = ev - f.brow_gap * ry;
        let bu = eu + side * w * 0.1;
        let bbox = rot_bbox(&fr, [bu - w * 1.3, by - 12.0, bu + w * 1.3, by + 12.0]);
        cv.paint(bbox, |x, y, _| {
            let (u, v) = fr.local(x, y);
            // tilt: the inner end higher or lower
            let vv = v - f.brow_tilt * (u - bu) * side;
            let c = stroke(
                u,
                vv,
                bu,
                by - f.brow_arch,
                w,
                f.brow_arch,
                f.brow_t,
                -side * 0.35,
            );
            let tex = 0.06 * (value_noise(u * 0.8, v * 0.8, f.noise_seed ^ 7) - 0.5);
            (c * 0.92, brow_c + tex)
        });
    }

    // 10. nose: bridge shadow on the unlit side, nostrils, tip highlight, wings
    {
        let shadow_side = if f.light[0] > 0.0 { -1.0 } else { 1.0 };
        let nw = f.nose_w * rx;
        let top_v = (el_v + er_v) * 0.5 + 2.0;
        let bbox = rot_bbox(&fr, [nu - nw * 2.0, top_v - 4.0, nu + nw * 2.0, nv + 10.0]);
        cv.paint(bbox, |x, y, old| {
            let (u, v) = fr.local(x, y);
            let t = clamp01((v - top_v) / (nv - top_v));
            let line_u =
                nu * t + (el_u + er_u) * 0.5 * (1.0 - t) + shadow_side * nw * (0.35 + 0.25 * t);
            let dist = (u - line_u).abs() / (2.5 + 2.5 * t);
            let bridge = if (top_v..nv).contains(&v) {
                bump(dist * dist) * 0.25 * (0.4 + 0.6 * t)
            } else {
                0.0
            };
            let mut m = 1.0 - bridge * (0.6 + f.light_k);
            // nostrils
            for s in [-1.0, 1.0] {
                let (ou, ov) = (nu + s * nw * 0.45, nv + 2.0);
                let d = ellipse_sd(u - ou, v - ov, nw * 0.24, nw * 0.14);
                m -= 0.45 * cov(d) * (1.0 + 0.4 * s * shadow_side).min(1.0);
                // wings of the nose
                m -= 0.12
                    * stroke(
                        u,
                        v,
                        nu + s * nw * 0.62,
                        nv - 1.0,
                        nw * 0.32,
                        -2.5,
                        1.6,
                        0.0,
                    );
            }
            // tip highlight
            m += 0.12
                * bump(
                    ((u - nu + 0.3 * nw * f.light[0]) / (nw * 0.4)).powi(2)
                        + ((v - nv + nw * 0.3) / (nw * 0.35)).powi(2),
                );
            // shadow below the nose
            m -= 0.1 * bump(((u - nu) / (nw * 0.9)).powi(2) + ((v - nv - 5.0) / 2.5).powi(2));
            (1.0, old * m)
        });
    }

    // 11. mouth
    {
        let mw = f.mouth_w * rx;
        let k = -f.smile * 6.0; // corners up when smiling
        let bbox = rot_bbox(
            &fr,
            [mu - mw - 3.0, mv - 12.0, mu + mw + 3.0, mv + f.open + 12.0],
        );
        let lip_c = f.lip;
        cv.paint(bbox, |x, y, old| {
            let (u, v) = fr.local(x, y);
            let s = (u - mu) / mw;
            if !(-1.0..=1.0).contains(&s) {
                return (0.0, old);
            }
            let e = (1.0 - s * s).sqrt();
            let line = mv + k * s * s;
            let bow = 1.0 - 0.35 * bump((s / 0.18).powi(2));
            let top = line - f.lip_up * e * bow - f.open * 0.5 * e;
            let bot = line + f.lip_down * e + f.open * 0.5 * e;
            let lips = cov(top - v).min(cov(v - bot));
            let mut val = old + (lip_c * head_shade(&f, u, v) - old) * lips;
            // lower lip catches light
            val += 0.05
                * bump(
                    ((u - mu) / (mw * 0.5)).powi(2)
                        + ((v - line - f.lip_down * 0.6 - f.open * 0.5) / 1.5).powi(2),
                );
            if f.open > 0.0 {
                let o_top = line - f.open * 0.5 * e;
                let o_bot = line + f.open * 0.5 * e;
                let inside = cov(o_top - v).min(cov(v - o_bot));
                let teeth = cov((v - (o_top + f.open * 0.45)).max(-(v - o_top)));
                let mouth = 0.06 + 0.6 * teeth * (1.0 - 0.4 * s.abs());
                val += (mouth - val) * inside;
            } else {
                let l = stroke(u, v, mu, mv, mw * 1.02, k, 1.4, 0.0);
                val += (lip_c * 0.45 - val) * l;
            }
            (1.0, val)
        });
    }

    // 12. moustache and beard (textured, darker than the hair shade)
    if f.moustache || f.beard {
        let mw = f.mouth_w * rx;
        cv.paint(head_box, |x, y, old| {
            let (u, v) = fr.local(x, y);
            let inside = cov(head_sd(&f, u, v) + 1.0);
            if inside <= 0.0 {
                return (0.0, old);
            }
            let tex = value_noise(u * 0.9, v * 0.9, f.noise_seed ^ 9);
            let mut a: f64 = 0.0;
            if f.moustache {
                // a band above the upper lip, following the mouth line, thinning at the ends
                let s = (u - mu) / (mw * 1.1);
                if s.abs() < 1.0 {
                    let e = (1.0 - s * s).sqrt();
                    let line = mv - f.smile * 6.0 * s * s - f.lip_up * e - f.open * 0.5 * e;
                    let top = line - 1.0 - 3.2 * e;
                    a = a.max(cov(top - v).min(cov(v - line + 0.5)) * 0.8);
                }
            }
            if f.beard {
                let below = smoothstep(mv - 2.0, mv + 8.0, v)
                    + smoothstep(nv - 2.0, nv + 14.0, v) * smoothstep(rx * 0.5, rx * 0.85, u.abs());
                let lips = ellipse_sd(u - mu, v - mv, mw * 1.05, f.lip_down + f.open + 2.0);
                a = a.max(below.min(1.0) * cov(-lips) * 0.8);
            }
            let val = f.hair.min(f.skin * 0.6) + 0.12 * (tex - 0.5);
            (a * inside * (0.75 + 0.25 * tex), val)
        });
    }

    // 13. hair in front: the cap above the hairline (and around the head)
    if f.hair_style != 0 {
        let hl = f.hairline + if f.hair_style == 4 { -0.12 } else { 0.0 };
        cv.paint(hair_box, |x, y, _| {
            let (u, v) = fr.local(x, y);
            let outer = hair_outer(u, v).max(v - ry * 0.25);
            if outer > 1.0 {
                return (0.0, 0.0);
            }
            // hairline: dips at the temples, with a side part and a fringe for some
            let un = u / rx;
            let fringe = if f.hair_style == 1 || f.hair_style == 2 {
                f.fringe
            } else {
                0.0
            };
            let line = ry * (hl + fringe + 0.42 * un * un - 0.05 * (un - f.hair_part).abs());
            let face = head_sd(&f, u, v).max(line - v);
            // sides: hair comes down in front of the ears to the temples
            let a = cov(outer).min(cov(-face + 0.5));
            if a <= 0.0 {
                return (0.0, 0.0);
            }
            (a, hair_val(u, v))
        });
    } else {
        // bald/shaved: a faint shadow of hair on the sides
        cv.paint(head_box, |x, y, old| {
            let (u, v) = fr.local(x, y);
            let inside = cov(head_sd(&f, u, v));
            let band =
                smoothstep(rx * 0.7, rx * 0.95, u.abs()) * smoothstep(ry * 0.2, -ry * 0.3, v);
            (inside * band * 0.25, old.min(f.hair + 0.1))
        });
    }

    // 14. glasses
    if let Some(g) = &f.glasses {
        for (eu, ev, side) in [(el_u, el_v, -1.0f64), (er_u, er_v, 1.0)] {
            let w = f.eye_w * rx * g.r * fore(side * f.eye_x * rx);
            let h = f.eye_w * rx * g.r * (0.72 + 0.1 * g.shape);
            let (gu, gv) = (eu, ev + 1.0);
            let bbox = rot_bbox(
                &fr,
                [gu - w - 4.0, gv - h - 4.0, gu + w + 4.0, gv + h + 4.0],
            );
            cv.paint(bbox, |x, y, old| {
                let (u, v) = fr.local(x, y);
                // a superellipse-ish ring: blend of ellipse and box distances
                let e = ellipse_sd(u - gu, v - gv, w, h);
                let bx = ((u - gu).abs() - w).max((v - gv).abs() - h);
                let d = e + (bx - e) * g.shape * 0.7;
                let ring = cov(d.abs() - 0.5 * g.t);
                let lens = cov(d);
                let mut val = old;
                if g.dark {
                    val += (g.level.min(0.15) - val) * lens * 0.88;
                } else {
                    val += (val * 0.92 + 0.05 - val) * lens; // faint reflection
                }
                val += (g.level - val) * ring;
                (1.0, val)
            });
        }
        // bridge and arms
        let (lw, rw) = (
            f.eye_w * rx * g.r * fore(-f.eye_x * rx),
            f.eye_w * rx * g.r * fore(f.eye_x * rx),
        );
        cv.paint(head_box, |x, y, _| {
            let (u, v) = fr.local(x, y);
            let bridge_l = el_u + lw;
            let bridge_r = er_u - rw;
            let mid = (bridge_l + bridge_r) * 0.5;
            let half = ((bridge_r - bridge_l) * 0.5).max(1.0);
            let b = stroke(u, v, mid, (el_v + er_v) * 0.5 - 2.0, half, 1.5, g.t, 0.0);
            let arm_l = if u < el_u - lw && u > -head_w(&f, v) {
                cov((v - el_v + 2.0).abs() - 0.5 * g.t)
            } else {
                0.0
            };
            let arm_r = if u > er_u + rw && u < head_w(&f, v) {
                cov((v - er_v + 2.0).abs() - 0.5 * g.t)
            } else {
                0.0
            };
            (b.max(arm_l).max(arm_r), g.level)
        });
    }

    // 15. sensor noise (hash noise with only integer and +,*,/ arithmetic)
    let mut out = cv;
    for (i, p) in out.px.iter_mut().enumerate() {
        let h = mix64(f.noise_seed ^ (i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
        let u1 = (h & 0xFFFF) as f64 / 65536.0;
        let u2 = ((h >> 16) & 0xFFFF) as f64 / 65536.0;
        let u3 = ((h >> 32) & 0xFFFF) as f64 / 65536.0;
        let u4 = ((h >> 48) & 0xFFFF) as f64 / 65536.0;
        let z = (u1 + u2 + u3 + u4 - 2.0) * 1.7320508075688772;
        *p += f.sensor * z;
    }
    out.to_u8()
}

/// Bounding box in image coordinates of a frame-space box (rotated by the roll).
fn rot_bbox(fr: &Frame, b: [f64; 4]) -> [f64; 4] {
    let mut x0 = f64::MAX;
    let mut y0 = f64::MAX;
    let mut x1 = f64::MIN;
    let mut y1 = f64::MIN;
    for (u, v) in [(b[0], b[1]), (b[2], b[1]), (b[0], b[3]), (b[2], b[3])] {
        // inverse of Frame::local
        let x = fr.cx + fr.c * u - fr.s * v;
        let y = fr.cy + fr.s * u + fr.c * v;
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    [x0 - 1.0, y0 - 1.0, x1 + 1.0, y1 + 1.0]
}

/// `count` faces of `seed`, image after image, drawn on all cores.
pub fn faces(count: usize, seed: u64) -> Vec<u8> {
    let mut px = vec![0u8; count * PIXELS];
    px.par_chunks_mut(PIXELS)
        .enumerate()
        .for_each(|(i, slot)| slot.copy_from_slice(&face(seed, i as u64)));
    px
}

/// `faces/` -> `faces.grid.png` next to it.
fn sibling_grid(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "synthetic".into());
    dir.with_file_name(format!("{name}.grid.png"))
}

/// The name of synthetic face `i` (used by splits and reports).
pub fn name(seed: u64, i: usize) -> String {
    format!("synthetic/{seed}/{i:06}")
}

/// The embedded default dataset: `count` synthetic faces of `seed`.
pub fn dataset(count: usize, seed: u64) -> Result<Dataset> {
    if count == 0 {
        anyhow::bail!("--synthetic-count 0: draw at least one face (the default is 2000)");
    }
    let t0 = std::time::Instant::now();
    let px = faces(count, seed);
    let names = (0..count).map(|i| name(seed, i)).collect();
    let mut ds = Dataset::from_pixels(px, names, Source::Synthetic { seed, count })?;
    ds.summary.formats.insert("synthetic".into(), count);
    ds.summary.sizes.insert("128x128".into(), count);
    ds.summary.colors.insert("L8".into(), count);
    ds.load.seconds = t0.elapsed().as_secs_f64();
    Ok(ds)
}

/// What `facegpu synth` did.
#[derive(Clone, Debug, Serialize)]
pub struct SynthReport {
    pub count: usize,
    pub seed: u64,
    pub dir: PathBuf,
    /// A grid of the first faces, written next to the folder (DIR.grid.png).
    pub grid: PathBuf,
    pub seconds: f64,
}

impl fmt::Display for SynthReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "wrote {} SYNTHETIC faces (seed {}) to {} in {:.2} s: synthetic-NNNNNN.png, 128x128 8-bit gray",
            self.count,
            self.seed,
            self.dir.display(),
            self.seconds
        )?;
        writeln!(f, "sample grid: {}", self.grid.display())?;
        write!(
            f,
            "these are procedurally drawn, not photographs: use them to try the pipeline; real results need real faces (--dataset DIR)"
        )
    }
}

const SYNTH_README: &str =
    "These images are SYNTHETIC faces drawn procedurally by `facegpu synth`.\n\
They are not photographs of people. They exist so that every facegpu command works with no\n\
data at all; models trained or evaluated on them say nothing about real faces. For real\n\
results, train and evaluate on real face images with --dataset DIR.\n";

/// Writes `count` synthetic faces of `seed` as PNGs (each with a tEXt note saying what it is),
/// a README saying they are synthetic, and a sample grid. Faces are drawn and written on all
/// cores.
pub fn write_synth(count: usize, seed: u64, out_dir: &Path) -> Result<SynthReport> {
    if count == 0 {
        anyhow::bail!("--count 0: nothing to write; ask for at least one face");
    }
    let t0 = std::time::Instant::now();
    crate::fsutil::ensure_output_dir(out_dir, "--out")?;
    std::fs::write(out_dir.join("README.txt"), SYNTH_README)
        .with_context(|| format!("cannot write into {}", out_dir.display()))?;
    (0..count).into_par_iter().try_for_each(|i| -> Result<()> {
        let px = face(seed, i as u64);
        let path = out_dir.join(format!("synthetic-{i:06}.png"));
        let note = format!(
            "SYNTHETIC face drawn by facegpu synth (seed {seed}, index {i}); not a photograph"
        );
        super::report::write_png_gray(&path, &px, SIDE as u32, SIDE as u32, &note)
    })?;
    let n = count.min(64);
    let faces: Vec<Vec<u8>> = (0..n).map(|i| face(seed, i as u64)).collect();
    // beside the folder, not in it: `--dataset DIR` must read only the faces
    let grid = sibling_grid(out_dir);
    super::report::write_grid(
        &grid,
        &faces.iter().map(|v| v.as_slice()).collect::<Vec<_>>(),
        8,
        Some("SYNTHETIC FACES - NOT PHOTOGRAPHS"),
    )?;
    Ok(SynthReport {
        count,
        seed,
        dir: out_dir.to_path_buf(),
        grid,
        seconds: t0.elapsed().as_secs_f64(),
    })
}
