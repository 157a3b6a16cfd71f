#!/usr/bin/env python3
"""Times scikit-image computing MSE, PSNR and SSIM (default 7x7 window, data_range 1) for
128x128 float64 image pairs, one image at a time as an evaluation loop would, and prints
images/s. Compare with `facegpu bench metrics` (our fused GPU metrics).

    python3 tools/skimage_speed.py [--n 200] [--gaussian]
"""
import argparse
import time

import numpy as np
import skimage
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200, help="image pairs per timed round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--gaussian", action="store_true", help="also the Gaussian SSIM (as ours does)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, (args.n, 128, 128))
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)

    def one_round():
        for x, y in zip(a, b):
            mean_squared_error(x, y)
            peak_signal_noise_ratio(x, y, data_range=1.0)
            structural_similarity(x, y, data_range=1.0)
            if args.gaussian:
                structural_similarity(x, y, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False)

    one_round()  # warm-up
    times = []
    for _ in range(args.rounds):
        t = time.perf_counter()
        one_round()
        times.append(time.perf_counter() - t)
    med = sorted(times)[len(times) // 2]
    what = "MSE+PSNR+SSIM" + ("+SSIM-gaussian" if args.gaussian else "")
    print(f"scikit-image {skimage.__version__} {what}, 128x128 float64, one image at a time: "
          f"{args.n / med:.0f} images/s (median of {args.rounds} rounds of {args.n})")


if __name__ == "__main__":
    main()
