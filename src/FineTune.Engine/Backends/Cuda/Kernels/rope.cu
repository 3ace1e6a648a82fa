// Rotary position embedding, Hugging Face's rotate_half convention: the pair (i, i + hd/2) of
// each head rotates by angle position * inv_freq[i]. inv_freq arrives from the host already
// scaled (llama3, linear, ...). direction = +1 applies the rotation (forward), -1 its inverse
// (the backward pass: the gradient rotates back). In place on q [rows, q_heads, head_dim] and
// k [rows, k_heads, head_dim]; rope_packed writes the rotated q and k and an unrotated v into one
// packed row [q | k | v] of ld values instead (the backward pass's q/k/v gradient as one product's input).
#include "common.cuh"

// One thread per (row, W consecutive pair indices): the W angles' sines and cosines are computed
// once and applied to those pairs in every head of the row, of q and then of k (k_heads 0: q
// alone). One launch for both saves a launch and the sines of the second; W = 4 moves 8 bytes a
// load (head_dim a multiple of 8), W = 1 is the scalar path for any other even head_dim.
template <int W>
__device__ __forceinline__ void rope_rotate(const bf16* src, bf16* dst, int heads, int head_dim, int i, const float (&c)[W], const float (&s)[W])
{
    const int half = head_dim / 2;
    #pragma unroll 4
    for (int h = 0; h < heads; h++) {
        const bf16* x0 = src + h * head_dim + i;
        const bf16* x1 = x0 + half;
        bf16* y0 = dst + h * head_dim + i;
        bf16* y1 = y0 + half;
        float u[W], v[W];
        if constexpr (W == 4) {
            const uint2 a = *(const uint2*)x0, b = *(const uint2*)x1;
            u[0] = lo_f(a.x); u[1] = hi_f(a.x); u[2] = lo_f(a.y); u[3] = hi_f(a.y);
            v[0] = lo_f(b.x); v[1] = hi_f(b.x); v[2] = lo_f(b.y); v[3] = hi_f(b.y);
        } else {
            u[0] = bf2f(*x0); v[0] = bf2f(*x1);
        }
        float ru[W], rv[W];
        #pragma unroll
        for (int j = 0; j < W; j++) {
            ru[j] = u[j] * c[j] - v[j] * s[j];
            rv[j] = v[j] * c[j] + u[j] * s[j];
        }
        if constexpr (W == 4) {
            *(uint2*)y0 = make_uint2(pack_bf16x2(ru[0], ru[1]), pack_bf16x2(ru[2], ru[3]));
            *(uint2*)y1 = make_uint2(pack_bf16x2(rv[0], rv[1]), pack_bf16x2(rv[2], rv[3]));
        } else {
            *y0 = f2bf(ru[0]); *y1 = f2bf(rv[0]);
        }
    }
}

// The same pairs of every head copied unrotated (v's share of a packed row).
template <int W>
__device__ __forceinline__ void pair_copy(const bf16* __restrict__ src, bf16* __restrict__ dst, int heads, int head_dim, int i)
{
    const int half = head_dim / 2;
    #pragma unroll 4
    for (int h = 0; h < heads; h++) {
        const int at = h * head_dim + i;
        if constexpr (W == 4) {
            *(uint2*)(dst + at) = *(const uint2*)(src + at);
            *(uint2*)(dst + at + half) = *(const uint2*)(src + at + half);
        } else {
            dst[at] = src[at]; dst[at + half] = src[at + half];
        }
    }
}

// The W angles' cosines and sines of pair indices i.. at one position, the sines negated for the inverse.
template <int W>
__device__ __forceinline__ void rope_angles(int position, const float* __restrict__ inv_freq, int i, float direction, float (&c)[W], float (&s)[W])
{
    #pragma unroll
    for (int j = 0; j < W; j++) {
        sincosf((float)position * inv_freq[i + j], &s[j], &c[j]);
        s[j] *= direction;
    }
}

template <int W>
__device__ __forceinline__ void rope_apply_body(bf16* __restrict__ q, bf16* __restrict__ k, const int* __restrict__ positions,
    const float* __restrict__ inv_freq, int rows, int q_heads, int k_heads, int head_dim, float direction)
{
    const int groups = head_dim / 2 / W;
    const size_t total = (size_t)rows * groups;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < total; idx += (size_t)gridDim.x * blockDim.x) {
        const int i = (int)(idx % groups) * W;
        const size_t row = idx / groups;
        float s[W], c[W];
        rope_angles<W>(positions[row], inv_freq, i, direction, c, s);
        bf16* qr = q + row * q_heads * head_dim;
        rope_rotate<W>(qr, qr, q_heads, head_dim, i, c, s);
        if (k_heads > 0) {
            bf16* kr = k + row * k_heads * head_dim;
            rope_rotate<W>(kr, kr, k_heads, head_dim, i, c, s);
        }
    }
}

template <int W>
__device__ __forceinline__ void rope_packed_body(bf16* __restrict__ out, int ld, const bf16* __restrict__ q, const bf16* __restrict__ k,
    const bf16* __restrict__ v, const int* __restrict__ positions, const float* __restrict__ inv_freq, int rows, int q_heads, int k_heads,
    int head_dim, float direction)
{
    const int groups = head_dim / 2 / W;
    const size_t total = (size_t)rows * groups;
    const int q_width = q_heads * head_dim, kv_width = k_heads * head_dim;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < total; idx += (size_t)gridDim.x * blockDim.x) {
        const int i = (int)(idx % groups) * W;
        const size_t row = idx / groups;
        float s[W], c[W];
        rope_angles<W>(positions[row], inv_freq, i, direction, c, s);
        bf16* o = out + row * (size_t)ld;
        rope_rotate<W>(q + row * q_width, o, q_heads, head_dim, i, c, s);
        rope_rotate<W>(k + row * kv_width, o + q_width, k_heads, head_dim, i, c, s);
        pair_copy<W>(v + row * kv_width, o + q_width + kv_width, k_heads, head_dim, i);
    }
}

extern "C" __global__ void rope_apply(bf16* __restrict__ q, bf16* __restrict__ k, const int* __restrict__ positions,
    const float* __restrict__ inv_freq, int rows, int q_heads, int k_heads, int head_dim, float direction)
{
    rope_apply_body<4>(q, k, positions, inv_freq, rows, q_heads, k_heads, head_dim, direction);
}

extern "C" __global__ void rope_apply_scalar(bf16* __restrict__ q, bf16* __restrict__ k, const int* __restrict__ positions,
    const float* __restrict__ inv_freq, int rows, int q_heads, int k_heads, int head_dim, float direction)
{
    rope_apply_body<1>(q, k, positions, inv_freq, rows, q_heads, k_heads, head_dim, direction);
}

extern "C" __global__ void rope_packed(bf16* __restrict__ out, int ld, const bf16* __restrict__ q, const bf16* __restrict__ k,
    const bf16* __restrict__ v, const int* __restrict__ positions, const float* __restrict__ inv_freq, int rows, int q_heads, int k_heads,
    int head_dim, float direction)
{
    rope_packed_body<4>(out, ld, q, k, v, positions, inv_freq, rows, q_heads, k_heads, head_dim, direction);
}

extern "C" __global__ void rope_packed_scalar(bf16* __restrict__ out, int ld, const bf16* __restrict__ q, const bf16* __restrict__ k,
    const bf16* __restrict__ v, const int* __restrict__ positions, const float* __restrict__ inv_freq, int rows, int q_heads, int k_heads,
    int head_dim, float direction)
{
    rope_packed_body<1>(out, ld, q, k, v, positions, inv_freq, rows, q_heads, k_heads, head_dim, direction);
}
