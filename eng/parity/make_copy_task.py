import struct, random, sys
def write(path, examples):
    with open(path,'wb') as f:
        f.write(struct.pack('<III', 0x4B545446, 1, len(examples)))
        for ids, tg in examples:
            f.write(struct.pack('<I', len(ids)))
            f.write(struct.pack('<%di' % len(ids), *ids))
            f.write(bytes(tg))
r = random.Random(int(sys.argv[2]) if len(sys.argv)>2 else 1)
# BOS and end-of-turn ids: Llama 3's by default; Gemma 3's are 2 and 106.
bos, eot = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else (128000, 128009)
def ex():
    n = r.randint(8, 40)
    a = [r.randint(1000, 1063) for _ in range(n)]
    ids = [bos] + a + [eot] + a + [eot]
    tg = [0]*(n+2) + [1]*(n+1)
    return ids, tg
out=sys.argv[1]
write(out+'/train.bin', [ex() for _ in range(64)])
write(out+'/validation.bin', [ex() for _ in range(8)])
