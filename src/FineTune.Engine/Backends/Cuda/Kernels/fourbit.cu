// QLoRA's 4-bit base weights (Weights/FourBit/SPEC.md): quantize bf16 projections into bitsandbytes'
// layout and dequantize them back to bf16 before each product. The arithmetic is the CPU reference's
// operation for operation (FourBitQuantizer): every product, quotient and sum is written with an
// explicit round-to-nearest intrinsic, so NVRTC cannot contract them into fused multiply-adds and the
// codes, absmax values and dequantized bf16 are byte-identical to the reference (a KernelCheck).
#include "common.cuh"

typedef unsigned char u8;

// The code of a value already scaled into [-1, 1]: the sorted code book's entry at the number of
// midpoints strictly below it (torch.bucketize, right=False).
__device__ __forceinline__ int bucket4(float s, const float* bounds, const u8* order)
{
    int k = 0;
    #pragma unroll
    for (int j = 0; j < 15; j++) k += bounds[j] < s;
    return order[k];
}

__device__ __forceinline__ float clamp1(float v) { return fminf(fmaxf(v, -1.f), 1.f); }

// One warp per block of 64 values (lane l holds values 2l and 2l+1, i.e. byte l of the block; the
// first value in the high nibble). absmax[b] = max |x| of block b; a full block is scaled by the
// reciprocal of max(absmax, 1e-38), the partial last block divided by it. Values past n count as 0
// (the reference pads an odd count with a code for 0). tables: 15 float midpoints, then 16 code bytes.
extern "C" __global__ void quantize_4bit(const bf16* __restrict__ x, long long n, u8* __restrict__ packed, float* __restrict__ absmax,
    const float* __restrict__ tables, long long blocks)
{
    __shared__ float bounds[15];
    __shared__ u8 order[16];
    if (threadIdx.x < 15) bounds[threadIdx.x] = tables[threadIdx.x];
    if (threadIdx.x < 16) order[threadIdx.x] = ((const u8*)(tables + 15))[threadIdx.x];
    __syncthreads();
    const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    for (long long b = blockIdx.x * (long long)warps + (threadIdx.x >> 5); b < blocks; b += (long long)gridDim.x * warps) {
        const long long i0 = b * 64 + 2 * lane;
        const float v0 = i0 < n ? bf2f(x[i0]) : 0.f, v1 = i0 + 1 < n ? bf2f(x[i0 + 1]) : 0.f;
        const float m = warp_max(fmaxf(fabsf(v0), fabsf(v1)));
        if (lane == 0) absmax[b] = m;
        const float safe = fmaxf(m, 1e-38f);
        float s0, s1;
        if (b * 64 + 64 <= n) {
            const float inv = __frcp_rn(safe);
            s0 = __fmul_rn(v0, inv); s1 = __fmul_rn(v1, inv);
        } else {
            s0 = __fdiv_rn(v0, safe); s1 = __fdiv_rn(v1, safe);
        }
        const long long byte = b * 32 + lane;
        if (byte < (n + 1) / 2) packed[byte] = (u8)((bucket4(clamp1(s0), bounds, order) << 4) | bucket4(clamp1(s1), bounds, order));
    }
}

// Double quantization: one block of 256 threads per 256 absmax values. (absmax - offset) scaled like
// the 4-bit values, coded with the signed 8-bit dynamic map (255 float midpoints in `bounds`).
extern "C" __global__ void quantize_absmax(const float* __restrict__ absmax, int count, float offset, u8* __restrict__ codes,
    float* __restrict__ absmax2, const float* __restrict__ bounds)
{
    __shared__ float scratch[32];
    __shared__ float b[255];
    if (threadIdx.x < 255) b[threadIdx.x] = bounds[threadIdx.x];
    const int i = blockIdx.x * 256 + threadIdx.x;
    const float v = i < count ? __fsub_rn(absmax[i], offset) : 0.f;
    const float m = block_max(fabsf(v), scratch);
    if (threadIdx.x == 0) absmax2[blockIdx.x] = m;
    __syncthreads();
    if (i >= count) return;
    const float safe = fmaxf(m, 1e-38f);
    const float s = clamp1((blockIdx.x + 1) * 256 <= count ? __fmul_rn(v, __frcp_rn(safe)) : __fdiv_rn(v, safe));
    int lo = 0, hi = 255;
    while (lo < hi) {
        const int mid = (lo + hi) >> 1;
        if (b[mid] < s) lo = mid + 1; else hi = mid;
    }
    codes[i] = (u8)lo;
}

// out = bf16(code[c] * absmax[block]) for n values (n % 16 == 0), 16 per thread from 8 packed bytes.
// With double quantization (codes != 0) the block's absmax is dmap[codes[block]] * absmax2[block / 256]
// + offset, a product then a sum, each rounded; otherwise absmax[block] as stored.
extern "C" __global__ void dequantize_4bit(const u8* __restrict__ packed, long long n, const float* __restrict__ absmax,
    const u8* __restrict__ codes, const float* __restrict__ absmax2, float offset, const float* __restrict__ code16,
    const float* __restrict__ dmap, bf16* __restrict__ out)
{
    __shared__ float code[16];
    __shared__ float map[256];
    if (threadIdx.x < 16) code[threadIdx.x] = code16[threadIdx.x];
    if (codes != 0) for (int j = threadIdx.x; j < 256; j += blockDim.x) map[j] = dmap[j];
    __syncthreads();
    const long long groups = n / 16;
    for (long long g = blockIdx.x * (long long)blockDim.x + threadIdx.x; g < groups; g += (long long)gridDim.x * blockDim.x) {
        const long long block = g >> 2;
        const float a = codes != 0 ? __fadd_rn(__fmul_rn(map[codes[block]], absmax2[block >> 8]), offset) : absmax[block];
        const uint2 p = ((const uint2*)packed)[g];
        u32 o[8];
        const u32 words[2] = {p.x, p.y};
        #pragma unroll
        for (int w = 0; w < 2; w++)
            #pragma unroll
            for (int k = 0; k < 4; k++) {
                const u32 byte = (words[w] >> (8 * k)) & 0xffu;
                o[w * 4 + k] = pack_bf16x2(__fmul_rn(code[byte >> 4], a), __fmul_rn(code[byte & 15u], a));
            }
        uint4* dst = (uint4*)(out + g * 16);
        dst[0] = make_uint4(o[0], o[1], o[2], o[3]);
        dst[1] = make_uint4(o[4], o[5], o[6], o[7]);
    }
}

