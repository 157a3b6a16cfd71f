#!/usr/bin/env python3
"""Train the seed AE in PyTorch exactly as `facegpu train --model ae` does, for the comparison in
the README: same architecture, PyTorch default init, Adam(lr=1e-3), MSE loss, batch 128, the same
train/test file lists (facegpu writes them to OUT/split.json), drop_last=True, `--epochs` epochs.
Prints the test set's mean per-image PSNR (data_range 1) and writes it as JSON.

    python3 tools/torch_train_ae.py --split runs/ae/split.json --epochs 20 --out torch_ae.json

Needs torch, numpy and pillow (not dependencies of facegpu itself).
"""
import argparse, json, math, time

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", required=True, help="split.json written by facegpu train (train/test file lists)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    split = json.load(open(a.split))
    train, test = load(split["train"]), load(split["test"])
    model = SeedAE()
    assert sum(p.numel() for p in model.parameters()) == 741
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    loss_fn = nn.MSELoss()
    g = torch.Generator().manual_seed(a.seed)
    t0 = time.time()
    for epoch in range(a.epochs):
        perm = torch.randperm(len(train), generator=g)
        total, steps = 0.0, 0
        for s in range(len(train) // a.batch):
            x = train[perm[s * a.batch:(s + 1) * a.batch]]
            opt.zero_grad()
            loss = loss_fn(model(x), x)
            loss.backward()
            opt.step()
            total += loss.item(); steps += 1
        print(f"epoch {epoch + 1}: train loss {total / steps:.6f}")
    secs = time.time() - t0
    with torch.no_grad():
        mse = ((model(test) - test) ** 2).mean(dim=(1, 2, 3)).double()
    psnr = (10 * torch.log10(1 / mse)).mean().item()
    res = {"epochs": a.epochs, "test_images": len(test), "test_psnr_mean": psnr,
           "test_mse_mean": mse.mean().item(), "train_seconds": secs,
           "images_per_s": a.epochs * (len(train) // a.batch) * a.batch / secs}
    print(json.dumps(res, indent=1))
    if a.out:
        json.dump(res, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
