# Writes the preference parity data: preference-train.bin / preference-validation.bin (pairs as consecutive
# examples: chosen, rejected) and an empty train.bin. Prompt: BOS, n random ids, end-of-turn; chosen: the
# same ids again (the copy task), rejected: other random ids; targets on the completions only.
# Usage: make_preference_task.py <out dir> [seed] [bos] [eot]  (Llama 2's BOS 1 and EOS 2 by default)
import struct, random, sys
def write(path, examples):
    with open(path, 'wb') as f:
        f.write(struct.pack('<III', 0x4B545446, 1, len(examples)))
        for ids, tg in examples:
            f.write(struct.pack('<I', len(ids)))
            f.write(struct.pack('<%di' % len(ids), *ids))
            f.write(bytes(tg))
out = sys.argv[1]
r = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
bos, eot = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else (1, 2)
def pair():
    n = r.randint(4, 12)
    a = [r.randint(1000, 1063) for _ in range(n)]
    b = [r.randint(1000, 1063) for _ in range(r.randint(4, 12))]
    prompt = [bos] + a + [eot]
    chosen, rejected = a + [eot], b + [eot]
    return [(prompt + c, [0] * len(prompt) + [1] * len(c)) for c in (chosen, rejected)]
write(out + '/preference-train.bin', [e for _ in range(32) for e in pair()])
write(out + '/preference-validation.bin', [e for _ in range(4) for e in pair()])
write(out + '/train.bin', [])
