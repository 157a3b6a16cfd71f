//! The models `--model` names. `ae` and `vae` are the seed study's networks exactly;
//! `ae-wide` and `conv-vae` are stronger variants with the same latent sizes, so architecture
//! becomes a variable of the study rather than a confound.

use anyhow::{bail, Result};

use super::spec::{Kind, LayerSpec, ModelSpec};
use crate::ops::Activation::{None as Linear, Relu, Sigmoid};

fn conv(
    name: &'static str,
    c_in: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    act: crate::ops::Activation,
) -> LayerSpec {
    LayerSpec {
        name,
        kind: Kind::Conv {
            c_in,
            c_out,
            k,
            stride,
            pad: k / 2,
        },
        act,
    }
}

/// Transposed conv that doubles (stride 2, k 3, pad 1, output_padding 1) or keeps the size.
fn convt(
    name: &'static str,
    c_in: usize,
    c_out: usize,
    stride: usize,
    act: crate::ops::Activation,
) -> LayerSpec {
    LayerSpec {
        name,
        kind: Kind::ConvT {
            c_in,
            c_out,
            k: 3,
            stride,
            pad: 1,
            output_padding: stride - 1,
        },
        act,
    }
}

fn linear(name: &'static str, d_in: usize, d_out: usize, act: crate::ops::Activation) -> LayerSpec {
    LayerSpec {
        name,
        kind: Kind::Linear {
            d_in,
            d_out,
            unflatten: None,
        },
        act,
    }
}

pub const MODEL_NAMES: &[&str] = &["ae", "vae", "ae-wide", "conv-vae"];

pub fn model(name: &str) -> Result<ModelSpec> {
    Ok(match name {
        // The seed AE: 741 parameters, latent 4x32x32.
        "ae" => ModelSpec {
            name: "ae",
            about: "seed AE: Conv 1-8-4 (3x3 s2) + ConvT 4-8-1, 741 params, latent 4x32x32",
            encoder: vec![conv("encoder.0", 1, 8, 3, 2, Relu), conv("encoder.2", 8, 4, 3, 2, Relu)],
            heads: None,
            decoder: vec![convt("decoder.0", 4, 8, 2, Relu), convt("decoder.2", 8, 1, 2, Sigmoid)],
        },
        // The seed VAE: 17,102,224 parameters, latent 200.
        "vae" => ModelSpec {
            name: "vae",
            about: "seed VAE: Linear 16384-512-200 (mu, logvar), decoder 200-512-16384, 17.1M params",
            encoder: vec![linear("fc1", 16384, 512, Relu)],
            heads: Some([linear("fc_mu", 512, 200, Linear), linear("fc_logvar", 512, 200, Linear)]),
            decoder: vec![
                linear("fc3", 200, 512, Relu),
                LayerSpec { name: "fc4", kind: Kind::Linear { d_in: 512, d_out: 16384, unflatten: Some([1, 128, 128]) }, act: Sigmoid },
            ],
        },
        // Wider and deeper, same 4x32x32 latent: a 3x3 stride-1 conv at full resolution sees
        // edges before any downsampling, and each side gets one more nonlinearity.
        "ae-wide" => ModelSpec {
            name: "ae-wide",
            about: "stronger conv AE, same 4x32x32 latent: 1-16 (s1), 16-32 (s2), 32-4 (s2); 4-32 (T s2), 32-16 (T s2), 16-1 (s1)",
            encoder: vec![
                conv("encoder.0", 1, 16, 3, 1, Relu),
                conv("encoder.2", 16, 32, 3, 2, Relu),
                conv("encoder.4", 32, 4, 3, 2, Relu),
            ],
            heads: None,
            decoder: vec![
                convt("decoder.0", 4, 32, 2, Relu),
                convt("decoder.2", 32, 16, 2, Relu),
                conv("decoder.4", 16, 1, 3, 1, Sigmoid),
            ],
        },
        // Convolutional VAE with the seed's 200-value latent: convs shrink 128->16 before the
        // heads, so the linear layers are 200x4096 instead of 512x16384.
        "conv-vae" => ModelSpec {
            name: "conv-vae",
            about: "conv VAE, latent 200: conv 1-16-32-16 (s2 each) to 16x16x16, linear heads 4096->200, mirrored decoder",
            encoder: vec![
                conv("encoder.0", 1, 16, 3, 2, Relu),
                conv("encoder.2", 16, 32, 3, 2, Relu),
                conv("encoder.4", 32, 16, 3, 2, Relu),
            ],
            heads: Some([linear("fc_mu", 16 * 16 * 16, 200, Linear), linear("fc_logvar", 16 * 16 * 16, 200, Linear)]),
            decoder: vec![
                LayerSpec { name: "fc_dec", kind: Kind::Linear { d_in: 200, d_out: 16 * 16 * 16, unflatten: Some([16, 16, 16]) }, act: Relu },
                convt("decoder.0", 16, 32, 2, Relu),
                convt("decoder.2", 32, 16, 2, Relu),
                convt("decoder.4", 16, 1, 2, Sigmoid),
            ],
        },
        other => bail!("unknown model {other:?}: choose one of {}", MODEL_NAMES.join(", ")),
    })
}
