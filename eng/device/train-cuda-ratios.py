#!/usr/bin/env python3
"""Joins bench/train-cuda's lines with the peer's (hf_peft_lora.py) by shape, batch, sequence
length and checkpointing, and prints one JSON line per shape with the ratios: tokens/s (ours over
theirs, higher is better), peak memory (ours over theirs, lower is better) and both MFUs by the
same FLOP count (bench/train-cuda/Flops.cs)."""
import json
import sys

ours_path, peer_path = sys.argv[1], sys.argv[2]


def lines(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip().startswith("{")]


peer = {(p["shape"], p["batch"], p["seq"], p["grad_ckpt"]): p for p in lines(peer_path) if "tokens_per_s" in p}
for o in lines(ours_path):
    if o.get("impl") != "finetune" or "tokens_per_s" not in o or o.get("rank", 16) != 16:
        continue
    p = peer.get((o["shape"], o["batch"], o["seq"], o["grad_ckpt"]))
    if p is None:
        continue
    flops = o["model_tflops_per_step"] * 1e12
    tokens = o["batch"] * o["seq"]
    print(json.dumps(dict(
        kind="ratio", shape=o["shape"], batch=o["batch"], seq=o["seq"], grad_ckpt=o["grad_ckpt"],
        ours_tokens_per_s=o["tokens_per_s"], peer_tokens_per_s=p["tokens_per_s"], speed_ratio=round(o["tokens_per_s"] / p["tokens_per_s"], 3),
        ours_peak_gib=o["peak_gib"], peer_peak_gib=p["peak_gib"], memory_ratio=round(o["peak_gib"] / p["peak_gib"], 3),
        ours_mfu=o["mfu"], peer_mfu=round(flops / tokens * p["tokens_per_s"] / 989.4e12, 4))))
