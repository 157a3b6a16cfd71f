//! MSE, PSNR and both SSIMs in float64, written the way scikit-image defines them (filter the
//! whole image, compute the SSIM map, crop the window radius, take the mean) but evaluating only
//! the windows that survive the crop, each as a direct weighted sum.

/// One image pair's metrics: (mse, psnr, ssim, ssim_gaussian).
pub fn metrics(x: &[f64], y: &[f64], h: usize, w: usize) -> [f64; 4] {
    let mse = x.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / (h * w) as f64;
    let psnr = if mse > 0.0 {
        10.0 * (1.0 / mse).log10()
    } else {
        f64::INFINITY
    };
    let box7 = [1.0 / 7.0; 7];
    [
        mse,
        psnr,
        ssim(x, y, h, w, &box7, 49.0 / 48.0),
        ssim(x, y, h, w, &gaussian_taps(1.5, 5), 1.0),
    ]
}

/// scipy's `_gaussian_kernel1d(sigma, 0, radius)`.
pub fn gaussian_taps(sigma: f64, radius: usize) -> Vec<f64> {
    let g: Vec<f64> = (0..2 * radius + 1)
        .map(|i| {
            let t = i as f64 - radius as f64;
            (-0.5 / (sigma * sigma) * t * t).exp()
        })
        .collect();
    let s: f64 = g.iter().sum();
    g.iter().map(|v| v / s).collect()
}

/// Mean SSIM with separable window taps `g` (2-D weights g[i] g[j]), covariance factor `cov`,
/// over the pixels whose window lies inside the image; data_range 1, K1 0.01, K2 0.03.
pub fn ssim(x: &[f64], y: &[f64], h: usize, w: usize, g: &[f64], cov: f64) -> f64 {
    let (c1, c2) = (0.01f64.powi(2), 0.03f64.powi(2));
    let r = g.len() / 2;
    let mut total = 0.0;
    let mut count = 0usize;
    for i in r..h - r {
        for j in r..w - r {
            let (mut ux, mut uy, mut uxx, mut uyy, mut uxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for (a, ga) in g.iter().enumerate() {
                for (b, gb) in g.iter().enumerate() {
                    let k = (i + a - r) * w + (j + b - r);
                    let wt = ga * gb;
                    ux += wt * x[k];
                    uy += wt * y[k];
                    uxx += wt * x[k] * x[k];
                    uyy += wt * y[k] * y[k];
                    uxy += wt * x[k] * y[k];
                }
            }
            let vx = cov * (uxx - ux * ux);
            let vy = cov * (uyy - uy * uy);
            let vxy = cov * (uxy - ux * uy);
            total += (2.0 * ux * uy + c1) * (2.0 * vxy + c2)
                / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
            count += 1;
        }
    }
    total / count as f64
}
