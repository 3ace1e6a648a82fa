// Rotary position embedding, Hugging Face's rotate_half convention: the pair (i, i + hd/2) of
// each head rotates by angle position * inv_freq[i]. inv_freq arrives from the host already
// scaled (llama3, linear, ...). direction = +1 applies the rotation (forward), -1 its inverse
// (the backward pass: the gradient rotates back). In place on q [rows, q_heads, head_dim] and
// k [rows, k_heads, head_dim].
#include "common.cuh"

// One thread per (row, W consecutive pair indices): the W angles' sines and cosines are computed
// once and applied to those pairs in every head of the row, of q and then of k (k_heads 0: q
// alone). One launch for both saves a launch and the sines of the second; W = 4 moves 8 bytes a
// load (head_dim a multiple of 8), W = 1 is the scalar path for any other even head_dim.
template <int W>
__device__ __forceinline__ void rope_rotate(bf16* __restrict__ p, int heads, int head_dim, int i, const float (&c)[W], const float (&s)[W])
{
    const int half = head_dim / 2;
    #pragma unroll 4
    for (int h = 0; h < heads; h++) {
        bf16* x0 = p + h * head_dim + i;
        bf16* x1 = x0 + half;
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
            *(uint2*)x0 = make_uint2(pack_bf16x2(ru[0], ru[1]), pack_bf16x2(ru[2], ru[3]));
            *(uint2*)x1 = make_uint2(pack_bf16x2(rv[0], rv[1]), pack_bf16x2(rv[2], rv[3]));
        } else {
            *x0 = f2bf(ru[0]); *x1 = f2bf(rv[0]);
        }
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
        #pragma unroll
        for (int j = 0; j < W; j++) {
            sincosf((float)positions[row] * inv_freq[i + j], &s[j], &c[j]);
            s[j] *= direction;
        }
        rope_rotate<W>(q + row * q_heads * head_dim, q_heads, head_dim, i, c, s);
        if (k_heads > 0) rope_rotate<W>(k + row * k_heads * head_dim, k_heads, head_dim, i, c, s);
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
