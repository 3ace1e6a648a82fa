# Medians of eng/device/train-cpu.sh's `rounds` step: per shape, ours and the PyTorch peer over the rounds
# (each round runs the peer, then ours, in the same call), the ratio of the medians, and each round's ratio.
# Usage: rounds_summary.py rounds.jsonl  -> one JSON object per shape, then one with the peer's configuration.
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
peer_config = next((dict(peer=r["peer"], threads=r["threads"]) for r in rows if "peer" in r), {})
for shape in dict.fromkeys(r["shape"] for r in rows if "shape" in r):
    ours = {r["round"]: r["tokens_per_s"] for r in rows if r.get("engine") and r.get("shape") == shape}
    peer = {r["round"]: r["tokens_per_s"] for r in rows if r.get("peer") and r.get("shape") == shape}
    both = sorted(set(ours) & set(peer))
    ratios = [round(ours[k] / peer[k], 2) for k in both]
    print(json.dumps(dict(shape=shape, rounds=len(both),
        ours_median_tokens_per_s=statistics.median(ours.values()) if ours else None,
        peer_median_tokens_per_s=statistics.median(peer.values()) if peer else None,
        ratio_of_medians=round(statistics.median(ours.values()) / statistics.median(peer.values()), 2) if both else None,
        ratio_per_round=ratios, ratio_min=min(ratios) if ratios else None,
        ours_tokens_per_s=[ours[k] for k in sorted(ours)], peer_tokens_per_s=[peer[k] for k in sorted(peer)])))
print(json.dumps(dict(peer_configuration=peer_config)))
