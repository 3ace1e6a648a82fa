#!/usr/bin/env python3
"""Writes sft-lengths.json: the example lengths of the realistic-length SFT workload that
bench/train-cuda (--sft) and peer/hf_peft_lora.py (sft) both train on, so both see the same batches.

Chat/instruction SFT sets are mostly a few hundred tokens with a long tail (Alpaca-style sets
average ~150-300 tokens, ShareGPT-style conversations run to the context limit). Lengths here are
log-normal, median 350 tokens, sigma 0.8 (mean ~480, ~1.5% reach the 2048 cap), clipped to
48..2048; the prompt (system + user turn, no loss) takes 15-60% of each example, the reply the rest.
11 batches of 16 examples: 3 warm-up + 8 timed. Seeded: rerunning writes the same file.
`sft_lengths.py 43 sft-lengths-long.json` writes a longer run of the same draws (its first 11
batches are sft-lengths.json's), for what our cuBLASLt planning costs over more steps."""
import json, math, random, sys

count = int(sys.argv[1]) if len(sys.argv) > 1 else 11
path = sys.argv[2] if len(sys.argv) > 2 else "sft-lengths.json"

rng = random.Random(17)
batches = []
for _ in range(count):
    batch = []
    for _ in range(16):
        length = int(min(2048, max(48, round(math.exp(math.log(350) + 0.8 * rng.gauss(0, 1))))))
        prompt = int(length * rng.uniform(0.15, 0.6))
        batch.append([length, prompt])
    batches.append(batch)
real = sum(l for b in batches for l, _ in b)
padded = sum(16 * max(l for l, _ in b) for b in batches)
doc = dict(distribution="log-normal, median 350, sigma 0.8, clipped to 48..2048; prompt 15-60% (no loss)",
           batch=16, warm=3, real_tokens=real, padded_tokens=padded, batches=batches)
with open(path, "w") as f:
    json.dump(doc, f, separators=(",", ":"))
    f.write("\n")
print(json.dumps({k: v for k, v in doc.items() if k != "batches"}))
