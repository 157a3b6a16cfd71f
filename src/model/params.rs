//! A model's parameters on the GPU with their gradients and Adam moments, PyTorch-style
//! initialisation, and conversion to and from checkpoint tensors.

use anyhow::{bail, Result};

use super::spec::ModelSpec;
use crate::gpu::{Gpu, Tensor};
use crate::ops::rng;

/// A tensor read back to the host: (name, shape, values).
pub type HostTensor = (String, Vec<usize>, Vec<f32>);

/// One parameter tensor (a layer's weight or bias).
pub struct Param {
    /// PyTorch name, e.g. "encoder.0.weight".
    pub name: String,
    pub value: Tensor,
    pub grad: Tensor,
    /// Adam's first and second moments.
    pub m: Tensor,
    pub v: Tensor,
}

pub struct Params {
    pub list: Vec<Param>,
}

/// Stream tag for initialisation draws ("init").
const INIT_STREAM: u32 = 0x696e6974;

impl Params {
    /// PyTorch's default initialisation for Conv2d, ConvTranspose2d and Linear: weight and bias
    /// uniform in +-1/sqrt(fan_in) (kaiming_uniform with a = sqrt(5)), drawn from `seed`.
    pub fn init(gpu: &Gpu, spec: &ModelSpec, seed: u64) -> Result<Params> {
        let key = rng::key(seed);
        let mut host = Vec::new();
        for (li, l) in spec.layers().iter().enumerate() {
            let bound = 1.0 / (l.fan_in() as f64).sqrt();
            let (ws, bs) = l.param_shapes();
            for (pi, (suffix, shape)) in [("weight", ws), ("bias", bs)].into_iter().enumerate() {
                let n: usize = shape.iter().product();
                let tensor_id = (li * 2 + pi) as u32;
                let data: Vec<f32> = (0..n as u32)
                    .map(|i| {
                        let r = rng::philox4x32([i >> 2, tensor_id, 0, INIT_STREAM], key);
                        let u = rng::u32_to_unit(r[(i & 3) as usize]); // (0, 1]
                        ((2.0 * u - 1.0) * bound) as f32
                    })
                    .collect();
                host.push((format!("{}.{suffix}", l.name), shape, data));
            }
        }
        Self::from_host(gpu, spec, &host)
    }

    /// Parameters from host tensors (a checkpoint), checked against the spec's names and shapes.
    pub fn from_host(
        gpu: &Gpu,
        spec: &ModelSpec,
        tensors: &[(String, Vec<usize>, Vec<f32>)],
    ) -> Result<Params> {
        let want = spec.tensor_shapes();
        let mut list = Vec::new();
        for (name, shape) in &want {
            let Some((_, s, data)) = tensors.iter().find(|(n, _, _)| n == name) else {
                bail!(
                    "model {} needs tensor {name} {shape:?}, which is missing",
                    spec.name
                );
            };
            if s != shape {
                bail!(
                    "tensor {name} has shape {s:?}, model {} wants {shape:?}",
                    spec.name
                );
            }
            list.push(Param {
                name: name.clone(),
                value: gpu.upload(data, shape)?,
                grad: gpu.zeros(shape),
                m: gpu.zeros(shape),
                v: gpu.zeros(shape),
            });
        }
        if let Some((extra, _, _)) = tensors
            .iter()
            .find(|(n, _, _)| !want.iter().any(|(w, _)| w == n))
        {
            bail!("tensor {extra} is not part of model {}", spec.name);
        }
        Ok(Params { list })
    }

    pub fn get(&self, name: &str) -> &Param {
        self.list
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no parameter {name}"))
    }

    /// Reads every parameter back: (name, shape, values).
    pub fn to_host(&self, gpu: &Gpu) -> Result<Vec<HostTensor>> {
        self.list
            .iter()
            .map(|p| Ok((p.name.clone(), p.value.shape.clone(), gpu.read(&p.value)?)))
            .collect()
    }

    /// Reads Adam's moments back: ("{name}.m" / "{name}.v", shape, values).
    pub fn moments_to_host(&self, gpu: &Gpu) -> Result<Vec<HostTensor>> {
        let mut out = Vec::new();
        for p in &self.list {
            out.push((format!("{}.m", p.name), p.m.shape.clone(), gpu.read(&p.m)?));
            out.push((format!("{}.v", p.name), p.v.shape.clone(), gpu.read(&p.v)?));
        }
        Ok(out)
    }

    /// Restores Adam's moments saved by [`Params::moments_to_host`].
    pub fn moments_from_host(
        &self,
        gpu: &Gpu,
        tensors: &[(String, Vec<usize>, Vec<f32>)],
    ) -> Result<()> {
        for p in &self.list {
            for (suffix, t) in [("m", &p.m), ("v", &p.v)] {
                let key = format!("{}.{suffix}", p.name);
                let Some((_, _, data)) = tensors.iter().find(|(n, _, _)| *n == key) else {
                    bail!("optimizer state lacks {key}; resume from a checkpoint facegpu wrote");
                };
                gpu.write(t, data)?;
            }
        }
        Ok(())
    }
}
