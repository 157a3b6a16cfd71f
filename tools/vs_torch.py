#!/usr/bin/env python3
"""facegpu against PyTorch on this machine in the same minutes: alternating run by run, as
per-pair ratios, with medians. This machine's speed moves by up to about 2x from hour to hour
for both (PyTorch's best seed-AE step measured 2,000-2,700 images/s in one hour and 1,000-1,340
in another), so only numbers taken side by side compare.

    python3 tools/vs_torch.py target/release/facegpu --faces ../shared/faces/lfw-gray-128 --pairs 8

Each pair runs `facegpu bench train --models ae --steps STEPS --json` and
`tools/torch_speed.py --models ae --compile --json` (PyTorch's NCHW, channels_last and
torch.compile layouts), in the order facegpu then PyTorch, then PyTorch then facegpu in the
next pair, and divides facegpu's images/s by each layout's. It prints every pair and the
medians; "best" is the faster of PyTorch's channels_last and compiled in that pair. Needs torch
and pillow (torch_speed.py's own needs); not a dependency of facegpu.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile

from ab_speed import images_per_s

LAYOUTS = ("nchw", "channels_last", "compiled")
HERE = os.path.dirname(os.path.abspath(__file__))


def torch_images_per_s(faces, steps):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "torch.json")
        cmd = [sys.executable, os.path.join(HERE, "torch_speed.py"), "--models", "ae", "--compile",
               "--steps", str(steps), "--json", out]
        if faces:
            cmd += ["--faces", faces]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            hint = "\n(it needs torch and pillow: pip install torch pillow)" if "ModuleNotFoundError" in r.stderr else ""
            raise SystemExit(f"{' '.join(cmd)} failed (exit {r.returncode}):\n{r.stderr.strip()[-2000:]}{hint}")
        with open(out) as f:
            info = json.load(f)
    got = {row["layout"]: row["images_per_s"] for row in info["results"] if row["model"] == "ae"}
    missing = [k for k in LAYOUTS if k not in got]
    if missing:
        raise SystemExit(f"torch_speed.py reported no {', '.join(missing)} row for the AE")
    return got, info["torch"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("facegpu", help="the facegpu binary (cargo build --release: target/release/facegpu)")
    ap.add_argument("--faces", default=None, help="a folder of face images for PyTorch's batch (default: uniform noise)")
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--json", metavar="OUT", help="also write the pairs and medians to OUT")
    args = ap.parse_args()
    if args.pairs < 1 or args.steps < 1:
        raise SystemExit("--pairs and --steps must be at least 1")
    if args.faces and not os.path.isdir(args.faces):
        raise SystemExit(f"--faces {args.faces}: not a folder; pass a folder of face images or drop --faces")
    out_dir = os.path.dirname(os.path.abspath(args.json)) if args.json else None
    if out_dir and not os.access(out_dir, os.W_OK):
        raise SystemExit(f"--json {args.json}: cannot write in {out_dir}; give a path in a writable folder")

    pairs, adapters, torch_version = [], set(), None
    print("seed AE, images/s at batch 128; ratio = facegpu / PyTorch")
    print("| pair | facegpu | PyTorch NCHW | channels_last | compiled | facegpu / best |")
    print("|---:|---:|---:|---:|---:|---:|")
    for i in range(args.pairs):
        got = {}
        for which in (["facegpu", "torch"] if i % 2 == 0 else ["torch", "facegpu"]):
            if which == "facegpu":
                got["facegpu"], adapter = images_per_s(args.facegpu, "ae", args.steps, [])
                adapters.add(adapter)
            else:
                t, torch_version = torch_images_per_s(args.faces, args.steps)
                got.update(t)
        got["best"] = max(got["channels_last"], got["compiled"])
        pairs.append(got)
        print(f"| {i + 1} | {got['facegpu']:.0f} | {got['nchw']:.0f} | {got['channels_last']:.0f} | "
              f"{got['compiled']:.0f} | {got['facegpu'] / got['best']:.3f} |", flush=True)

    med = {k: statistics.median(p[k] for p in pairs) for k in ("facegpu", *LAYOUTS, "best")}
    ratios = {k: statistics.median(p["facegpu"] / p[k] for p in pairs) for k in (*LAYOUTS, "best")}
    print(f"medians: facegpu {med['facegpu']:.0f}, PyTorch NCHW {med['nchw']:.0f}, channels_last "
          f"{med['channels_last']:.0f}, compiled {med['compiled']:.0f} images/s")
    print("facegpu / PyTorch, median per pair: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    print("adapter: " + "; ".join(sorted(adapters)) + f"; torch {torch_version}")
    if args.json:
        try:
            with open(args.json + ".tmp", "w") as f:
                json.dump({"steps": args.steps, "adapters": sorted(adapters), "torch": torch_version,
                           "faces": args.faces, "pairs": pairs, "median": med, "median_ratio": ratios}, f, indent=2)
            os.replace(args.json + ".tmp", args.json)
        except OSError as e:
            raise SystemExit(f"--json {args.json}: {e.strerror}; the results are printed above")


if __name__ == "__main__":
    main()
