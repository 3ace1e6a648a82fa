# Peer baseline: HF transformers + PEFT LoRA SFT throughput and peak memory on random-init Llama-shaped models.
# The shared peer (../shared/bench/hf_peft_lora.py, 2026-12-01) plus two things this repository's
# benchmark needs: a `compile` setup and the realistic-length SFT workload. Setups, one line each (field "precision"):
#   autocast  - bf16 base, fp32 adapters, products under torch.autocast(bf16): what TRL/HF Trainer do with bf16=True
#   bf16      - bf16 base and bf16 adapters (PEFT autocast_adapter_dtype=False): the fastest plain HF setup
#   compile   - bf16, with torch.compile(model) (inductor + triton); compile time is spent in the warm-up steps
#   compile-layers - bf16, each decoder layer compiled (torch.compile regional compilation: one graph for
#               the identical layers, what PyTorch recommends to cut compile time); the rest eager
#   fp32-lora - bf16 base, fp32 adapters, no autocast (PEFT's default without a Trainer; the slowest)
# Shapes: shape:batch:seq:ckpt (random tokens, every position a target), or sft:shape:ckpt:LENGTHS.json
# (bench/train-cuda/sft-lengths.json: batches of variable-length examples right-padded to the longest in
# each batch with an attention mask, loss on the reply tokens only, what TRL does without packing and
# flash-attn; tokens/s counts real tokens).
# Usage: hf_peft_lora.py [precision,... (default autocast,bf16)] [shape,...]
import json, os, sys, time, torch
from transformers import LlamaConfig, LlamaForCausalLM
from peft import LoraConfig, get_peft_model
SHAPES = {
  "smollm2-135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True, rope_theta=100000.0),
  "llama3.2-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True, rope_theta=500000.0),
  "llama3.1-8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False, rope_theta=500000.0),
}
# Gemma 3 1B as released (transformers' Gemma3ForCausalLM: sliding-window layers, GeGLU, sandwich norms).
GEMMA_SHAPES = {
  "gemma3-1b": dict(hidden_size=1152, intermediate_size=6912, num_hidden_layers=26, num_attention_heads=4, num_key_value_heads=1, head_dim=256, vocab_size=262144, sliding_window=512, query_pre_attn_scalar=256, tie_word_embeddings=True),
}

def batches_random(cfg, batch, seq, n):
    x = torch.randint(0, cfg.vocab_size, (batch, seq), device="cuda")
    return [dict(input_ids=x, labels=x)] * n, batch * seq

def batches_sft(cfg, lengths):
    g = torch.Generator().manual_seed(3)
    out, real = [], 0
    for b in lengths["batches"]:
        longest = max(l for l, _ in b)
        ids = torch.zeros((len(b), longest), dtype=torch.long)
        mask = torch.zeros((len(b), longest), dtype=torch.long)
        labels = torch.full((len(b), longest), -100, dtype=torch.long)
        for i, (l, p) in enumerate(b):
            ids[i, :l] = torch.randint(0, cfg.vocab_size, (l,), generator=g)
            mask[i, :l] = 1
            labels[i, p:l] = ids[i, p:l]
        out.append(dict(input_ids=ids.cuda(), attention_mask=mask.cuda(), labels=labels.cuda()))
        real += sum(l for l, _ in b)
    warm = lengths["warm"]
    return out, sum(l for b in lengths["batches"][warm:] for l, _ in b)

# PEER_STEPS: timed steps (8, as ours; longer windows for the spread between calls at small shapes).
def run(precision, shape, batch, seq, gc, lengths=None, steps=int(os.environ.get("PEER_STEPS", "8")), warm=3):
    torch.manual_seed(0)
    # Initialised on the GPU (the shared script builds on the CPU: minutes at 8B); nothing timed changes.
    with torch.device("cuda"):
        if shape in GEMMA_SHAPES:
            from transformers import Gemma3TextConfig, Gemma3ForCausalLM
            cfg = Gemma3TextConfig(max_position_embeddings=32768, attn_implementation="sdpa", **GEMMA_SHAPES[shape])
            model = Gemma3ForCausalLM(cfg).to(dtype=torch.bfloat16)
        else:
            cfg = LlamaConfig(max_position_embeddings=8192, rms_norm_eps=1e-5, attn_implementation="sdpa", **SHAPES[shape])
            model = LlamaForCausalLM(cfg).to(dtype=torch.bfloat16)
    if gc: model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False}); model.enable_input_require_grads()
    lora = LoraConfig(r=16, lora_alpha=16, lora_dropout=0.0, bias="none", target_modules=["q_proj","k_proj","v_proj","o_proj","gate_proj","up_proj","down_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(model, lora, autocast_adapter_dtype=(precision == "autocast" or precision == "fp32-lora"))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    if precision.startswith("compile"):
        # No KV cache in training: with it each layer guards on its own cache entry, so regional compilation
        # recompiles per layer and falls back to eager after torch._dynamo's recompile limit (8 layers).
        model.config.use_cache = False
    fwd = torch.compile(model) if precision == "compile" else model
    if precision == "compile-layers":
        for layer in model.get_base_model().model.layers: layer.compile()
    if lengths is None:
        data, timed_tokens = batches_random(cfg, batch, seq, warm + steps)
        timed_tokens *= steps
    else:
        data, timed_tokens = batches_sft(cfg, lengths)
        warm, steps = lengths["warm"], len(lengths["batches"]) - lengths["warm"]
    torch.cuda.reset_peak_memory_stats(); torch.cuda.synchronize()
    c0 = time.perf_counter()
    for i in range(warm + steps):
        if i == warm:
            torch.cuda.synchronize(); warmed = time.perf_counter()
            # FT_TIMED_AFTER: a file whose existence starts the timed steps (the compile setup compiles while our checks run).
            while os.environ.get("FT_TIMED_AFTER") and not os.path.exists(os.environ["FT_TIMED_AFTER"]): time.sleep(0.5)
            t0 = time.perf_counter()
        if i < warm: print(json.dumps(dict(progress=precision, shape=shape, warmup_step=i, s=round(time.perf_counter() - c0, 1))), file=sys.stderr, flush=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=(precision == "autocast")):
            out = fwd(**data[i])
        out.loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize(); dt = time.perf_counter() - t0
    adapter_dtype = str(next(p for p in model.parameters() if p.requires_grad).dtype)
    r = dict(peer="hf-peft", precision=precision, adapter_dtype=adapter_dtype, shape=shape, batch=batch, seq=seq if lengths is None else "sft", grad_ckpt=gc,
             tokens_per_s=round(timed_tokens / dt), peak_gib=round(torch.cuda.max_memory_allocated()/2**30, 2), loss=float(out.loss.detach()),
             warmup_s=round(warmed - c0, 1), timed_steps=steps, torch=torch.__version__, device=torch.cuda.get_device_name())
    if precision.startswith("compile"):
        # What was compiled: graphs and whether any frame hit the recompile limit (it then runs eager).
        from torch._dynamo.utils import counters
        r["dynamo"] = {k: dict(v) for k, v in counters.items() if k in ("stats", "frames", "recompile_limit") or "limit" in k}
    print(json.dumps(r), flush=True)
    del model, opt, fwd, data; torch.cuda.empty_cache()

precisions = (sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else "autocast,bf16").split(",")
specs = (sys.argv[2] if len(sys.argv) > 2 else "smollm2-135m:8:2048:0,llama3.2-1b:4:2048:0,llama3.2-1b:4:2048:1,llama3.1-8b:2:2048:1").split(",")
for spec in specs:
    parts = spec.split(":")
    if parts[0] == "sft":
        shape, gc, lengths = parts[1], parts[2] == "1", json.load(open(parts[3]))
        batch, seq = lengths["batch"], "sft"
    else:
        shape, batch, seq, gc, lengths = parts[0], int(parts[1]), int(parts[2]), parts[3] == "1", None
    for p in precisions:
        try: run(p, shape, batch, seq, gc, lengths)
        except Exception as e: print(json.dumps(dict(peer="hf-peft", precision=p, shape=shape, seq=seq, grad_ckpt=gc, error=str(e)[:300])), flush=True); torch.cuda.empty_cache()
