#!/usr/bin/env python3
"""Load a facegpu checkpoint into the seed's PyTorch model and run it on a fixed input.

This is the proof that facegpu's names and layouts are PyTorch's: the weights go through
`load_state_dict(strict=True)` (any missing, extra or misshapen tensor is an error) and the
outputs are saved for tests/checkpoint.rs to compare with its own forward pass.

    python tools/torch_load_check.py CKPT.safetensors [--model ae|vae|ae-wide|conv-vae]
        [--input INPUT.safetensors] [--out OUT.json]

--model   defaults to the checkpoint's own metadata ("model").
--input   a safetensors file with a tensor "input" of shape [N, 1, 128, 128]; default: two
          images from a fixed formula (printed in the JSON as "input_source").
--out     JSON with: model, torch_version, param names/shapes, input shape, "latent"
          (AEs: encoder output; VAEs: mu), "output" (AEs: reconstruction; VAEs: decode(mu), no
          sampling), all computed in float64 from the f32 weights, flattened row-major; plus the
          largest difference of a float32 run from the float64 one.
Without --out the summary is printed only.
"""

import argparse
import json
import math
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seed_models import MODELS, IMAGE  # noqa: E402


def formula_input(n=2):
    """Smooth values in [0.05, 0.95]; the same formula is written in the JSON for reference."""
    x = torch.zeros(n, 1, IMAGE, IMAGE, dtype=torch.float32)
    for b in range(n):
        for i in range(IMAGE):
            for j in range(IMAGE):
                x[b, 0, i, j] = 0.5 + 0.45 * math.sin(0.05 * i * (b + 1) + 0.08 * j) * math.cos(
                    0.03 * (i - j) + b
                )
    return x


def run(model, x):
    """(latent, output) of the deterministic forward pass."""
    with torch.no_grad():
        if not hasattr(model, "encode"):  # the AEs
            z = model.encoder(x)
            return z, model.decoder(z)
        mu, _logvar = model.encode(x)  # the VAEs: decode the mean, as `facegpu eval` does
        return mu, model.decode(mu).reshape(x.shape)


def main():
    ap = argparse.ArgumentParser(description="load a facegpu checkpoint into its PyTorch model")
    ap.add_argument("checkpoint")
    ap.add_argument("--model", choices=sorted(MODELS))
    ap.add_argument("--input")
    ap.add_argument("--out")
    ap.add_argument("--digits", type=int, default=10, help="significant digits kept in --out")
    args = ap.parse_args()

    with safe_open(args.checkpoint, framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != "facegpu-checkpoint":
        print(f"warning: {args.checkpoint} has no facegpu metadata; loading it anyway", file=sys.stderr)
    name = args.model or meta.get("model")
    if name not in MODELS:
        sys.exit(f"cannot tell the model of {args.checkpoint}; pass --model (one of {', '.join(MODELS)})")

    state = load_file(args.checkpoint)
    model = MODELS[name]()
    model.load_state_dict(state, strict=True)  # raises on any missing/extra/misshapen tensor
    model.eval()
    print(f"{args.checkpoint}: load_state_dict(strict=True) into {name} OK "
          f"({sum(v.numel() for v in state.values())} parameters)")

    if args.input:
        x = load_file(args.input)["input"].float()
        source = f"file {Path(args.input).name}"
    else:
        x = formula_input()
        source = "formula 0.5 + 0.45*sin(0.05*i*(n+1) + 0.08*j)*cos(0.03*(i-j) + n)"

    z32, y32 = run(model, x)
    model64 = model.double()
    z64, y64 = run(model64, x.double())
    diff = float((y32.double() - y64).abs().max())
    print(f"input {list(x.shape)} -> latent {list(z64.shape)}, output {list(y64.shape)}; "
          f"output range [{float(y64.min()):.6f}, {float(y64.max()):.6f}], "
          f"max |f32 - f64| = {diff:.3e}")

    if args.out:
        out = {
            "model": name,
            "checkpoint": Path(args.checkpoint).name,
            "torch_version": torch.__version__,
            "load_state_dict": "strict=True ok",
            "params": [[k, list(v.shape)] for k, v in model.state_dict().items()],
            "input_source": source,
            "input_shape": list(x.shape),
            "latent_shape": list(z64.shape),
            "output_shape": list(y64.shape),
            "dtype": "float64 forward from the f32 weights and f32 input",
            "max_abs_diff_f32_vs_f64": diff,
            # --digits significant digits (10; 8 for the larger models' fixtures): far below the
            # tests' tolerances, keeps the files small.
            "latent": [float(f"{v:.{args.digits}g}") for v in z64.flatten().tolist()],
            "output": [float(f"{v:.{args.digits}g}") for v in y64.flatten().tolist()],
        }
        with open(args.out, "w") as f:
            json.dump(out, f, separators=(",", ":"))
            f.write("\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
