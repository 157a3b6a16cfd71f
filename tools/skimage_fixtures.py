#!/usr/bin/env python3
"""Writes the metrics fixtures tests/metrics.rs checks the GPU against: a few small image pairs
(8-bit gray PNGs, synthetic from a fixed seed, no real faces) and scikit-image's MSE, PSNR and
SSIMs for each pair in expected.json next to them.

    python3 tools/skimage_fixtures.py   # needs numpy, pillow, scikit-image

Values are computed on img / 255 in float64 with data_range=1.0:
- mse, psnr: skimage.metrics.mean_squared_error / peak_signal_noise_ratio(data_range=1.0)
- ssim: structural_similarity(a, b, data_range=1.0) (7x7 uniform window, sample covariance,
  mean over the map without its 3-pixel border)
- ssim_gaussian: structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False): 11x11 Gaussian window (truncate 3.5), population covariance,
  mean over the map without its 5-pixel border, i.e. over the valid windows only.
"""
import json
import os

import numpy as np
import skimage
from PIL import Image
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "metrics")


def pattern(rng, h, w):
    """Smooth blobs + edges + fine noise: SSIM windows see flat, textured and edge regions."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = 0.5 + 0.25 * np.sin(yy / rng.uniform(5, 12) + rng.uniform(0, 6)) * np.cos(xx / rng.uniform(4, 10))
    for _ in range(4):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(5, 25)
        img += rng.uniform(-0.3, 0.3) * (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r)
    img += rng.normal(0, 0.03, (h, w))
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def distort(rng, a, kind):
    f = a.astype(np.float64)
    if kind == "noise":
        f = f + rng.normal(0, 8, f.shape)
    elif kind == "blur":  # 3x3 box blur (edge-replicated) + a little noise
        p = np.pad(f, 1, mode="edge")
        f = sum(p[i:i + f.shape[0], j:j + f.shape[1]] for i in range(3) for j in range(3)) / 9
        f = f + rng.normal(0, 2, f.shape)
    elif kind == "shift":  # one pixel right, brightness change
        f = np.roll(f, 1, axis=1) * 0.9 + 10
    return np.clip(np.round(f), 0, 255).astype(np.uint8)


def metrics(a8, b8):
    a = a8.astype(np.float64) / 255.0
    b = b8.astype(np.float64) / 255.0
    mse = mean_squared_error(a, b)
    psnr = peak_signal_noise_ratio(a, b, data_range=1.0)
    ssim = structural_similarity(a, b, data_range=1.0)
    sg, smap = structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, full=True)
    valid = smap[5:-5, 5:-5].mean()  # the valid windows, stated explicitly
    assert abs(valid - sg) < 1e-12, (valid, sg)
    return {"mse": mse, "psnr": psnr, "ssim": ssim, "ssim_gaussian": valid}


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20261123)
    pairs = []
    for name, (h, w), kind in [("sq128_noise", (128, 128), "noise"),
                               ("sq128_blur", (128, 128), "blur"),
                               ("rect61x97_shift", (61, 97), "shift")]:
        a = pattern(rng, h, w)
        b = distort(rng, a, kind)
        fa, fb = f"{name}_ref.png", f"{name}_dist.png"
        Image.fromarray(a, mode="L").save(os.path.join(OUT, fa), optimize=True)
        Image.fromarray(b, mode="L").save(os.path.join(OUT, fb), optimize=True)
        pairs.append({"name": name, "reference": fa, "distorted": fb, "height": h, "width": w,
                      **metrics(a, b)})
    meta = {"generator": "tools/skimage_fixtures.py", "skimage": skimage.__version__,
            "numpy": np.__version__, "data_range": 1.0, "pairs": pairs}
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    for p in pairs:
        print(p)


if __name__ == "__main__":
    main()
