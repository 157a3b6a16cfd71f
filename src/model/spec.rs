//! Architectures as data: an encoder chain, optional VAE heads, a decoder chain. Layer names
//! are the PyTorch module names, so checkpoints load into the seeds' nn.Modules.

use anyhow::{bail, Result};

use crate::gpu::Gpu;
use crate::ops::Activation;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Conv {
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        pad: usize,
    },
    ConvT {
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        pad: usize,
        output_padding: usize,
    },
    /// `unflatten`: the [c, h, w] the output is viewed as by the next (convolutional) layer.
    Linear {
        d_in: usize,
        d_out: usize,
        unflatten: Option<[usize; 3]>,
    },
}

#[derive(Clone, Debug)]
pub struct LayerSpec {
    /// PyTorch module name: its tensors are `{name}.weight` and `{name}.bias`.
    pub name: &'static str,
    pub kind: Kind,
    pub act: Activation,
}

/// A whole model: x -> encoder -> [mu, logvar heads -> z] -> decoder -> reconstruction.
#[derive(Clone, Debug)]
pub struct ModelSpec {
    pub name: &'static str,
    pub about: &'static str,
    pub encoder: Vec<LayerSpec>,
    /// The VAE's two heads (mu, logvar), both reading the encoder's output.
    pub heads: Option<[LayerSpec; 2]>,
    pub decoder: Vec<LayerSpec>,
}

/// Image side (128) and the [c, h, w] of the input.
pub const IMAGE: usize = 128;
pub const INPUT_DIMS: [usize; 3] = [1, IMAGE, IMAGE];

impl LayerSpec {
    /// Output [c, h, w] for input dims, checking that they fit.
    pub fn out_dims(&self, d: [usize; 3]) -> Result<[usize; 3]> {
        Ok(match self.kind {
            Kind::Conv {
                c_in,
                c_out,
                k,
                stride,
                pad,
            } => {
                if d[0] != c_in || d[1] + 2 * pad < k || d[2] + 2 * pad < k {
                    bail!(
                        "layer {}: input {d:?} does not fit Conv2d({c_in}, {c_out}, {k})",
                        self.name
                    );
                }
                [
                    c_out,
                    (d[1] + 2 * pad - k) / stride + 1,
                    (d[2] + 2 * pad - k) / stride + 1,
                ]
            }
            Kind::ConvT {
                c_in,
                c_out,
                k,
                stride,
                pad,
                output_padding,
            } => {
                if d[0] != c_in {
                    bail!(
                        "layer {}: input {d:?} does not fit ConvTranspose2d({c_in}, {c_out}, {k})",
                        self.name
                    );
                }
                let o = |n: usize| (n - 1) * stride + k + output_padding - 2 * pad;
                [c_out, o(d[1]), o(d[2])]
            }
            Kind::Linear {
                d_in,
                d_out,
                unflatten,
            } => {
                if d.iter().product::<usize>() != d_in {
                    bail!(
                        "layer {}: input {d:?} has {} values, Linear wants {d_in}",
                        self.name,
                        d.iter().product::<usize>()
                    );
                }
                match unflatten {
                    Some(u) if u.iter().product::<usize>() == d_out => u,
                    Some(u) => bail!("layer {}: cannot view {d_out} values as {u:?}", self.name),
                    None => [d_out, 1, 1],
                }
            }
        })
    }

    /// PyTorch shapes of (weight, bias).
    pub fn param_shapes(&self) -> (Vec<usize>, Vec<usize>) {
        match self.kind {
            Kind::Conv { c_in, c_out, k, .. } => (vec![c_out, c_in, k, k], vec![c_out]),
            Kind::ConvT { c_in, c_out, k, .. } => (vec![c_in, c_out, k, k], vec![c_out]),
            Kind::Linear { d_in, d_out, .. } => (vec![d_out, d_in], vec![d_out]),
        }
    }

    /// fan_in as PyTorch's default initialisation computes it (weight.size(1) * receptive field).
    pub fn fan_in(&self) -> usize {
        let (w, _) = self.param_shapes();
        w[1..].iter().product()
    }
}

impl ModelSpec {
    /// Every layer in parameter order (encoder, heads, decoder).
    pub fn layers(&self) -> Vec<&LayerSpec> {
        let mut v: Vec<&LayerSpec> = self.encoder.iter().collect();
        if let Some(h) = &self.heads {
            v.extend(h.iter());
        }
        v.extend(self.decoder.iter());
        v
    }

    /// (PyTorch name, shape) of every tensor, in checkpoint order.
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        for l in self.layers() {
            let (w, b) = l.param_shapes();
            out.push((format!("{}.weight", l.name), w));
            out.push((format!("{}.bias", l.name), b));
        }
        out
    }

    pub fn parameter_count(&self) -> usize {
        self.tensor_shapes()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }

    pub fn is_vae(&self) -> bool {
        self.heads.is_some()
    }

    /// The largest tensor a training or evaluation step binds whole, for one image: the input
    /// (layer None) or a layer's output (each output's gradient has its shape too).
    pub fn largest_tensor(&self) -> Result<([usize; 3], Option<&'static str>)> {
        let mut best = (INPUT_DIMS, None);
        let mut consider = |d: [usize; 3], name: &'static str| {
            if d.iter().product::<usize>() > best.0.iter().product::<usize>() {
                best = (d, Some(name));
            }
        };
        let mut d = INPUT_DIMS;
        for l in &self.encoder {
            d = l.out_dims(d)?;
            consider(d, l.name);
        }
        if let Some([mu, _]) = &self.heads {
            d = mu.out_dims(d)?;
            consider(d, mu.name);
        }
        for l in &self.decoder {
            d = l.out_dims(d)?;
            consider(d, l.name);
        }
        Ok(best)
    }

    /// The largest `--batch` whose largest tensor fits `limit_bytes` (one storage-buffer binding;
    /// [`Gpu::max_tensor_bytes`]).
    pub fn max_batch(&self, limit_bytes: u64) -> Result<u64> {
        Ok(crate::gpu::tensor::max_batch_within(
            limit_bytes,
            self.largest_tensor()?.0,
        ))
    }

    /// Refuses a `--batch` too large for this model on `gpu` (see [`Gpu::check_batch`]).
    pub fn check_batch(&self, gpu: &Gpu, batch: usize) -> Result<()> {
        let (dims, layer) = self.largest_tensor()?;
        let tensor = match layer {
            None => "the input batch".to_string(),
            Some(l) => format!("the output of layer {l}"),
        };
        gpu.check_batch(
            batch,
            dims,
            &format!("{}'s largest tensor, {tensor},", self.name),
        )
    }

    /// Dims after the encoder, the latent's dims, and the output dims; checks the chain fits
    /// and reconstructs a 1x128x128 image.
    pub fn dims(&self) -> Result<ModelDims> {
        let mut d = INPUT_DIMS;
        for l in &self.encoder {
            d = l.out_dims(d)?;
        }
        let encoded = d;
        let latent = match &self.heads {
            Some([mu, logvar]) => {
                let a = mu.out_dims(encoded)?;
                let b = logvar.out_dims(encoded)?;
                if a != b {
                    bail!("model {}: mu {a:?} and logvar {b:?} differ", self.name);
                }
                a
            }
            None => encoded,
        };
        let mut d = latent;
        for l in &self.decoder {
            d = l.out_dims(d)?;
        }
        if d != INPUT_DIMS {
            bail!("model {}: output {d:?} is not {INPUT_DIMS:?}", self.name);
        }
        Ok(ModelDims { encoded, latent })
    }
}

#[derive(Clone, Copy, Debug)]
pub struct ModelDims {
    pub encoded: [usize; 3],
    pub latent: [usize; 3],
}
