#!/usr/bin/env python3
"""Compare the training speed of two facegpu builds on this machine the way the README's speed
tables do: in one run, alternating, as per-pair ratios, with medians. This machine's speed moves
by up to 1.5-1.8x from hour to hour and about 10% from one run to the next, so a number from
another hour (or one run of each) decides nothing.

    cp target/release/facegpu /tmp/facegpu_before      # build A
    # ... change, cargo build --release ...             # build B
    python3 tools/ab_speed.py /tmp/facegpu_before target/release/facegpu --pairs 10

Each pair runs `facegpu bench train --models MODEL --steps STEPS --json` once with each build,
in the order A B, then B A in the next pair (so a drift of the machine's speed within a pair
favours neither), and the ratio B / A of their images/s is that pair's result. It prints
every pair, the medians and the median per-pair ratio (above 1: B is faster). Extra
arguments after `--` go to both runs (e.g. `-- --backend vulkan`). Needs only Python 3.

How fine it can see: the same build against itself (2026-11-30, llvmpipe, `ae`, 6 pairs, twice)
gave per-pair ratios 0.83-1.16 and medians 0.97 and 1.04, so a difference under about 5% needs
many more pairs than that.
"""
import argparse, json, os, statistics, subprocess, sys


def images_per_s(binary, model, steps, extra):
    cmd = [binary, "bench", "train", "--models", model, "--steps", str(steps), "--json", *extra]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise SystemExit(f"cannot run {binary}: {e.strerror}; give the path of a facegpu build (cargo build --release)")
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {r.returncode}):\n{r.stderr.strip()}")
    try:
        report = json.loads(r.stdout)
        row = next(x for x in report["rows"] if x["model"] == model)
    except (ValueError, KeyError, TypeError, StopIteration):
        raise SystemExit(f"{' '.join(cmd)}: no {model} row in its --json output; is {binary} a facegpu build?")
    return row["images_per_s"], report["adapter"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Arguments after -- go to both runs, e.g. -- --backend vulkan.")
    ap.add_argument("a", help="the facegpu binary to compare against (A)")
    ap.add_argument("b", help="the facegpu binary being tried (B)")
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--model", default="ae")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--json", metavar="OUT", help="also write the pairs and medians to OUT")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = ap.parse_args(argv[:cut])
    args.extra = argv[cut + 1:]  # after --: arguments for both runs
    if args.pairs < 1 or args.steps < 1:
        raise SystemExit("--pairs and --steps must be at least 1")
    # before the runs, not after minutes of them
    out_dir = os.path.dirname(os.path.abspath(args.json)) if args.json else None
    if out_dir and not os.access(out_dir, os.W_OK):
        raise SystemExit(f"--json {args.json}: cannot write in {out_dir}; give a path in a writable folder")

    pairs, adapters = [], set()
    print(f"{args.model}: images/s, A = {args.a}, B = {args.b}")
    print("| pair | A | B | B / A |\n|---:|---:|---:|---:|")
    for i in range(args.pairs):
        order = ["a", "b"] if i % 2 == 0 else ["b", "a"]
        got = {}
        for which in order:
            got[which], adapter = images_per_s(getattr(args, which), args.model, args.steps, args.extra)
            adapters.add(adapter)
        ratio = got["b"] / got["a"]
        pairs.append({"a": got["a"], "b": got["b"], "ratio": ratio})
        print(f"| {i + 1} | {got['a']:.0f} | {got['b']:.0f} | {ratio:.3f} |", flush=True)

    med = {k: statistics.median(p[k] for p in pairs) for k in ("a", "b", "ratio")}
    lo, hi = min(p["ratio"] for p in pairs), max(p["ratio"] for p in pairs)
    print(f"median A {med['a']:.0f}, median B {med['b']:.0f} images/s; "
          f"B / A per pair {lo:.3f}-{hi:.3f}, median {med['ratio']:.3f}")
    print("adapter: " + "; ".join(sorted(adapters)))
    if len(adapters) > 1:
        print("warning: the two builds ran on different adapters; the ratio compares those too", file=sys.stderr)
    if args.json:
        try:
            with open(args.json + ".tmp", "w") as f:
                json.dump({"model": args.model, "steps": args.steps, "adapters": sorted(adapters),
                           "pairs": pairs, "median": med}, f, indent=2)
            os.replace(args.json + ".tmp", args.json)
        except OSError as e:
            raise SystemExit(f"--json {args.json}: {e.strerror}; the results are printed above")


if __name__ == "__main__":
    main()
