#!/usr/bin/env python3
"""Groups a step's per-kernel times (profile_summary.py's output) into the parts of a training step.

Usage: profile_parts.py profile.txt [...]

Products are told apart by cuBLASLt's kernel names (`nvjet_sm90_<kind>_<M>x<N>_...`): tiles at least 128 wide on both
sides are the frozen base model's (the fused LoRA columns ride on them), narrower ones and the split-K sums are the other
LoRA products. Prints, per file, one line per part, largest first: `<part> <ms> ms <launches> launches <share>%`.
"""
import collections
import re
import sys

PARTS = [
    ("attention", lambda n: n.startswith("attention")),
    ("swiglu", lambda n: n.startswith("swiglu")),
    ("norms+rope", lambda n: n.startswith(("rmsnorm", "rope"))),
    ("loss", lambda n: n.startswith("ce_")),
    ("small (LoRA) products", lambda n: "splitKreduce" in n),
]


def part(name):
    tile = re.search(r"nvjet_sm90_\w+?_(\d+)x(\d+)_", name)
    if tile:
        return "large products" if min(int(tile.group(1)), int(tile.group(2))) >= 128 else "small (LoRA) products"
    return next((p for p, matches in PARTS if matches(name)), "other")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for path in sys.argv[1:]:
        totals = collections.defaultdict(lambda: [0, 0.0])
        for line in open(path):
            m = re.match(r"\s*([\d.]+) us\s+(\d+)\s+(.*)", line)
            if m:
                p = part(m.group(3).strip())
                totals[p][0] += int(m.group(2))
                totals[p][1] += float(m.group(1))
        if not totals:
            sys.exit(f"{path}: no '<us> us <launches> <name>' lines: not profile_summary.py's output")
        whole = sum(us for _, us in totals.values())
        print(f"== {path}: {whole / 1000:.2f} ms")
        for p, (n, us) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
            print(f"{p:24s} {us / 1000:7.2f} ms {n:5d} launches {100 * us / whole:5.1f}%")


if __name__ == "__main__":
    main()
