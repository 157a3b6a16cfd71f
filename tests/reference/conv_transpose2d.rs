//! ConvTranspose2d in float64, PyTorch's semantics (NCHW, weight [c_in, c_out, kh, kw],
//! h_out = (h_in-1)*stride - 2*pad + kh + output_padding): the scatter loops, forward and the two
//! backward passes. Activations: see reference::conv2d.

use facegpu::ops::Activation;

#[derive(Clone, Copy, Debug)]
pub struct ConvT {
    pub batch: usize,
    pub c_in: usize,
    pub h_in: usize,
    pub w_in: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    pub output_padding: usize,
}

impl ConvT {
    pub fn h_out(&self) -> usize {
        (self.h_in - 1) * self.stride + self.kh + self.output_padding - 2 * self.pad
    }
    pub fn w_out(&self) -> usize {
        (self.w_in - 1) * self.stride + self.kw + self.output_padding - 2 * self.pad
    }
    pub fn in_len(&self) -> usize {
        self.batch * self.c_in * self.h_in * self.w_in
    }
    pub fn out_len(&self) -> usize {
        self.batch * self.c_out * self.h_out() * self.w_out()
    }
    pub fn w_len(&self) -> usize {
        self.c_in * self.c_out * self.kh * self.kw
    }

    /// Calls f(x index, y index, w index) for every multiply-add: input pixel (iy, ix) scatters
    /// into output (iy*stride - pad + ky, ix*stride - pad + kx) when that lies in the output.
    fn each_tap(&self, mut f: impl FnMut(usize, usize, usize)) {
        let (ho, wo) = (self.h_out(), self.w_out());
        for n in 0..self.batch {
            for ci in 0..self.c_in {
                for iy in 0..self.h_in {
                    for ix in 0..self.w_in {
                        let xi = ((n * self.c_in + ci) * self.h_in + iy) * self.w_in + ix;
                        for co in 0..self.c_out {
                            for ky in 0..self.kh {
                                for kx in 0..self.kw {
                                    let oy = (iy * self.stride + ky) as isize - self.pad as isize;
                                    let ox = (ix * self.stride + kx) as isize - self.pad as isize;
                                    if oy < 0 || ox < 0 || oy >= ho as isize || ox >= wo as isize {
                                        continue;
                                    }
                                    let yi = ((n * self.c_out + co) * ho + oy as usize) * wo
                                        + ox as usize;
                                    let wi = ((ci * self.c_out + co) * self.kh + ky) * self.kw + kx;
                                    f(xi, yi, wi);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    pub fn forward_pre(&self, x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
        let hw = self.h_out() * self.w_out();
        let mut y: Vec<f64> = (0..self.out_len())
            .map(|i| b[(i / hw) % self.c_out])
            .collect();
        self.each_tap(|xi, yi, wi| y[yi] += x[xi] * w[wi]);
        y
    }

    pub fn forward(&self, x: &[f64], w: &[f64], b: &[f64], act: Activation) -> Vec<f64> {
        super::conv2d::apply(act, &self.forward_pre(x, w, b))
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
