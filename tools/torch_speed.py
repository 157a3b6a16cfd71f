#!/usr/bin/env python3
"""Steady-state training images/s of the seed AE and VAE in PyTorch on this machine's CPU, to set
beside `facegpu bench train` in the same hour (this machine's speed moves by up to 1.5-1.8x from
hour to hour, so only same-hour numbers compare).

A step is what facegpu's is: forward, loss, backward, Adam (lr 1e-3) at batch 128. AE: MSE
averaged over the batch's pixels; VAE: (sum-MSE + KL) / batch. Inputs are real faces when
--faces DIR is given (the first 128 images, gray, 128x128), else uniform noise in [0, 1].
Each layout is timed in `--rounds` rounds of `--steps` steps after `--warmup` steps; the median
round is reported.

    python3 tools/torch_speed.py --faces ../shared/faces/lfw-gray-128 [--json OUT]

Layouts: `nchw` (PyTorch's default), `channels_last` (the NHWC-like memory format, PyTorch's
fastest for these convs on CPU), and for the AE also `compiled` (torch.compile, channels_last)
with --compile. Needs torch (and pillow with --faces); not a dependency of facegpu.
"""
import argparse, json, os, statistics, time

import torch
from torch import nn

from seed_models import AE, VAE


def faces(folder, n):
    from PIL import Image
    if not os.path.isdir(folder):
        raise SystemExit(f"--faces {folder}: not a folder; pass a folder of face images or drop --faces")
    # sub-folders too (ORL keeps each person's faces in one)
    names = sorted(os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs
                   if f.lower().endswith((".png", ".pgm", ".jpg", ".jpeg")))
    if len(names) < n:
        raise SystemExit(f"{folder}: {len(names)} images, need {n}; pass a folder with more or drop --faces")
    imgs = []
    for f in names[:n]:
        im = Image.open(f).convert("L").resize((128, 128))
        imgs.append(torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).float() / 255.0)
    return torch.stack(imgs).reshape(n, 1, 128, 128)


def ae_step(model, opt, x):
    opt.zero_grad(set_to_none=True)
    loss = nn.functional.mse_loss(model(x), x)
    loss.backward()
    opt.step()


def vae_step(model, opt, x):
    opt.zero_grad(set_to_none=True)
    recon, mu, logvar = model(x)
    flat = x.reshape(x.shape[0], -1)
    mse = nn.functional.mse_loss(recon.reshape(flat.shape), flat, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    ((mse + kl) / x.shape[0]).backward()
    opt.step()


def time_steps(step, model, x, warmup, steps, rounds):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(warmup):
        step(model, opt, x)
    per_round = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(steps):
            step(model, opt, x)
        per_round.append(steps * x.shape[0] / (time.perf_counter() - t0))
    return statistics.median(per_round), per_round


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", default=None, help="a folder of face images (default: uniform noise)")
    ap.add_argument("--models", default="ae,vae")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (AE)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x = faces(a.faces, a.batch) if a.faces else torch.rand(a.batch, 1, 128, 128)
    rows = []
    for name in a.models.split(","):
        model_cls, step = {"ae": (AE, ae_step), "vae": (VAE, vae_step)}[name]
        layouts = ["nchw", "channels_last"] + (["compiled"] if a.compile and name == "ae" else [])
        if name == "vae":
            layouts = ["nchw"]  # linear layers: the memory format changes nothing
        for layout in layouts:
            model = model_cls()
            xin = x
            if layout in ("channels_last", "compiled"):
                model = model.to(memory_format=torch.channels_last)
                xin = x.contiguous(memory_format=torch.channels_last)
            if layout == "compiled":
                model = torch.compile(model)
            med, runs = time_steps(step, model, xin, a.warmup, a.steps, a.rounds)
            rows.append({"model": name, "layout": layout, "images_per_s": round(med, 1),
                         "rounds": [round(r, 1) for r in runs]})
            print(f"{name:4} {layout:14} {med:8.0f} images/s  (rounds: {', '.join(f'{r:.0f}' for r in runs)})",
                  flush=True)
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "batch": a.batch,
            "inputs": a.faces or "uniform noise", "results": rows}
    if a.json:
        tmp = a.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(info, f, indent=1)
        os.replace(tmp, a.json)


if __name__ == "__main__":
    main()
