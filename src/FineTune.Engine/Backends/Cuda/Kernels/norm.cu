// RMSNorm over the last dimension (D, a multiple of 8): y = x * rstd * (w + w_offset) with
// rstd = 1/sqrt(mean(x^2) + eps). w_offset is 0, or 1 for Gemma, whose stored weights are offsets
// from one (added in fp32, as transformers does). 16-byte loads; two layouts of the same math
// (the per-vector helpers below): a block per row, and a warp per row for rows of at most
// 32 * NORM_VPL vectors.
#include "common.cuh"

// Sum of squares of 8 bf16 values.
__device__ __forceinline__ float norm_sumsq8(uint4 v)
{
    const u32 p[4] = {v.x, v.y, v.z, v.w};
    float ss = 0.f;
    #pragma unroll
    for (int j = 0; j < 4; j++) { const float a = lo_f(p[j]), b = hi_f(p[j]); ss += a * a + b * b; }
    return ss;
}

// residual + x * r * (w + w_offset) for 8 values (s: the residual's, or zeros).
__device__ __forceinline__ uint4 norm_scale8(uint4 v, uint4 g, uint4 s, float r, float w_offset)
{
    const u32 p[4] = {v.x, v.y, v.z, v.w}, q[4] = {g.x, g.y, g.z, g.w}, a[4] = {s.x, s.y, s.z, s.w};
    u32 o[4];
    #pragma unroll
    for (int j = 0; j < 4; j++)
        o[j] = pack_bf16x2(lo_f(a[j]) + lo_f(p[j]) * r * (lo_f(q[j]) + w_offset), hi_f(a[j]) + hi_f(p[j]) * r * (hi_f(q[j]) + w_offset));
    return make_uint4(o[0], o[1], o[2], o[3]);
}

// sum(dy * (w + w_offset) * x) over 8 values.
__device__ __forceinline__ float norm_dot8(uint4 d, uint4 g, uint4 v, float w_offset)
{
    const u32 p[4] = {v.x, v.y, v.z, v.w}, e[4] = {d.x, d.y, d.z, d.w}, q[4] = {g.x, g.y, g.z, g.w};
    float dot = 0.f;
    #pragma unroll
    for (int j = 0; j < 4; j++) dot += lo_f(e[j]) * (lo_f(q[j]) + w_offset) * lo_f(p[j]) + hi_f(e[j]) * (hi_f(q[j]) + w_offset) * hi_f(p[j]);
    return dot;
}

// dx = prev + r * (w + w_offset) * dy - x * c for 8 values (prev: the accumulated gradient, or zeros).
__device__ __forceinline__ uint4 norm_grad8(uint4 v, uint4 d, uint4 g, uint4 prev, float r, float c, float w_offset)
{
    const u32 p[4] = {v.x, v.y, v.z, v.w}, e[4] = {d.x, d.y, d.z, d.w}, q[4] = {g.x, g.y, g.z, g.w}, s[4] = {prev.x, prev.y, prev.z, prev.w};
    u32 o[4];
    #pragma unroll
    for (int j = 0; j < 4; j++) {
        const float a = r * (lo_f(q[j]) + w_offset) * lo_f(e[j]) - lo_f(p[j]) * c + lo_f(s[j]);
        const float b = r * (hi_f(q[j]) + w_offset) * hi_f(e[j]) - hi_f(p[j]) * c + hi_f(s[j]);
        o[j] = pack_bf16x2(a, b);
    }
    return make_uint4(o[0], o[1], o[2], o[3]);
}

// With a residual (Gemma's norms of the attention and MLP outputs), y = residual + the norm,
// summed in fp32 and rounded once (residual may be null).
// y's rows are y_stride apart (>= D, a multiple of 8): a projection input with spare columns for the LoRA hidden values.
extern "C" __global__ void rmsnorm_forward(bf16* __restrict__ y, float* __restrict__ rstd_out,
    const bf16* __restrict__ x, const bf16* __restrict__ w, int D, float eps, float w_offset, const bf16* __restrict__ residual, int y_stride)
{
    __shared__ float scratch[32];
    const size_t row = blockIdx.x;
    const uint4* xr = (const uint4*)(x + row * D);
    const uint4* wr = (const uint4*)w;
    uint4* yr = (uint4*)(y + row * y_stride);
    const int vecs = D / 8;

    float ss = 0.f;
    for (int i = threadIdx.x; i < vecs; i += blockDim.x) ss += norm_sumsq8(xr[i]);
    const float r = rsqrtf(block_sum(ss, scratch) / D + eps);
    if (threadIdx.x == 0) rstd_out[row] = r;

    const uint4* rr = residual ? (const uint4*)(residual + row * D) : nullptr;
    for (int i = threadIdx.x; i < vecs; i += blockDim.x)
        yr[i] = norm_scale8(xr[i], wr[i], rr ? rr[i] : make_uint4(0u, 0u, 0u, 0u), r, w_offset);
}

// dx_j = rstd * w_j * dy_j - x_j * rstd^3 / D * sum_i(dy_i * w_i * x_i), w_j = stored + w_offset.
// The norm weight is a frozen base weight under LoRA, so no weight gradient. With accumulate != 0,
// dx += result (the residual stream's gradient). dx's rows are dx_stride apart (>= D, a multiple of
// 8): the residual gradient keeps spare columns for the LoRA g of the products that read it.
extern "C" __global__ void rmsnorm_backward(bf16* __restrict__ dx, const bf16* __restrict__ dy,
    const bf16* __restrict__ x, const bf16* __restrict__ w, const float* __restrict__ rstd, int D, int accumulate, float w_offset, int dx_stride)
{
    __shared__ float scratch[32];
    const size_t row = blockIdx.x;
    const uint4* xr = (const uint4*)(x + row * D);
    const uint4* dyr = (const uint4*)(dy + row * D);
    const uint4* wr = (const uint4*)w;
    uint4* dxr = (uint4*)(dx + row * dx_stride);
    const int vecs = D / 8;
    const float r = rstd[row];

    float dot = 0.f;
    for (int i = threadIdx.x; i < vecs; i += blockDim.x) dot += norm_dot8(dyr[i], wr[i], xr[i], w_offset);
    const float c = block_sum(dot, scratch) * r * r * r / D;

    for (int i = threadIdx.x; i < vecs; i += blockDim.x)
        dxr[i] = norm_grad8(xr[i], dyr[i], wr[i], accumulate ? dxr[i] : make_uint4(0u, 0u, 0u, 0u), r, c, w_offset);
}

// The same two kernels with one warp per row (8 rows a block) for rows of at most 32 * NORM_VPL
// 16-byte vectors: the row stays in registers between the sum and the scaling (one read of x and
// dy instead of two) and the sum is a warp shuffle, not a block barrier. A block per row leaves most
// of its threads idle at small widths (72 of 256 at SmolLM2's 576) and keeps too few loads in
// flight to reach the memory's bandwidth. CudaKernels picks these up to NORM_VPL 8 (D <= 2048).
#ifndef NORM_VPL
#define NORM_VPL 8
#endif
#define NORM_ROWS_PER_BLOCK 8

extern "C" __global__ void __launch_bounds__(32 * NORM_ROWS_PER_BLOCK) rmsnorm_forward_rows(bf16* __restrict__ y, float* __restrict__ rstd_out,
    const bf16* __restrict__ x, const bf16* __restrict__ w, int rows, int D, float eps, float w_offset, const bf16* __restrict__ residual, int y_stride)
{
    const int lane = threadIdx.x & 31;
    const size_t row = (size_t)blockIdx.x * NORM_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= (size_t)rows) return;
    const uint4* xr = (const uint4*)(x + row * D);
    const uint4* wr = (const uint4*)w;
    uint4* yr = (uint4*)(y + row * y_stride);
    const int vecs = D / 8;

    uint4 v[NORM_VPL];
    float ss = 0.f;
    #pragma unroll
    for (int k = 0; k < NORM_VPL; k++) {
        const int i = lane + 32 * k;
        if (i < vecs) { v[k] = xr[i]; ss += norm_sumsq8(v[k]); }
    }
    const float r = rsqrtf(warp_sum(ss) / D + eps);
    if (lane == 0) rstd_out[row] = r;

    const uint4* rr = residual ? (const uint4*)(residual + row * D) : nullptr;
    #pragma unroll
    for (int k = 0; k < NORM_VPL; k++) {
        const int i = lane + 32 * k;
        if (i < vecs) yr[i] = norm_scale8(v[k], wr[i], rr ? rr[i] : make_uint4(0u, 0u, 0u, 0u), r, w_offset);
    }
}

extern "C" __global__ void __launch_bounds__(32 * NORM_ROWS_PER_BLOCK) rmsnorm_backward_rows(bf16* __restrict__ dx, const bf16* __restrict__ dy,
    const bf16* __restrict__ x, const bf16* __restrict__ w, const float* __restrict__ rstd, int rows, int D, int accumulate, float w_offset, int dx_stride)
{
    const int lane = threadIdx.x & 31;
    const size_t row = (size_t)blockIdx.x * NORM_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= (size_t)rows) return;
    const uint4* xr = (const uint4*)(x + row * D);
    const uint4* dyr = (const uint4*)(dy + row * D);
    const uint4* wr = (const uint4*)w;
    uint4* dxr = (uint4*)(dx + row * dx_stride);
    const int vecs = D / 8;
    const float r = rstd[row];

    uint4 v[NORM_VPL], d[NORM_VPL];
    float dot = 0.f;
    #pragma unroll
    for (int k = 0; k < NORM_VPL; k++) {
        const int i = lane + 32 * k;
        if (i < vecs) { v[k] = xr[i]; d[k] = dyr[i]; dot += norm_dot8(d[k], wr[i], v[k], w_offset); }
    }
    const float c = warp_sum(dot) * r * r * r / D;

    #pragma unroll
    for (int k = 0; k < NORM_VPL; k++) {
        const int i = lane + 32 * k;
        if (i < vecs) dxr[i] = norm_grad8(v[k], d[k], wr[i], accumulate ? dxr[i] : make_uint4(0u, 0u, 0u, 0u), r, c, w_offset);
    }
}
