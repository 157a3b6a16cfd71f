//! Conv2d in float64, PyTorch's semantics (NCHW, weight [c_out, c_in, kh, kw]): the obvious
//! loops, forward and the two backward passes, plus activations and their derivatives.

use facegpu::ops::Activation;

#[derive(Clone, Copy, Debug)]
pub struct Conv {
    pub batch: usize,
    pub c_in: usize,
    pub h_in: usize,
    pub w_in: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
}

impl Conv {
    pub fn h_out(&self) -> usize {
        (self.h_in + 2 * self.pad - self.kh) / self.stride + 1
    }
    pub fn w_out(&self) -> usize {
        (self.w_in + 2 * self.pad - self.kw) / self.stride + 1
    }
    pub fn in_len(&self) -> usize {
        self.batch * self.c_in * self.h_in * self.w_in
    }
    pub fn out_len(&self) -> usize {
        self.batch * self.c_out * self.h_out() * self.w_out()
    }
    pub fn w_len(&self) -> usize {
        self.c_out * self.c_in * self.kh * self.kw
    }

    /// Calls f(x index, y index, w index) for every multiply-add of the conv.
    fn each_tap(&self, mut f: impl FnMut(usize, usize, usize)) {
        let (ho, wo) = (self.h_out(), self.w_out());
        for n in 0..self.batch {
            for co in 0..self.c_out {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let yi = ((n * self.c_out + co) * ho + oy) * wo + ox;
                        for ci in 0..self.c_in {
                            for ky in 0..self.kh {
                                for kx in 0..self.kw {
                                    let iy = (oy * self.stride + ky) as isize - self.pad as isize;
                                    let ix = (ox * self.stride + kx) as isize - self.pad as isize;
                                    if iy < 0
                                        || ix < 0
                                        || iy >= self.h_in as isize
                                        || ix >= self.w_in as isize
                                    {
                                        continue;
                                    }
                                    let xi = ((n * self.c_in + ci) * self.h_in + iy as usize)
                                        * self.w_in
                                        + ix as usize;
                                    let wi = ((co * self.c_in + ci) * self.kh + ky) * self.kw + kx;
                                    f(xi, yi, wi);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Pre-activation output conv(x, w) + b.
    pub fn forward_pre(&self, x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
        let hw = self.h_out() * self.w_out();
        let mut y: Vec<f64> = (0..self.out_len())
            .map(|i| b[(i / hw) % self.c_out])
            .collect();
        self.each_tap(|xi, yi, wi| y[yi] += x[xi] * w[wi]);
        y
    }

    pub fn forward(&self, x: &[f64], w: &[f64], b: &[f64], act: Activation) -> Vec<f64> {
        apply(act, &self.forward_pre(x, w, b))
    }

    /// dx from the pre-activation gradient g.
    pub fn backward_input(&self, g: &[f64], w: &[f64]) -> Vec<f64> {
        let mut dx = vec![0.0; self.in_len()];
        self.each_tap(|xi, yi, wi| dx[xi] += g[yi] * w[wi]);
        dx
    }

    /// (dw, db) from the pre-activation gradient g.
    pub fn backward_weight(&self, g: &[f64], x: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let mut dw = vec![0.0; self.w_len()];
        self.each_tap(|xi, yi, wi| dw[wi] += g[yi] * x[xi]);
        let hw = self.h_out() * self.w_out();
        let mut db = vec![0.0; self.c_out];
        for (i, v) in g.iter().enumerate() {
            db[(i / hw) % self.c_out] += v;
        }
        (dw, db)
    }
}

pub fn apply(act: Activation, v: &[f64]) -> Vec<f64> {
    v.iter()
        .map(|&v| match act {
            Activation::None => v,
            Activation::Relu => v.max(0.0),
            Activation::Sigmoid => 1.0 / (1.0 + (-v).exp()),
        })
        .collect()
}

/// g = dy * act'(y), from the activation's output y.
pub fn pre_grad(act: Activation, y: &[f64], dy: &[f64]) -> Vec<f64> {
    y.iter()
        .zip(dy)
        .map(|(&y, &d)| match act {
            Activation::None => d,
            Activation::Relu => {
                if y > 0.0 {
                    d
                } else {
                    0.0
                }
            }
            Activation::Sigmoid => d * y * (1.0 - y),
        })
        .collect()
}

pub fn abs(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| x.abs()).collect()
}

/// Rounds to the float32 values the GPU sees.
pub fn f32_round(v: &[f64]) -> Vec<f64> {
    v.iter().map(|&x| x as f32 as f64).collect()
}

/// Asserts |got - want| <= rel * mag + 1e-30 elementwise, where mag[i] is the sum of the
/// absolute values of the terms that make want[i] (so the bound is float32 accumulation error,
/// whatever the cancellation). NaN (an unwritten element) fails.
#[track_caller]
pub fn assert_within(what: &str, got: &[f64], want: &[f64], mag: &[f64], rel: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    assert_eq!(got.len(), mag.len(), "{what}: length of magnitudes");
    let mut worst = (0usize, 0.0f64);
    for i in 0..got.len() {
        assert!(
            got[i].is_finite(),
            "{what}: element {i} is {} (unwritten?), want {}",
            got[i],
            want[i]
        );
        let e = (got[i] - want[i]).abs() / (rel * mag[i] + 1e-30);
        if e > worst.1 {
            worst = (i, e);
        }
    }
    let i = worst.0;
    assert!(
        worst.1 <= 1.0,
        "{what}: element {i} = {} but reference says {} (|err| {:.3e} > {rel:e} * magnitude {:.3e})",
        got[i],
        want[i],
        (got[i] - want[i]).abs(),
        mag[i]
    );
}
