#!/usr/bin/env python3
"""Per-kernel GPU time of one training step from Nsight Compute's raw CSV (`train-cuda.sh profile`).

Usage: profile_summary.py profile.csv > profile.txt

The run profiles a warm step and a timed step (`--warm 1 --steps 1`). A step is taken as one whole
cycle of the optimizer: the kernels after the first `adamw_step` through the last one, so the adapter
refresh that follows an optimizer step (bf16 copies of the adapters, the spare-column copies) counts
in the step it serves, whatever the model's embedding or head launches look like.

Prints `step kernels N sum ms T`, then one line per kernel name, largest total first:
`<total us> us <launches>  <name>`: the format of the profiles under results/.
"""
import collections
import csv
import re
import sys

OPTIMIZER_KERNEL = "adamw_step"


def read_kernels(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    # ncu may print "==PROF==" lines first; the header is the row naming the columns, then a row of units.
    header_at = next((i for i, r in enumerate(rows) if "Kernel Name" in r), None)
    if header_at is None:
        sys.exit(f"{path}: no 'Kernel Name' column: not the raw CSV of `ncu --csv --page raw`")
    header = rows[header_at]
    name_col, time_col = header.index("Kernel Name"), header.index("gpu__time_duration.sum")
    units = rows[header_at + 1][time_col] if header_at + 1 < len(rows) else ""
    # Nsight Compute spells the unit out in some versions ("nsecond") and abbreviates it in others ("ns").
    scale = {"nsecond": 1.0, "ns": 1.0, "usecond": 1e3, "us": 1e3, "msecond": 1e6, "ms": 1e6, "": 1.0}.get(units)
    if scale is None:
        sys.exit(f"{path}: gpu__time_duration.sum in '{units}', expected ns, us or ms (or nsecond, usecond, msecond)")
    kernels = []
    for r in rows[header_at + 2:]:
        if len(r) <= max(name_col, time_col):
            continue
        # Demangled names carry their argument lists: the name before '(' groups launches of one kernel.
        name = re.sub(r"\(.*", "", r[name_col]).strip()[:70]
        kernels.append((name, float(r[time_col].replace(",", "")) * scale))
    return kernels


def one_step(kernels):
    ends = [i for i, (name, _) in enumerate(kernels) if name == OPTIMIZER_KERNEL]
    if len(ends) < 2:
        sys.exit(f"{len(ends)} '{OPTIMIZER_KERNEL}' launches profiled: one whole step needs a warm step and a timed one")
    return kernels[ends[-2] + 1:ends[-1] + 1]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    step = one_step(read_kernels(sys.argv[1]))
    totals = collections.defaultdict(lambda: [0, 0.0])
    for name, ns in step:
        totals[name][0] += 1
        totals[name][1] += ns
    print(f"step kernels {len(step)} sum ms {sum(ns for _, ns in step) / 1e6:.3f}")
    for name, (count, ns) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
        print(f"{ns / 1e3:10.1f} us {count:5d}  {name}")


if __name__ == "__main__":
    main()
