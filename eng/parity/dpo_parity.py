# Preference-training parity of FineTune.Engine with PyTorch + PEFT (fp32, no TF32): the formulas of TRL's
# DPOTrainer.dpo_loss (sigmoid, ipo) and ORPOTrainer.odds_ratio_loss written in torch, autograd for the
# gradients (TRL itself is not installed on the GPU machine). Both start from the same SFT adapter, which is
# also the reference model (computed once, no grad), train over the same batches (our BatchPlan) and are
# compared per step (loss, grad norm, TRL's metrics) and on the final adapter weights.
# Usage: dpo_parity.py <model dir> <start adapter dir> <data dir> <ours dir> <trainer> <loss_type> <beta>  -> JSON on stdout
import json, struct, sys
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM
from peft import PeftModel
from safetensors.torch import load_file

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = "cuda" if torch.cuda.is_available() else "cpu"
model_dir, start_dir, data_dir, ours_dir, trainer, loss_type, beta = sys.argv[1:8]
beta = float(beta)
H = dict(lr=1e-3, steps=20, bs=2, accum=2, warmup=2, wd=0.01, clip=1.0, seed=3407)

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

ex = read_bin(data_dir + "/preference-train.bin")
pairs = [(ex[2 * i], ex[2 * i + 1]) for i in range(len(ex) // 2)]
base = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="eager").to(dev)
model = PeftModel.from_pretrained(base, start_dir, is_trainable=True)

def seq(ids, tg):
    """Summed log-probability of the completion tokens, their count, and the sum of their rows' mean logits."""
    x = torch.tensor([ids], device=dev)
    logits = model(input_ids=x).logits[0, :-1].float()
    mask = torch.tensor(tg[1:], device=dev, dtype=torch.bool)
    lp = torch.log_softmax(logits, -1).gather(1, x[0, 1:, None])[:, 0]
    return lp[mask].sum(), int(mask.sum()), logits[mask].mean(-1).sum().item()

with torch.no_grad():  # the reference: the model as training starts (the start adapter), computed once
    ref = [(seq(*c)[0].item(), seq(*r)[0].item()) for c, r in pairs]

params = [p for n, p in model.named_parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=H["lr"], betas=(0.9, 0.999), eps=1e-8, weight_decay=H["wd"])
def lam(k):
    if k < H["warmup"]: return k / max(1, H["warmup"])
    return max(0.0, (H["steps"] - k) / max(1, H["steps"] - H["warmup"]))
sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)
ours = [json.loads(l) for l in open(ours_dir + "/metrics.jsonl") if '"loss"' in l]
steps = []
for step in range(H["steps"]):
    idx = [i for m in range(H["accum"]) for i in batch(len(pairs), step, m)]
    P = len(idx); losses = []; m = dict(rc=0.0, rr=0.0, acc=0.0, lc=0.0, lr=0.0, gc=0.0, gr=0.0, tc=0, tr=0, nll=None, lo=0.0, ratio=0.0)
    nll_sum = 0.0; chosen_tokens = 0
    for i in idx:
        (c, r) = pairs[i]
        pc, nc, gc = seq(*c); pr, nr, gr = seq(*r); rc, rr = ref[i]
        m["gc"] += gc; m["gr"] += gr; m["tc"] += nc; m["tr"] += nr
        if trainer == "orpo":
            ac, ar = pc / nc, pr / nr
            log_odds = (ac - ar) - (torch.log1p(-torch.exp(ac)) - torch.log1p(-torch.exp(ar)))
            ratio = F.logsigmoid(log_odds)
            losses.append(-beta * ratio)
            nll_sum = nll_sum + (-pc); chosen_tokens += nc
            rwc, rwr, lpc, lpr = beta * ac.item(), beta * ar.item(), ac.item(), ar.item()
            m["lo"] += log_odds.item(); m["ratio"] += ratio.item()
        else:
            if loss_type == "ipo":
                pc, pr, rc, rr = pc / nc, pr / nr, rc / nc, rr / nr
            h = (pc - pr) - (rc - rr)
            if loss_type == "sigmoid": losses.append(-F.logsigmoid(beta * h))
            elif loss_type == "ipo": losses.append((h - 1 / (2 * beta)) ** 2)
            else: losses.append(torch.relu(1 - beta * h))
            rwc, rwr, lpc, lpr = beta * (pc.item() - rc), beta * (pr.item() - rr), pc.item(), pr.item()
        m["rc"] += rwc; m["rr"] += rwr; m["acc"] += float(rwc > rwr); m["lc"] += lpc; m["lr"] += lpr
    loss = torch.stack(losses).sum() / P
    if trainer == "orpo":
        nll = nll_sum / chosen_tokens; loss = loss + nll; m["nll"] = nll.item()
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(params, H["clip"]).item()
    lrate = sched.get_last_lr()[0]
    opt.step(); sched.step(); opt.zero_grad()
    t = {"loss": loss.item(), "grad_norm": norm, "learning_rate": lrate,
         "rewards/chosen": m["rc"] / P, "rewards/rejected": m["rr"] / P, "rewards/accuracies": m["acc"] / P,
         "rewards/margins": (m["rc"] - m["rr"]) / P, "logps/chosen": m["lc"] / P, "logps/rejected": m["lr"] / P,
         "logits/chosen": m["gc"] / m["tc"], "logits/rejected": m["gr"] / m["tr"]}
    if trainer == "orpo":
        t.update({"nll_loss": m["nll"], "log_odds_ratio": m["ratio"] / P, "log_odds_chosen": m["lo"] / P})
    o = ours[step]
    steps.append(dict(step=step + 1, torch=t, ours={k: o.get(k) for k in t},
                      rel_diff={k: abs(t[k] - o[k]) / max(abs(t[k]), 1e-12) for k in t if o.get(k) is not None}))
ours_w = load_file(ours_dir + "/adapter_model.safetensors")
sd = {k.replace(".default", ""): v.detach().float().cpu() for k, v in model.state_dict().items() if "lora_" in k}
diffs = {k: dict(max_abs=(sd[k] - v).abs().max().item(), rel_l2=((sd[k] - v).norm() / max(sd[k].norm(), 1e-30)).item()) for k, v in ours_w.items()}
res = dict(device=dev, torch=torch.__version__, trainer=trainer, loss_type=loss_type, beta=beta, hyper=H, steps=steps,
           max_step_loss_rel_diff=max(s["rel_diff"]["loss"] for s in steps),
           max_step_grad_norm_rel_diff=max(s["rel_diff"]["grad_norm"] for s in steps),
           max_adapter_abs_diff=max(d["max_abs"] for d in diffs.values()),
           max_adapter_rel_l2=max(d["rel_l2"] for d in diffs.values()), adapter_tensors=len(diffs))
print(json.dumps(res, indent=1))
