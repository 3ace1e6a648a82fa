"""Golden values for 4-bit (NF4/FP4) quantization with double quantization, computed by PyTorch
running bitsandbytes' reference algorithm: the plain-PyTorch `default` backend
(bitsandbytes/backends/default/ops.py: quantize_4bit, quantize_blockwise, dequantize_*) and
functional.py (get_4bit_type, create_dynamic_map, quantize_4bit with compress_statistics), written
out op for op. bitsandbytes itself is not installed on the GPU machine; torch's own linspace,
bucketize and float32 arithmetic are what make these goldens, not our C# code.

Run on the GPU machine (python3 with torch), write the JSON to tests/FineTune.Engine.Tests/FourBit/:
    python3 eng/nf4/generate.py > tests/FineTune.Engine.Tests/FourBit/bnb-goldens.json
"""
import json
import struct

import torch

NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
       -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
       0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
       0.7229568362236023, 1.0]
FP4 = [0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0, -0.0, -0.0625, -8.0, -12.0, -4.0, -6.0, -2.0, -3.0]


def code4(kind):
    data = torch.tensor(NF4 if kind == "nf4" else FP4)
    data.div_(data.abs().max())
    return data


def dynamic_map():
    data = []
    non_sign_bits, max_exponent_bits = 7, 7
    for i in range(max_exponent_bits):
        fraction_items = int(2 ** (i + non_sign_bits - max_exponent_bits) + 1)
        boundaries = torch.linspace(0.1, 1, fraction_items, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    data.append(0)
    data.append(1.0)
    data.sort()
    return torch.tensor(data, dtype=torch.float32)


def blockwise_absmax_scaled(a, blocksize):
    n = a.numel()
    rem = n % blocksize
    full = n - rem
    com = a[:full].reshape(full // blocksize, blocksize)
    absmax = com.abs().max(dim=-1)[0]
    scaled = torch.clamp(com * (1.0 / absmax.clamp(min=1e-38).view(-1, 1)), -1, 1).reshape(-1)
    if rem:
        am = a[full:].abs().max().clamp(min=1e-38)
        absmax = torch.cat([absmax, am.unsqueeze(0)])
        scaled = torch.cat([scaled, torch.clamp(a[full:] / am, -1, 1)])
    return absmax, scaled


def quantize_blockwise(a, code, blocksize):
    absmax, scaled = blockwise_absmax_scaled(a.reshape(-1).float(), blocksize)
    bounds = (code[:-1] + code[1:]) / 2
    return torch.bucketize(scaled, bounds, out_int32=True).to(torch.uint8), absmax


def dequantize_blockwise(q, absmax, code, blocksize):
    out = code[q.to(torch.int64)]
    n = out.numel()
    rem = n % blocksize
    full = n - rem
    parts = [(out[:full].reshape(-1, blocksize) * absmax[:full // blocksize].view(-1, 1)).reshape(full)]
    if rem:
        parts.append(out[full:] * absmax[full // blocksize])
    return torch.cat(parts)


def quantize_4bit(a, kind, blocksize):
    code = code4(kind)
    order = torch.argsort(code, stable=True)
    bounds = (code[order[:-1]] + code[order[1:]]) / 2
    absmax, scaled = blockwise_absmax_scaled(a.reshape(-1).float(), blocksize)
    if scaled.numel() % 2:
        scaled = torch.nn.functional.pad(scaled, (0, 1))
    q = torch.bucketize(scaled, bounds, out_int32=True)
    if kind != "nf4":
        q = order[q]
    q8 = q.to(torch.uint8)
    return (q8[::2] << 4) | q8[1::2], absmax


def dequantize_4bit(packed, absmax, kind, blocksize, n):
    code = code4(kind)
    idx = torch.empty(packed.numel() * 2, dtype=torch.int64)
    idx[1::2] = (packed & 0xF).to(torch.int64)
    idx[::2] = (packed >> 4).to(torch.int64)
    vals = code[idx][:n]
    rem = n % blocksize
    full = n - rem
    out = torch.empty(n, dtype=torch.float32)
    out[:full] = (vals[:full].view(-1, blocksize) * absmax[:full // blocksize].view(-1, 1)).reshape(full)
    if rem:
        out[full:] = vals[full:] * absmax[full // blocksize]
    return out


def bits(t):
    return [struct.unpack("<I", struct.pack("<f", v))[0] for v in t.float().reshape(-1).tolist()]


def case(name, a, kind, blocksize, double_quant):
    packed, absmax = quantize_4bit(a, kind, blocksize)
    result = {"name": name, "kind": kind, "blocksize": blocksize, "double_quant": double_quant,
              "dtype": str(a.dtype).replace("torch.", ""), "input": bits(a.float()),
              "packed": packed.tolist(), "absmax": bits(absmax)}
    if double_quant:
        dmap = dynamic_map()
        offset = absmax.mean()
        qabsmax, absmax2 = quantize_blockwise(absmax - offset, dmap, 256)
        restored = dequantize_blockwise(qabsmax, absmax2, dmap, 256)
        restored += offset
        result.update({"offset": bits(offset.reshape(1))[0], "qabsmax": qabsmax.tolist(), "absmax2": bits(absmax2)})
        absmax = restored
    result["dequantized"] = bits(dequantize_4bit(packed, absmax, kind, blocksize, a.numel()))
    return result


torch.manual_seed(0)
cases = []
w = torch.randn(64, 96) * 0.02
w[3, 5] = 0.3                      # an outlier dominating its block
w[7, :64] = 0                      # an all-zero block
cases.append(case("normal-nf4-dq", w, "nf4", 64, True))
cases.append(case("normal-nf4", w, "nf4", 64, False))
cases.append(case("normal-fp4-dq", w, "fp4", 64, True))
cases.append(case("bf16-nf4-128", (torch.randn(40, 80) * 0.05).to(torch.bfloat16), "nf4", 128, True))
# Values exactly on the code book's midpoints (times an absmax of 1) test the bucket side.
code = code4("nf4")
mid = ((code[:-1] + code[1:]) / 2)
edge = torch.cat([torch.tensor([1.0, -1.0]), mid, -mid, code, torch.linspace(-1, 1, 30)])
cases.append(case("midpoints-nf4", edge, "nf4", 64, False))
cases.append(case("tail-block-fp4", torch.randn(300) * 0.1, "fp4", 64, True))  # 300 = 4 blocks + 44
big = torch.randn(512 * 64 + 64) * 0.02 * torch.linspace(0.5, 3, 512 * 64 + 64)
cases.append(case("two-absmax-blocks-nf4-dq", big, "nf4", 64, True))  # 513 absmax values: 2 blocks of 256 + 1

print(json.dumps({"torch": torch.__version__, "nf4": bits(code4("nf4")), "fp4": bits(code4("fp4")),
                  "dynamic_map": bits(dynamic_map()), "cases": cases}))
