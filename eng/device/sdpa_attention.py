#!/usr/bin/env python3
"""PyTorch SDPA (flash backend) on the attention shapes bench/cuda-kernels times.

Prints JSON lines {"kind": "sdpa", "shape": [B, T, Hq, Hkv, D], "op": "forward"|"backward",
"ms": median, ...}, one pair per shape (the list in bench/cuda-kernels/AttentionTimings.cs).
Tensors are laid out as FineTune's kernels take them ([B, T, H, D], viewed as [B, H, T, D] for
SDPA), random bf16, causal, grouped-query. Timed with CUDA events: warm-up, then the median of
many runs.
"""
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

# Llama-3.2-1B, Llama-3.1-8B, SmolLM2-135M heads at the LoRA benchmark's batch x 2048 tokens.
SHAPES = [(4, 2048, 32, 8, 64), (2, 2048, 32, 8, 128), (8, 2048, 9, 3, 64)]
WARMUP, ITERS = 5, 30


def median_ms(fn):
    for _ in range(WARMUP):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(ITERS):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def time_shape(B, T, HQ, HKV, D):
    dev = "cuda"
    q = torch.empty(B, T, HQ, D, device=dev, dtype=torch.bfloat16).uniform_(-1, 1).transpose(1, 2).requires_grad_()
    k = torch.empty(B, T, HKV, D, device=dev, dtype=torch.bfloat16).uniform_(-1, 1).transpose(1, 2).requires_grad_()
    v = torch.empty(B, T, HKV, D, device=dev, dtype=torch.bfloat16).uniform_(-1, 1).transpose(1, 2).requires_grad_()
    dout = torch.empty(B, T, HQ, D, device=dev, dtype=torch.bfloat16).uniform_(-1, 1).transpose(1, 2)

    gqa = "native"
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        try:
            F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            attend = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        except RuntimeError:
            # Flash without native GQA: expand the key/value heads once, outside the timing,
            # which is what Hugging Face's repeat_kv does before calling SDPA.
            gqa = "expanded"
            ke = k.detach().repeat_interleave(HQ // HKV, dim=1).requires_grad_()
            ve = v.detach().repeat_interleave(HQ // HKV, dim=1).requires_grad_()
            attend = lambda: F.scaled_dot_product_attention(q, ke, ve, is_causal=True)

        with torch.no_grad():
            fwd = median_ms(attend)
        out = attend()
        inputs = (q, k, v) if gqa == "native" else (q, ke, ve)
        bwd = median_ms(lambda: torch.autograd.grad(out, inputs, dout, retain_graph=True))

    common = {"kind": "sdpa", "backend": "flash", "gqa": gqa, "shape": [B, T, HQ, HKV, D], "torch": torch.__version__,
              "device": torch.cuda.get_device_name()}
    print(json.dumps({**common, "op": "forward", "ms": round(fwd, 4)}))
    print(json.dumps({**common, "op": "backward", "ms": round(bwd, 4)}))


def main():
    torch.manual_seed(0)
    for shape in SHAPES:
        time_shape(*shape)
    return 0


if __name__ == "__main__":
    sys.exit(main())
