// Precision conversions and the embedding lookup.
#include "common.cuh"

extern "C" __global__ void f32_to_bf16(bf16* __restrict__ out, const float* __restrict__ in, long long n)
{
    const long long stride = (long long)gridDim.x * blockDim.x;
    const long long vecs = n / 4;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < vecs; i += stride) {
        float4 v = ((const float4*)in)[i];
        ((uint2*)out)[i] = make_uint2(pack_bf16x2(v.x, v.y), pack_bf16x2(v.z, v.w));
    }
    for (long long i = vecs * 4 + blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += stride)
        out[i] = f2bf(in[i]);
}

extern "C" __global__ void bf16_to_f32(float* __restrict__ out, const bf16* __restrict__ in, long long n)
{
    const long long stride = (long long)gridDim.x * blockDim.x;
    const long long vecs = n / 4;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < vecs; i += stride) {
        uint2 v = ((const uint2*)in)[i];
        ((float4*)out)[i] = make_float4(lo_f(v.x), hi_f(v.x), lo_f(v.y), hi_f(v.y));
    }
    for (long long i = vecs * 4 + blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += stride)
        out[i] = bf2f(in[i]);
}

// out[row] = table[ids[row]] for rows of D bf16 (D a multiple of 8); one block per row. The
// host validates ids against the vocabulary before upload.
extern "C" __global__ void embedding_forward(bf16* __restrict__ out, const bf16* __restrict__ table, const int* __restrict__ ids, int D)
{
    const size_t row = blockIdx.x;
    const uint4* src = (const uint4*)(table + (size_t)ids[row] * D);
    uint4* dst = (uint4*)(out + row * D);
    for (int i = threadIdx.x; i < D / 8; i += blockDim.x) dst[i] = src[i];
}

// The same times a factor (Gemma's sqrt(hidden_size)), computed in fp32 and rounded once.
extern "C" __global__ void embedding_forward_scaled(bf16* __restrict__ out, const bf16* __restrict__ table, const int* __restrict__ ids, int D, float scale)
{
    const size_t row = blockIdx.x;
    const uint4* src = (const uint4*)(table + (size_t)ids[row] * D);
    uint4* dst = (uint4*)(out + row * D);
    for (int i = threadIdx.x; i < D / 8; i += blockDim.x) {
        const uint4 v = src[i];
        dst[i] = make_uint4(pack_bf16x2(lo_f(v.x) * scale, hi_f(v.x) * scale), pack_bf16x2(lo_f(v.y) * scale, hi_f(v.y) * scale),
                            pack_bf16x2(lo_f(v.z) * scale, hi_f(v.z) * scale), pack_bf16x2(lo_f(v.w) * scale, hi_f(v.w) * scale));
    }
}

// Counter-based uniform values in [-scale, scale): element i of stream `seed` is a pure function
// of (i, seed) (SplitMix64's finaliser), so any grid gives the same bits.
__device__ __forceinline__ float uniform_hash(unsigned long long i, unsigned long long seed)
{
    unsigned long long z = i * 0x9E3779B97F4A7C15ull + seed;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

extern "C" __global__ void fill_uniform_bf16(bf16* __restrict__ out, long long n, unsigned long long seed, float scale)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        out[i] = f2bf((uniform_hash((unsigned long long)i, seed) * 2.f - 1.f) * scale);
}

extern "C" __global__ void fill_uniform_f32(float* __restrict__ out, long long n, unsigned long long seed, float scale)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        out[i] = (uniform_hash((unsigned long long)i, seed) * 2.f - 1.f) * scale;
}
