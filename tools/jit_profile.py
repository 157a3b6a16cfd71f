#!/usr/bin/env python3
"""Where llvmpipe's JIT-compiled kernels spend their time, by machine instruction: run a facegpu
command under `perf record` and `gdb`, dump the code llvmpipe generated just before the process
exits, and attribute the samples to its functions (one per kernel variant, unnamed) and to
kinds of instructions.

    python3 tools/jit_profile.py -- target/release/facegpu bench kernels --filter "conv2d forward ae.enc1"
    python3 tools/jit_profile.py --top 8 -- target/release/facegpu bench train --models ae --steps 100

Why: on the software adapter nearly all of a step's time is in code LLVM generated at run time,
which perf shows only as "[JIT]" addresses, and whose cost depends on how llvmpipe translated
each WGSL construct (a texel load becomes a per-lane gather, a storage-buffer store a per-lane
loop, accumulators that do not fit the 32 vector registers stack spills). This shows how much.

Per function it prints its size, its share of the samples in JIT code, and how its samples split into:
  arith    vector multiplies and adds (the work the FLOP counts count)
  spill    vector moves to and from the stack (values that did not fit in registers)
  gather   per-lane lane extracts, inserts and sign extends (texel loads, per-lane stores)
  other    everything else (address arithmetic, masks, shuffles, branches, scalar stores)
Samples land on the instruction after a stalled one about as often as on it (skid), so read
the split as a rough picture, not per instruction. The command runs slower under the profiler
(gdb stops it at every munmap; a kernel `bench kernels` timed at 4.7 ms read 9.0 under it), so
quote its own timings from a run without the profiler.

Needs Linux with perf, gdb and objdump (binutils) on PATH; runs as a user allowed to perf and
ptrace its own processes (root, or kernel.perf_event_paranoid <= 1). Output files go to a temp
folder (--keep prints it). Needs only Python 3.
"""
import argparse, collections, os, re, shutil, subprocess, sys, tempfile

GDB_DUMP = r'''
import gdb, os
out = os.environ["JIT_PROFILE_OUT"]
gdb.execute("set pagination off")
gdb.execute("set print thread-events off")
gdb.execute("set print inferior-events off")
# llvmpipe frees a kernel's code when its pipeline goes (and all of it before exit): dump every
# anonymous executable mapping whenever one is about to be unmapped or made writable, and at exit
gdb.execute("catch syscall munmap mprotect exit_group", to_string=True)
gdb.execute("run", to_string=True)
pid = gdb.selected_inferior().pid
dumps = []  # (start, end, file), in the order taken

def exec_regions():
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            # anonymous executable mappings: the JIT's code ([vdso] and files have a name)
            if len(parts) == 5 and "x" in parts[1]:
                lo, hi = parts[0].split("-")
                yield int(lo, 16), int(hi, 16)

def dump(lo, hi):
    path = os.path.join(out, f"{len(dumps)}.bin")
    gdb.execute(f"dump binary memory {path} {lo:#x} {hi:#x}")
    dumps.append((lo, hi, path))

while gdb.selected_inferior().pid:
    try:
        nr = int(gdb.parse_and_eval("$orig_rax"))
        entry = int(gdb.parse_and_eval("$rax")) == -38  # -ENOSYS: stopped on the way in
    except gdb.error:
        break
    if entry and nr == 231:  # exit_group(status)
        for lo, hi in exec_regions():
            dump(lo, hi)
        with open(os.path.join(out, "status"), "w") as f:
            f.write(str(int(gdb.parse_and_eval("$rdi"))))
        break
    if entry and nr in (10, 11):  # mprotect(addr, len, prot), munmap(addr, len)
        a = int(gdb.parse_and_eval("$rdi")) & (2**64 - 1)
        n = int(gdb.parse_and_eval("$rsi"))
        for lo, hi in exec_regions():
            if lo < a + n and a < hi:
                dump(lo, hi)
    gdb.execute("continue", to_string=True)
with open(os.path.join(out, "pid"), "w") as f:
    f.write(str(pid))
with open(os.path.join(out, "regions"), "w") as f:
    for lo, hi, path in dumps:
        f.write(f"{lo:x} {hi:x} {path}\n")
gdb.execute("kill", to_string=True)
'''

INSN = re.compile(r"\s*([0-9a-f]+):\t[0-9a-f ]+\t(.*)")
GATHER_OPS = {"vpextrd", "vpinsrd", "vinserti128", "vextracti128", "vinsertf128", "vextractf128",
              "vmovd", "movslq", "vpextrq", "vpinsrq", "vextractps", "vinsertps"}


def kind(text):
    op = text.split()[0]
    if op.startswith("v") and "(%rsp" in text and ("mov" in op):
        return "spill"
    if op.startswith("v") and re.match(r"v(fn?m(add|sub)\w*|mul|add|sub)(ps|ss)$", op):
        return "arith"
    if op in GATHER_OPS:
        return "gather"
    return "other"


def need(tool):
    if shutil.which(tool) is None:
        raise SystemExit(f"jit_profile: `{tool}` is not on PATH; install it (Debian/Ubuntu: apt-get install -y "
                         f"{ {'perf': 'linux-perf', 'gdb': 'gdb', 'objdump': 'binutils'}[tool] })")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--freq", type=int, default=2000, help="samples per second (default 2000)")
    ap.add_argument("--top", type=int, default=12, help="functions to list (default 12)")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (perf.data, code dumps)")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to profile")
    a = ap.parse_args()
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        ap.error("give the command to profile after --, e.g. -- target/release/facegpu bench train --models ae")
    for t in ("perf", "gdb", "objdump"):
        need(t)
    if shutil.which(cmd[0]) is None:
        raise SystemExit(f"jit_profile: cannot run {cmd[0]!r}: no such program; give a facegpu build's path "
                         f"(cargo build --release: target/release/facegpu)")
    out = tempfile.mkdtemp(prefix="jit_profile.")
    try:
        profile(a, cmd, out)
    finally:
        if a.keep:
            print(f"\nkept: {out}")
        else:
            shutil.rmtree(out, ignore_errors=True)


def profile(a, cmd, out):
    script = os.path.join(out, "dump.py")
    with open(script, "w") as f:
        f.write(GDB_DUMP)
    env = dict(os.environ, JIT_PROFILE_OUT=out)
    data = os.path.join(out, "perf.data")
    # the command's own output passes through (gdb's is dropped)
    subprocess.run(["perf", "record", "-q", "-F", str(a.freq), "-o", data, "--",
                    "gdb", "-q", "-batch", "-iex", "set logging file /dev/null", "-iex", "set logging redirect on",
                    "-iex", "set logging enabled on", "-x", script, "--args", *cmd], env=env)
    if not os.path.exists(os.path.join(out, "regions")):
        raise SystemExit("jit_profile: the command did not reach its exit under gdb; check that it runs on "
                         "its own, and that perf and ptrace are allowed (kernel.perf_event_paranoid, "
                         "kernel.yama.ptrace_scope)")
    path = os.path.join(out, "status")
    status = open(path).read().strip() if os.path.exists(path) else "unknown (it did not exit by itself)"
    if status != "0":
        raise SystemExit(f"jit_profile: the command exited with status {status} (its messages are above); "
                         f"profile a command that succeeds")
    pid = open(os.path.join(out, "pid")).read().strip()
    dumps = [(int(lo, 16), int(hi, 16), path)
             for lo, hi, path in (l.split() for l in open(os.path.join(out, "regions")))]
    regions = [(lo, hi) for lo, hi, _ in dumps]

    # every sample of the profiled process: (address, where)
    s = subprocess.run(["perf", "script", "-i", data, "--pid", pid, "-F", "ip,dso"],
                       capture_output=True, text=True).stdout
    ips = collections.Counter()
    where = collections.Counter()
    for line in s.splitlines():
        parts = line.split(None, 1)
        if len(parts) < 2:
            continue
        ip = int(parts[0], 16)
        if any(lo <= ip < hi for lo, hi in regions):
            ips[ip] += 1
            where["JIT code (the kernels)"] += 1
        else:
            name = os.path.basename(parts[1].strip("()")) or "?"
            if name.startswith("perf-") and name.endswith(".map"):
                name = "JIT code freed before it could be dumped (not in the table)"
            where[name] += 1
    total = sum(where.values())
    if total == 0:
        raise SystemExit("jit_profile: perf recorded no samples of the command")

    # the JIT's instructions, cut into functions at each ret. An address that several dumps hold
    # (memory freed and mapped again) is read once, from the latest dump
    funcs = []  # [start, end, instructions, samples, Counter(kind -> samples)]
    seen = set()
    for lo, hi, path in reversed(dumps):
        asm = subprocess.run(["objdump", "-D", "-b", "binary", "-mi386:x86-64", f"--adjust-vma={lo:#x}", path],
                             capture_output=True, text=True).stdout
        cur = None
        for line in asm.splitlines():
            m = INSN.match(line)
            if not m:
                continue
            addr, text = int(m.group(1), 16), m.group(2).strip()
            if addr in seen:
                continue
            seen.add(addr)
            if cur is None:
                cur = [addr, addr, 0, 0, collections.Counter()]
            k = kind(text)
            n = ips.get(addr, 0)
            cur[1] = addr
            cur[2] += 1
            cur[3] += n
            cur[4][k] += n
            if text.startswith("ret"):
                funcs.append(cur)
                cur = None
        if cur is not None:
            funcs.append(cur)

    print(f"{' '.join(cmd)}\n{total} samples at {a.freq}/s")
    for w, n in where.most_common(6):
        print(f"  {100 * n / total:5.1f}%  {w}")
    kinds = ["arith", "spill", "gather", "other"]
    jit = sum(f[3] for f in funcs) or 1
    tot = collections.Counter()
    for f in funcs:
        tot.update(f[4])
    print("JIT samples by kind: " + ", ".join(f"{k} {100 * tot[k] / jit:.0f}%" for k in kinds))
    print(f"\n| function | code KB | instructions | share of JIT samples | {' | '.join(kinds)} |")
    print("|---|---:|---:|---:|" + "---:|" * len(kinds))
    for f in sorted(funcs, key=lambda f: -f[3])[: a.top]:
        if f[3] == 0:
            break
        split = " | ".join(f"{100 * f[4][k] / f[3]:.0f}%" for k in kinds)
        print(f"| {f[0]:#x} | {(f[1] - f[0]) / 1024:.0f} | {f[2]} | {100 * f[3] / jit:.1f}% | {split} |")


if __name__ == "__main__":
    main()
