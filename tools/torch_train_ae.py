#!/usr/bin/env python3
"""Train the seed AE in PyTorch exactly as `facegpu train --model ae` does, for the comparison in
the README: same architecture, Adam(lr=1e-3, betas 0.9/0.999, eps 1e-8), MSE (mean over every
pixel of the batch), batch 128, the same train/test file lists (facegpu writes them to
OUT/split.json), last partial batch dropped, `--epochs` epochs. Prints the test set's mean
per-image PSNR (data_range 1) and writes it as JSON.

    facegpu train --dataset DIR --epochs 10 --out runs/ae
    python3 tools/torch_train_ae.py --split runs/ae/split.json --init runs/ae/init.safetensors \\
        --epochs 10 --out torch_ae.json

--init     start from these weights (the `init.safetensors` that `facegpu train` writes before
           its first step) instead of PyTorch's own random initialization.
--order    facegpu (default): each epoch visits the training faces in facegpu's order, which
           is reimplemented here bit for bit (src/data/split.rs `epoch_order`: SplitMix64
           stream of (seed ^ "epochshu", epoch), Fisher-Yates with Lemire's unbiased draw);
           torch: torch.randperm from a generator seeded with --seed.
--seed     the run's seed (facegpu's --seed, 0 by default): the facegpu order and, without
           --init, PyTorch's initialization.

With --init and --order facegpu both frameworks start from the same weights and see the same
batches in the same order; what remains different is float32 rounding (summation orders).

Needs torch, numpy and pillow (not dependencies of facegpu itself); reads safetensors itself.
"""
import argparse, json, struct, time

import numpy as np
import torch
import torch.nn as nn
from PIL import Image


class SeedAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(8, 4, 3, stride=2, padding=1), nn.ReLU())
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(4, 8, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(8, 1, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


def load(paths):
    return torch.from_numpy(np.stack([np.asarray(Image.open(p).convert("L"), dtype=np.float32) / 255.0
                                      for p in paths])[:, None])


def read_safetensors(path):
    """{name: float32 tensor} of a safetensors file (8-byte little-endian header length, JSON
    header, raw data), without the safetensors package."""
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    base = 8 + hlen
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t["dtype"] != "F32":
            raise SystemExit(f"{path}: tensor {name} is {t['dtype']}, expected F32")
        a, b = t["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(raw[base + a:base + b], dtype="<f4").copy()
                                     .reshape(t["shape"]))
    return out


M64 = (1 << 64) - 1


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class SplitMix:
    """src/data/hash.rs SplitMix, bit for bit."""

    def __init__(self, seed, stream):
        self.s = mix64(seed ^ mix64((stream + 0x632BE59BD9B4E019) & M64))

    def next_u64(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & M64
        return mix64(self.s)

    def below(self, n):
        if n <= 1:
            return 0
        thresh = ((1 << 64) - n) % n  # n.wrapping_neg() % n
        while True:
            m = self.next_u64() * n
            if (m & M64) >= thresh:
                return m >> 64


def facegpu_epoch_order(n, seed, epoch):
    """src/data/split.rs epoch_order(n, seed, epoch): positions -> index into the train list."""
    rng = SplitMix((seed ^ 0x6570_6f63_6873_6875) & M64, epoch)  # "epochshu"
    v = list(range(n))
    for i in range(n - 1, 0, -1):
        j = rng.below(i + 1)
        v[i], v[j] = v[j], v[i]
    return v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", required=True, help="split.json written by facegpu train (train/test file lists)")
    ap.add_argument("--init", default=None, help="init.safetensors written by facegpu train (default: PyTorch's init)")
    ap.add_argument("--order", choices=["facegpu", "torch"], default="facegpu")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--print-order", type=int, default=None, metavar="N",
                    help="print facegpu's epoch-0 order of N faces for --seed as JSON and exit")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if a.print_order is not None:
        print(json.dumps(facegpu_epoch_order(a.print_order, a.seed, 0)))
        return
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    split = json.load(open(a.split))
    train, test = load(split["train"]), load(split["test"])
    model = SeedAE()
    if a.init:
        model.load_state_dict(read_safetensors(a.init), strict=True)
    assert sum(p.numel() for p in model.parameters()) == 741
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = nn.MSELoss()  # reduction="mean": over batch and pixels, as facegpu's AE loss
    g = torch.Generator().manual_seed(a.seed)
    t0 = time.time()
    losses = []
    for epoch in range(a.epochs):
        if a.order == "facegpu":
            perm = torch.tensor(facegpu_epoch_order(len(train), a.seed, epoch))
        else:
            perm = torch.randperm(len(train), generator=g)
        total, steps = 0.0, 0
        for s in range(len(train) // a.batch):  # drop_last
            x = train[perm[s * a.batch:(s + 1) * a.batch]]
            opt.zero_grad()
            loss = loss_fn(model(x), x)
            loss.backward()
            opt.step()
            total += loss.item(); steps += 1
        losses.append(total / steps)
        print(f"epoch {epoch + 1}: train loss {total / steps:.8f}", flush=True)
    secs = time.time() - t0
    with torch.no_grad():
        mse = ((model(test) - test) ** 2).mean(dim=(1, 2, 3)).double()
    psnr = (10 * torch.log10(1 / mse)).mean().item()
    res = {"epochs": a.epochs, "init": a.init or "pytorch", "order": a.order, "seed": a.seed,
           "torch_version": torch.__version__, "test_images": len(test), "test_psnr_mean": psnr,
           "test_mse_mean": mse.mean().item(), "train_loss": losses, "train_seconds": secs,
           "images_per_s": a.epochs * (len(train) // a.batch) * a.batch / secs if a.epochs else 0.0}
    print(json.dumps(res, indent=1))
    if a.out:
        json.dump(res, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
