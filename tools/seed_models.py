#!/usr/bin/env python3
"""The seed project's two PyTorch models, exactly, and facegpu's two stronger variants
(`ae-wide`, `conv-vae`), with the parameter names facegpu uses.

facegpu checkpoints (.safetensors) store each parameter under the name and in the layout that
`state_dict()` of these modules has, so

    model = AE()
    model.load_state_dict(safetensors.torch.load_file("model.safetensors"), strict=True)

works on a facegpu checkpoint. The same table lives in src/model/checkpoint.rs (AE_PARAMS,
VAE_PARAMS, pytorch_names); tests/fixtures/checkpoint/pytorch_names.json is this script's
output and tests/checkpoint.rs checks the Rust table against it.

AE (741 parameters), input [N, 1, 128, 128] in [0, 1]:
    encoder.0.weight  [8, 1, 3, 3]   Conv2d(1, 8, 3, stride=2, padding=1)      -> [N, 8, 64, 64]
    encoder.0.bias    [8]            ReLU (encoder.1, no parameters)
    encoder.2.weight  [4, 8, 3, 3]   Conv2d(8, 4, 3, stride=2, padding=1)      -> [N, 4, 32, 32]
    encoder.2.bias    [4]            ReLU (encoder.3)
    decoder.0.weight  [4, 8, 3, 3]   ConvTranspose2d(4, 8, 3, 2, 1, output_padding=1) -> [N, 8, 64, 64]
    decoder.0.bias    [8]            ReLU (decoder.1)    (ConvTranspose2d weight is [in, out, kh, kw])
    decoder.2.weight  [8, 1, 3, 3]   ConvTranspose2d(8, 1, 3, 2, 1, output_padding=1) -> [N, 1, 128, 128]
    decoder.2.bias    [1]            Sigmoid (decoder.3)

VAE (17,102,224 parameters), input flattened to [N, 16384]:
    fc1.weight [512, 16384], fc1.bias [512]          h = relu(fc1(x))
    fc_mu.weight [200, 512], fc_mu.bias [200]        mu = fc_mu(h)
    fc_logvar.weight [200, 512], fc_logvar.bias [200] logvar = fc_logvar(h)
    fc3.weight [512, 200], fc3.bias [512]            z = mu + eps * exp(0.5 * logvar); h3 = relu(fc3(z))
    fc4.weight [16384, 512], fc4.bias [16384]        x_hat = sigmoid(fc4(h3))
(Linear weight is [out, in].)

Usage:
    python tools/seed_models.py                      # print names, shapes and counts
    python tools/seed_models.py --names OUT.json     # also write them as JSON
"""

import argparse
import json
import sys

import torch
from torch import nn

IMAGE = 128
PIXELS = IMAGE * IMAGE


class AE(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 4, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(4, 8, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(8, 1, 3, stride=2, padding=1, output_padding=1),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return self.decoder(self.encoder(x))


class VAE(nn.Module):
    def __init__(self, latent=200, hidden=512):
        super().__init__()
        self.fc1 = nn.Linear(PIXELS, hidden)
        self.fc_mu = nn.Linear(hidden, latent)
        self.fc_logvar = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, PIXELS)

    def encode(self, x):
        h = torch.relu(self.fc1(x.reshape(-1, PIXELS)))
        return self.fc_mu(h), self.fc_logvar(h)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def decode(self, z):
        return torch.sigmoid(self.fc4(torch.relu(self.fc3(z))))

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


class AEWide(nn.Module):
    """facegpu's `ae-wide` (src/model/registry.rs): the seed AE's 4x32x32 latent, wider and one
    layer deeper on each side, with a stride-1 conv at full resolution first and last."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=1, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 4, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(4, 32, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 1, 3, stride=1, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return self.decoder(self.encoder(x))


class ConvVAE(nn.Module):
    """facegpu's `conv-vae`: the seed VAE's 200-value latent behind convs that shrink 128 -> 16
    (16x16x16 = 4096 values, flattened in NCHW order), and the mirror image after it."""

    def __init__(self, latent=200):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 16, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.fc_mu = nn.Linear(16 * 16 * 16, latent)
        self.fc_logvar = nn.Linear(16 * 16 * 16, latent)
        self.fc_dec = nn.Linear(latent, 16 * 16 * 16)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(16, 32, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1),
            nn.Sigmoid(),
        )

    def encode(self, x):
        h = self.encoder(x.reshape(-1, 1, IMAGE, IMAGE)).flatten(1)
        return self.fc_mu(h), self.fc_logvar(h)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def decode(self, z):
        h = torch.relu(self.fc_dec(z)).reshape(-1, 16, 16, 16)
        return self.decoder(h)

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


MODELS = {"ae": AE, "vae": VAE, "ae-wide": AEWide, "conv-vae": ConvVAE}
PARAM_COUNTS = {"ae": 741, "vae": 17_102_224, "ae-wide": 11_909, "conv-vae": 2_480_929}


def names(model):
    """[(name, shape)] in state_dict order."""
    return [(k, list(v.shape)) for k, v in MODELS[model]().state_dict().items()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--names", help="write {model: {params: [[name, shape]], count}} as JSON here")
    args = ap.parse_args()
    out = {"torch_version": torch.__version__}
    for m in MODELS:
        ns = names(m)
        count = sum(int(torch.tensor(s).prod()) for _, s in ns)
        if count != PARAM_COUNTS[m]:
            sys.exit(f"{m}: {count} parameters, the seed model has {PARAM_COUNTS[m]}")
        print(f"{m}: {count} parameters")
        for n, s in ns:
            print(f"  {n:20s} {s}")
        out[m] = {"params": [[n, s] for n, s in ns], "count": count}
    if args.names:
        with open(args.names, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
        print(f"wrote {args.names}")


if __name__ == "__main__":
    main()
