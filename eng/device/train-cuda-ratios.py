#!/usr/bin/env python3
"""Joins bench/train-cuda's lines with the peer's (bench/train-cuda/peer/hf_peft_lora.py) by shape,
batch, sequence length (or "sft", the realistic-length workload) and checkpointing, and prints one
JSON line per shape with the ratios against the FASTEST peer setup that ran (autocast, bf16 or
compile; fp32-lora, the slowest, is never the reference): tokens/s (ours over theirs, higher is
better), peak memory (ours over that setup's, lower is better), and both MFUs by the same FLOP
count (bench/train-cuda/Flops.cs) and the same device peak. Every setup's tokens/s is listed too."""
import json
import sys

ours_path, peer_path = sys.argv[1], sys.argv[2]


def lines(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip().startswith("{")]


peers = {}
for p in lines(peer_path):
    if "tokens_per_s" in p and p.get("precision") != "fp32-lora":
        peers.setdefault((p["shape"], p["batch"], p["seq"], p["grad_ckpt"]), []).append(p)
for o in lines(ours_path):
    if o.get("impl") != "finetune" or "tokens_per_s" not in o or o.get("rank", 16) != 16:
        continue
    setups = peers.get((o["shape"], o["batch"], o["seq"], o["grad_ckpt"]))
    if not setups:
        continue
    p = max(setups, key=lambda s: s["tokens_per_s"])
    row = dict(kind="ratio", shape=o["shape"], batch=o["batch"], seq=o["seq"], grad_ckpt=o["grad_ckpt"], ours_base_weights=o.get("base_weights", "bf16"), ours_offload=o.get("offload", False), ours_attention_launches=o.get("attention_launches"), ours_graphs=o.get("graphs"), ours_bucketed_plans=o.get("bucketed_plans"),
               ours_tokens_per_s=o["tokens_per_s"], fastest_peer=p["precision"], peer_tokens_per_s=p["tokens_per_s"],
               speed_ratio=round(o["tokens_per_s"] / p["tokens_per_s"], 3),
               ours_peak_gib=o["peak_gib"], peer_peak_gib=p["peak_gib"], memory_ratio=round(o["peak_gib"] / p["peak_gib"], 3),
               ours_mfu=o.get("mfu"), peer_tokens_per_s_by_setup={s["precision"]: s["tokens_per_s"] for s in setups},
               peer_peak_gib_by_setup={s["precision"]: s["peak_gib"] for s in setups},
               # Timed steps on each side: over 8 the compiled peer with checkpointing was still settling (session 16).
               ours_timed_steps=o.get("timed_steps"), peer_timed_steps=p.get("timed_steps"),
               ours_gpu_memory_limit_gib=o.get("gpu_memory_limit_gib"), ours_whole_layers=o.get("whole_layers"))
    if o.get("mfu") is not None:
        # The same work per real token for both: FLOPs per step over tokens per step (tokens/s x step time).
        per_token = o["model_tflops_per_step"] * 1e12 / (o["tokens_per_s"] * o["step_ms"] / 1000)
        row["peer_mfu"] = round(per_token * p["tokens_per_s"] / (o["mfu_peak_tflops"] * 1e12), 4)
    print(json.dumps(row))
