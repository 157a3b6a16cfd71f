//! A model unrolled for one batch size: activation buffers, their gradients, and the recording
//! of forward, loss, backward and optimizer kernels. A training step is recorded once into a
//! program and replayed; nothing is read back inside it.

use anyhow::{bail, Result};

use super::params::Params;
use super::spec::{Kind, LayerSpec, ModelSpec, INPUT_DIMS};
use crate::gpu::{Gpu, Recorder, Tensor};
use crate::ops::step::StepState;
use crate::ops::{conv2d, conv_transpose2d, elementwise, linear, loss, optim, vae, Activation};

/// One layer wired to its input and output buffers.
struct Node {
    spec: LayerSpec,
    in_dims: [usize; 3],
    input: Tensor,
    output: Tensor,
    /// Gradient w.r.t. the input; None for the image (nothing upstream needs it).
    d_input: Option<Tensor>,
    d_output: Tensor,
    weight: usize,
    /// `d_output` holds g = dL/dy * act'(y), formed by its consumer (the next layer's input
    /// gradient, or the loss), so this layer's backward runs with no activation.
    g_formed: bool,
    /// The activation of the previous layer, whose g this layer's input gradient forms
    /// (conv and transposed-conv layers whose input is that layer's output alone).
    forms_g_of: Option<Activation>,
}

/// Marks `next` (a conv or transposed conv reading `prev`'s output, and nothing else reading
/// it) as forming `prev`'s g in its input gradient.
fn link(prev: &mut Node, next: &mut Node) {
    if matches!(next.spec.kind, Kind::Conv { .. } | Kind::ConvT { .. }) && next.d_input.is_some() {
        next.forms_g_of = Some(prev.spec.act);
        prev.g_formed = true;
    }
}

fn link_chain(nodes: &mut [Node]) {
    for i in 1..nodes.len() {
        let (a, b) = nodes.split_at_mut(i);
        link(&mut a[i - 1], &mut b[0]);
    }
}

/// What a training step's forward pass folded into the network's last layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fold {
    /// nothing: the loss and its gradient are separate passes
    None,
    /// the loss and its gradient (conv_transpose2d::forward_mse_grad)
    Loss,
    /// those, the layer's weight gradient and act' of its input as bits in `act_mask`, its input
    /// recomputed from the layer below's (conv_transpose2d::forward_mse_wgrad)
    LossWeightMask,
}

/// How the latent is formed when evaluating a VAE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Latent {
    /// z = mu + eps * sigma (training, or `eval --sample`).
    Sample,
    /// z = mu (evaluation default).
    Mean,
}

/// VAE-only buffers.
struct VaeBufs {
    mu: Tensor,
    logvar: Tensor,
    z: Tensor,
    eps: Tensor,
    dmu: Tensor,
    dlogvar: Tensor,
    dz: Tensor,
    /// d(encoder output) from the logvar head, added to the mu head's.
    d_enc_second: Tensor,
}

pub struct Graph {
    pub spec: ModelSpec,
    pub batch: usize,
    /// The network's input (noisy or clean image) [batch, 1, 128, 128].
    pub input: Tensor,
    /// What the reconstruction is compared with [batch, 1, 128, 128].
    pub target: Tensor,
    /// The reconstruction [batch, 1, 128, 128] (left unwritten by a training step whose loss
    /// is folded into the last layer: `record_forward_backward`).
    pub output: Tensor,
    encoder: Vec<Node>,
    heads: Vec<Node>,
    decoder: Vec<Node>,
    vae: Option<VaeBufs>,
    latent: Latent,
    /// Scalars: reconstruction loss, KL (VAE), their weighted sum as trained.
    pub recon_loss: Tensor,
    pub kl_loss: Tensor,
    d_output: Tensor,
    /// act' of the last layer's input as bits, where a training step's last layer keeps it
    /// so (Fold::LossWeightMask): decoders ending in two transposed convs
    act_mask: Option<Tensor>,
}

fn dims_len(d: [usize; 3]) -> usize {
    d.iter().product()
}

impl Graph {
    /// Allocates every buffer for `batch` images. `input` and `target` may be the same tensor.
    pub fn new(
        gpu: &Gpu,
        spec: &ModelSpec,
        params: &Params,
        batch: usize,
        input: Tensor,
        target: Tensor,
        latent: Latent,
    ) -> Result<Graph> {
        spec.dims()?;
        let shape = |d: [usize; 3]| vec![batch, d[0], d[1], d[2]];
        let param_index = |name: &str| {
            params
                .list
                .iter()
                .position(|p| p.name == format!("{name}.weight"))
                .expect("params match spec")
        };
        // Wires a chain of layers: each layer's input gradient is the previous one's output
        // gradient; the first layer's is `first_d_input` (None: nothing upstream needs it).
        let chain = |layers: &[LayerSpec],
                     mut x: Tensor,
                     mut dims: [usize; 3],
                     first_d_input: Option<Tensor>|
         -> Result<(Vec<Node>, Tensor, [usize; 3])> {
            let mut nodes: Vec<Node> = Vec::new();
            let mut d_input = first_d_input;
            for l in layers {
                let out_dims = l.out_dims(dims)?;
                let output = gpu.zeros(&shape(out_dims));
                let d_output = gpu.zeros(&shape(out_dims));
                nodes.push(Node {
                    spec: l.clone(),
                    in_dims: dims,
                    input: x.clone(),
                    output: output.clone(),
                    d_input: d_input.take(),
                    d_output: d_output.clone(),
                    weight: param_index(l.name),
                    g_formed: false,
                    forms_g_of: None,
                });
                d_input = Some(d_output);
                x = output;
                dims = out_dims;
            }
            Ok((nodes, x, dims))
        };
        let (mut encoder, enc_out, enc_dims) =
            chain(&spec.encoder, input.clone(), INPUT_DIMS, None)?;
        let d_enc = encoder.last().expect("encoder has layers").d_output.clone();
        let (heads, vae, dec_in, dec_dims, dec_d_input) = match &spec.heads {
            Some([mu_spec, lv_spec]) => {
                let lat = mu_spec.out_dims(enc_dims)?;
                let second = gpu.zeros(&shape(enc_dims));
                let (mu_nodes, mu, _) = chain(
                    std::slice::from_ref(mu_spec),
                    enc_out.clone(),
                    enc_dims,
                    Some(d_enc),
                )?;
                let (lv_nodes, logvar, _) = chain(
                    std::slice::from_ref(lv_spec),
                    enc_out.clone(),
                    enc_dims,
                    Some(second.clone()),
                )?;
                let z = gpu.zeros(&shape(lat));
                let dz = gpu.zeros(&shape(lat));
                let bufs = VaeBufs {
                    mu: mu.clone(),
                    logvar,
                    z: z.clone(),
                    eps: gpu.zeros(&shape(lat)),
                    dmu: mu_nodes[0].d_output.clone(),
                    dlogvar: lv_nodes[0].d_output.clone(),
                    dz: dz.clone(),
                    d_enc_second: second,
                };
                let dec_in = if latent == Latent::Mean { mu } else { z };
                (
                    mu_nodes.into_iter().chain(lv_nodes).collect(),
                    Some(bufs),
                    dec_in,
                    lat,
                    dz,
                )
            }
            None => (Vec::new(), None, enc_out, enc_dims, d_enc),
        };
        let (mut decoder, output, _) = chain(&spec.decoder, dec_in, dec_dims, Some(dec_d_input))?;
        link_chain(&mut encoder);
        link_chain(&mut decoder);
        if heads.is_empty() {
            // AE: the decoder's first layer reads the encoder's output
            link(
                encoder.last_mut().expect("encoder has layers"),
                &mut decoder[0],
            );
        }
        // the loss gradient is the last layer's g
        decoder.last_mut().expect("decoder has layers").g_formed = true;
        let d_output = decoder.last().expect("decoder has layers").d_output.clone();
        let act_mask = match &decoder[..] {
            [.., a, b] => match (layer_shape(a, batch), layer_shape(b, batch)) {
                (LayerShape::ConvT(_), LayerShape::ConvT(s)) => {
                    Some(gpu.zeros(&[conv_transpose2d::act_mask_len(&s)]))
                }
                _ => None,
            },
            _ => None,
        };
        Ok(Graph {
            spec: spec.clone(),
            batch,
            input,
            target,
            output,
            encoder,
            heads,
            decoder,
            vae,
            latent,
            recon_loss: gpu.zeros(&[1]),
            kl_loss: gpu.zeros(&[1]),
            d_output,
            act_mask,
        })
    }

    /// The latent tensor (AE: encoder output; VAE: mu).
    pub fn latent(&self) -> &Tensor {
        match &self.vae {
            Some(v) => &v.mu,
            None => &self.encoder.last().expect("encoder").output,
        }
    }

    /// Loss scales: the AE's loss is the mean squared error (nn.MSELoss); the VAE's is
    /// (sum of squared errors + kl_weight * KL) / batch, as the seeds trained them.
    pub fn recon_scale(&self) -> f32 {
        if self.spec.is_vae() {
            1.0 / self.batch as f32
        } else {
            1.0 / (self.batch * dims_len(INPUT_DIMS)) as f32
        }
    }

    /// Records the forward pass and the losses.
    pub fn record_forward(
        &self,
        rec: &mut Recorder,
        params: &Params,
        seed: u64,
        step: &StepState,
        kl_weight: f32,
    ) -> Result<()> {
        self.forward(rec, params, seed, step, kl_weight, false)
            .map(|_| ())
    }

    /// Records the backward pass (gradients into each Param's `grad`). Needs the forward first.
    pub fn record_backward(
        &self,
        rec: &mut Recorder,
        params: &Params,
        kl_weight: f32,
    ) -> Result<()> {
        self.backward(rec, params, kl_weight, Fold::None)
    }

    /// Records a training step's forward and backward passes: the losses as
    /// [`Graph::record_forward`], the gradients as [`Graph::record_backward`]. Where the adapter
    /// has a kernel for it (conv_transpose2d::forward_mse_grad) the last layer's forward forms
    /// the loss and its gradient in one pass and `output` is not written.
    pub fn record_forward_backward(
        &self,
        rec: &mut Recorder,
        params: &Params,
        seed: u64,
        step: &StepState,
        kl_weight: f32,
    ) -> Result<()> {
        let folded = self.forward(rec, params, seed, step, kl_weight, true)?;
        self.backward(rec, params, kl_weight, folded)
    }

    /// The forward pass and the losses; with `fold`, the loss gradient too where the last layer
    /// can form it, and its weight gradient where it can (returns what it folded).
    fn forward(
        &self,
        rec: &mut Recorder,
        params: &Params,
        seed: u64,
        step: &StepState,
        kl_weight: f32,
        fold: bool,
    ) -> Result<Fold> {
        for n in &self.encoder {
            layer_forward(rec, n, self.batch, params)?;
        }
        for n in &self.heads {
            layer_forward(rec, n, self.batch, params)?;
        }
        if let Some(v) = &self.vae {
            if self.latent == Latent::Sample {
                vae::reparam_forward(rec, &v.mu, &v.logvar, &v.z, &v.eps, seed, step)?;
            }
            vae::kl(
                rec,
                &v.mu,
                &v.logvar,
                &self.kl_loss,
                kl_weight / self.batch as f32,
            )?;
        }
        let (last, rest) = self.decoder.split_last().expect("decoder has layers");
        for n in rest {
            layer_forward(rec, n, self.batch, params)?;
        }
        if fold {
            if let LayerShape::ConvT(s) = layer_shape(last, self.batch) {
                let (w, b) = (
                    &params.list[last.weight].value,
                    &params.list[last.weight + 1].value,
                );
                let loss = (
                    &self.target,
                    &self.d_output,
                    &self.recon_loss,
                    self.recon_scale(),
                );
                // the weight gradient and act' of the input too, the input recomputed from the
                // layer below's: then nothing reads the layer below's output, and its forward
                // (marked here, the op recorded last) is dropped
                if let (Some(below), Some(mask), Some(n)) =
                    (self.below(params), &self.act_mask, rest.last())
                {
                    rec.elide_if_unread(&n.output.buf);
                    let grads = (
                        &params.list[last.weight].grad,
                        &params.list[last.weight + 1].grad,
                        mask,
                    );
                    if conv_transpose2d::forward_mse_wgrad(
                        rec,
                        &s,
                        w,
                        b,
                        last.spec.act,
                        loss,
                        &below,
                        grads,
                    )? {
                        return Ok(Fold::LossWeightMask);
                    }
                }
                let folded = conv_transpose2d::forward_mse_grad(
                    rec,
                    &s,
                    &last.input,
                    w,
                    b,
                    last.spec.act,
                    &self.target,
                    &self.d_output,
                    &self.recon_loss,
                    self.recon_scale(),
                )?;
                if folded {
                    return Ok(Fold::Loss);
                }
            }
        }
        layer_forward(rec, last, self.batch, params)?;
        loss::mse(
            rec,
            &self.output,
            &self.target,
            &self.recon_loss,
            self.recon_scale(),
        )?;
        Ok(Fold::None)
    }

    /// The backward pass, after a forward that folded `fold` into the last layer.
    fn backward(
        &self,
        rec: &mut Recorder,
        params: &Params,
        kl_weight: f32,
        fold: Fold,
    ) -> Result<()> {
        if fold == Fold::None {
            loss::mse_grad_act(
                rec,
                &self.output,
                &self.target,
                &self.d_output,
                self.recon_scale(),
                self.decoder.last().expect("decoder has layers").spec.act,
            )?;
        }
        let (last, rest) = self.decoder.split_last().expect("decoder has layers");
        if fold == Fold::LossWeightMask {
            // the forward left the last layer its input gradient only, with act' of its input
            // as bits (the input itself is not written)
            let (LayerShape::ConvT(s), Some(mask), Some(dx)) =
                (layer_shape(last, self.batch), &self.act_mask, &last.d_input)
            else {
                bail!("internal: a folded weight gradient in a layer without a mask or an input gradient")
            };
            let w = &params.list[last.weight].value;
            let masked = conv_transpose2d::backward_input_masked(
                rec,
                &s,
                Activation::None,
                &last.output,
                &last.d_output,
                w,
                dx,
                mask,
            )?;
            if !masked {
                let then = last.forms_g_of.map(|a| (a, &last.input));
                conv_transpose2d::backward_input_then(
                    rec,
                    &s,
                    Activation::None,
                    &last.output,
                    &last.d_output,
                    w,
                    dx,
                    then,
                )?;
            }
        } else {
            layer_backward(rec, last, self.batch, params, None)?;
        }
        for n in rest.iter().rev() {
            layer_backward(rec, n, self.batch, params, None)?;
        }
        if let Some(v) = &self.vae {
            vae::reparam_backward(rec, &v.dz, &v.logvar, &v.eps, &v.dmu, &v.dlogvar)?;
            vae::kl_grad_accumulate(
                rec,
                &v.mu,
                &v.logvar,
                &v.dmu,
                &v.dlogvar,
                kl_weight / self.batch as f32,
            )?;
            for n in &self.heads {
                layer_backward(rec, n, self.batch, params, None)?;
            }
            // both heads read the encoder's output: the mu head wrote its input gradient into
            // the encoder's output gradient, the logvar head's is added to it
            let d_enc = &self.encoder.last().expect("encoder").d_output;
            elementwise::axpy(rec, 1.0, &v.d_enc_second, d_enc)?;
        }
        // the first layer's weight gradient may come out of the second layer's input-gradient
        // kernel (layer_backward's `below`): then it has nothing left to record
        let mut first_done = false;
        for (i, n) in self.encoder.iter().enumerate().rev() {
            if i == 0 && first_done {
                continue;
            }
            let below = (i == 1).then(|| &self.encoder[0]);
            first_done = layer_backward(rec, n, self.batch, params, below)?;
        }
        Ok(())
    }

    /// The decoder's second-to-last layer, as the last layer's kernels may recompute its output
    /// (conv_transpose2d::Below): where both are transposed convs and the last reads that
    /// output alone. The kernels decide whether they can.
    fn below<'a>(&'a self, params: &'a Params) -> Option<conv_transpose2d::Below<'a>> {
        let [.., n, last] = &self.decoder[..] else {
            return None;
        };
        let (LayerShape::ConvT(shape), LayerShape::ConvT(_)) =
            (layer_shape(n, self.batch), layer_shape(last, self.batch))
        else {
            return None;
        };
        (last.input.buf == n.output.buf).then_some(conv_transpose2d::Below {
            shape,
            x: &n.input,
            w: &params.list[n.weight].value,
            b: &params.list[n.weight + 1].value,
            act: n.spec.act,
        })
    }

    /// Records one Adam/AdamW update of every parameter.
    pub fn record_update(
        &self,
        rec: &mut Recorder,
        params: &Params,
        cfg: &optim::AdamConfig,
        step: &StepState,
    ) -> Result<()> {
        for p in &params.list {
            optim::adam(rec, cfg, &p.value, &p.grad, &p.m, &p.v, step)?;
        }
        Ok(())
    }
}

/// The kernel shape of one layer at `batch` (one place for both passes).
enum LayerShape {
    Conv(conv2d::Conv2dShape),
    ConvT(conv_transpose2d::ConvTranspose2dShape),
    Linear(linear::LinearShape),
}

fn layer_shape(n: &Node, batch: usize) -> LayerShape {
    let d = n.in_dims;
    match n.spec.kind {
        Kind::Conv {
            c_in,
            c_out,
            k,
            stride,
            pad,
        } => LayerShape::Conv(conv2d::Conv2dShape {
            batch,
            c_in,
            h_in: d[1],
            w_in: d[2],
            c_out,
            kh: k,
            kw: k,
            stride,
            pad,
        }),
        Kind::ConvT {
            c_in,
            c_out,
            k,
            stride,
            pad,
            output_padding,
        } => LayerShape::ConvT(conv_transpose2d::ConvTranspose2dShape {
            batch,
            c_in,
            h_in: d[1],
            w_in: d[2],
            c_out,
            kh: k,
            kw: k,
            stride,
            pad,
            output_padding,
        }),
        Kind::Linear { d_in, d_out, .. } => {
            LayerShape::Linear(linear::LinearShape { batch, d_in, d_out })
        }
    }
}

fn layer_forward(rec: &mut Recorder, n: &Node, batch: usize, params: &Params) -> Result<()> {
    let w = &params.list[n.weight].value;
    let b = &params.list[n.weight + 1].value;
    let (x, y, act) = (&n.input, &n.output, n.spec.act);
    match layer_shape(n, batch) {
        LayerShape::Conv(s) => conv2d::forward(rec, &s, x, w, b, y, act),
        LayerShape::ConvT(s) => conv_transpose2d::forward(rec, &s, x, w, b, y, act),
        LayerShape::Linear(s) => linear::forward(rec, &s, x, w, b, y, act),
    }
}

/// Records layer `n`'s weight and input gradients. With `below` = the first layer (which
/// needs no input gradient), where the kernels allow, n's input-gradient kernel also makes
/// below's weight gradient (conv2d::backward_input_into_wgrad_below) and this returns true:
/// below has nothing left to record.
fn layer_backward(
    rec: &mut Recorder,
    n: &Node,
    batch: usize,
    params: &Params,
    below: Option<&Node>,
) -> Result<bool> {
    let (w, dw, db) = (
        &params.list[n.weight].value,
        &params.list[n.weight].grad,
        &params.list[n.weight + 1].grad,
    );
    let (y, dy, x) = (&n.output, &n.d_output, &n.input);
    // dy is already g where the consumer formed it
    let act = if n.g_formed {
        Activation::None
    } else {
        n.spec.act
    };
    let then = n.forms_g_of.map(|a| (a, x));
    // weight gradients first, then (except for the first layer) the input gradient
    match layer_shape(n, batch) {
        LayerShape::Conv(s) => {
            conv2d::backward_weight(rec, &s, act, y, dy, x, dw, db)?;
            if let (Some(b), Some(then)) = (below.filter(|b| b.d_input.is_none()), then) {
                if let LayerShape::Conv(s0) = layer_shape(b, batch) {
                    let (dw0, db0) = (&params.list[b.weight].grad, &params.list[b.weight + 1].grad);
                    if conv2d::backward_input_into_wgrad_below(
                        rec, &s, act, y, dy, w, then, &s0, &b.input, dw0, db0,
                    )? {
                        return Ok(true);
                    }
                }
            }
            if let Some(dx) = &n.d_input {
                conv2d::backward_input_then(rec, &s, act, y, dy, w, dx, then)?;
            }
        }
        LayerShape::ConvT(s) => {
            if let Some(dx) = &n.d_input {
                let then_act = then.map_or(Activation::None, |(a, _)| a);
                if conv_transpose2d::backward_fused(
                    rec, &s, act, y, dy, x, w, then_act, dx, dw, db,
                )? {
                    return Ok(false);
                }
            }
            conv_transpose2d::backward_weight(rec, &s, act, y, dy, x, dw, db)?;
            if let Some(dx) = &n.d_input {
                conv_transpose2d::backward_input_then(rec, &s, act, y, dy, w, dx, then)?;
            }
        }
        LayerShape::Linear(s) => {
            linear::backward(rec, &s, act, y, dy, x, w, dw, db, n.d_input.as_ref())?;
        }
    }
    Ok(false)
}
