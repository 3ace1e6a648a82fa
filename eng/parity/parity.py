# Parity of FineTune.Engine with PyTorch + PEFT (fp32, no TF32) on the same tiny weights, batches and
# hyper-parameters. Phase "init": PEFT creates the LoRA adapter (its own init) and saves it; our
# engine then trains from it (finetune train --init-adapter). Phase "compare": PyTorch trains from the
# same adapter over the same batches (our BatchPlan: SplitMix64 Fisher-Yates per epoch) and the
# per-step losses, grad norms and final adapter weights are compared; JSON goes to stdout.
import json, math, struct, sys
import torch
from transformers import AutoModelForCausalLM
from peft import LoraConfig, get_peft_model, PeftModel
from safetensors.torch import load_file

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = "cuda" if torch.cuda.is_available() else "cpu"
phase, model_dir = sys.argv[1], sys.argv[2]
H = dict(r=8, alpha=16, lr=1e-3, steps=20, bs=2, accum=2, warmup=2, wd=0.01, clip=1.0, seed=3407)
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

def base():
    m = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="eager")
    return m.to(dev)

if phase == "init":
    torch.manual_seed(0)
    cfg = LoraConfig(r=H["r"], lora_alpha=H["alpha"], lora_dropout=0.0, target_modules=TARGETS, task_type="CAUSAL_LM")
    get_peft_model(base(), cfg).save_pretrained(sys.argv[3])
    sys.exit(0)

init_dir, data_path, ours_dir = sys.argv[3], sys.argv[4], sys.argv[5]

def read_bin(path):
    b = open(path, "rb").read(); magic, ver, n = struct.unpack_from("<III", b, 0); p = 12; out = []
    for _ in range(n):
        (L,) = struct.unpack_from("<I", b, p); p += 4
        ids = list(struct.unpack_from("<%di" % L, b, p)); p += 4 * L
        tg = list(b[p:p + L]); p += L
        out.append((ids, tg))
    return out

M64 = (1 << 64) - 1
def mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)
class SplitMix:
    def __init__(s, seed): s.s = seed & M64
    def next(s): s.s = (s.s + 0x9E3779B97F4A7C15) & M64; return mix(s.s)
    def double(s): return (s.next() >> 11) * (1.0 / (1 << 53))
    def int(s, n): return int(s.double() * n)
def order(n, seed, epoch):
    o = list(range(n)); r = SplitMix(((seed & 0xFFFFFFFF) << 32) | epoch)
    for i in range(n - 1, 0, -1):
        j = r.int(i + 1); o[i], o[j] = o[j], o[i]
    return o
def batch(n, step, micro):
    bpe = (n + H["bs"] - 1) // H["bs"]; g = step * H["accum"] + micro
    o = order(n, H["seed"], g // bpe); i = g % bpe
    return o[i * H["bs"]: min(n, i * H["bs"] + H["bs"])]

train = read_bin(data_path)
model = PeftModel.from_pretrained(base(), init_dir, is_trainable=True)
params = [p for n, p in model.named_parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=H["lr"], betas=(0.9, 0.999), eps=1e-8, weight_decay=H["wd"])
def lam(k):
    if k < H["warmup"]: return k / max(1, H["warmup"])
    return max(0.0, (H["steps"] - k) / max(1, H["steps"] - H["warmup"]))
sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)
ours = [json.loads(l) for l in open(ours_dir + "/metrics.jsonl") if '"loss"' in l]
steps = []
for step in range(H["steps"]):
    micro = [[train[i] for i in batch(len(train), step, m)] for m in range(H["accum"])]
    total = sum(sum(tg[1:]) for mb in micro for _, tg in mb)
    loss_sum = 0.0
    for mb in micro:
        for ids, tg in mb:
            x = torch.tensor([ids], device=dev)
            logits = model(input_ids=x).logits[0, :-1].float()
            mask = torch.tensor(tg[1:], device=dev, dtype=torch.bool)
            ce = torch.nn.functional.cross_entropy(logits[mask], x[0, 1:][mask], reduction="sum")
            (ce / total).backward(); loss_sum += ce.item()
    norm = torch.nn.utils.clip_grad_norm_(params, H["clip"]).item()
    lr = sched.get_last_lr()[0]
    opt.step(); sched.step(); opt.zero_grad()
    o = ours[step]; loss = loss_sum / total
    steps.append(dict(step=step + 1, torch_loss=loss, ours_loss=o["loss"], rel_diff=abs(loss - o["loss"]) / abs(loss),
                      torch_grad_norm=norm, ours_grad_norm=o["grad_norm"], torch_lr=lr, ours_lr=o["learning_rate"]))
ours_w = load_file(ours_dir + "/adapter_model.safetensors")
sd = {k.replace(".default", ""): v.detach().float().cpu() for k, v in model.state_dict().items() if "lora_" in k}
diffs = {}
for k, v in ours_w.items():
    t = sd[k]
    diffs[k] = dict(max_abs=(t - v).abs().max().item(), rel_l2=((t - v).norm() / max(t.norm(), 1e-30)).item())
res = dict(device=dev, torch=torch.__version__, hyper=H, steps=steps,
           max_step_loss_rel_diff=max(s["rel_diff"] for s in steps),
           max_adapter_abs_diff=max(d["max_abs"] for d in diffs.values()),
           max_adapter_rel_l2=max(d["rel_l2"] for d in diffs.values()),
           adapter_tensors=len(diffs), worst=sorted(diffs.items(), key=lambda kv: -kv[1]["max_abs"])[:3])
print(json.dumps(res, indent=1))
