// RMSNorm over the last dimension (D, a multiple of 8): y = x * rstd * (w + w_offset) with
// rstd = 1/sqrt(mean(x^2) + eps). w_offset is 0, or 1 for Gemma, whose stored weights are offsets
// from one (added in fp32, as transformers does). One block per row; 16-byte loads.
#include "common.cuh"

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
    for (int i = threadIdx.x; i < vecs; i += blockDim.x) {
        uint4 v = xr[i];
        u32 p[4] = {v.x, v.y, v.z, v.w};
        #pragma unroll
        for (int j = 0; j < 4; j++) { float a = lo_f(p[j]), b = hi_f(p[j]); ss += a * a + b * b; }
    }
    const float r = rsqrtf(block_sum(ss, scratch) / D + eps);
    if (threadIdx.x == 0) rstd_out[row] = r;

    const uint4* rr = residual ? (const uint4*)(residual + row * D) : nullptr;
    for (int i = threadIdx.x; i < vecs; i += blockDim.x) {
        uint4 v = xr[i], g = wr[i];
        u32 p[4] = {v.x, v.y, v.z, v.w}, q[4] = {g.x, g.y, g.z, g.w}, o[4];
        u32 a[4] = {0u, 0u, 0u, 0u};
        if (rr) { const uint4 s = rr[i]; a[0] = s.x; a[1] = s.y; a[2] = s.z; a[3] = s.w; }
        #pragma unroll
        for (int j = 0; j < 4; j++)
            o[j] = pack_bf16x2(lo_f(a[j]) + lo_f(p[j]) * r * (lo_f(q[j]) + w_offset), hi_f(a[j]) + hi_f(p[j]) * r * (hi_f(q[j]) + w_offset));
        yr[i] = make_uint4(o[0], o[1], o[2], o[3]);
    }
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
    for (int i = threadIdx.x; i < vecs; i += blockDim.x) {
        uint4 v = xr[i], d = dyr[i], g = wr[i];
        u32 p[4] = {v.x, v.y, v.z, v.w}, e[4] = {d.x, d.y, d.z, d.w}, q[4] = {g.x, g.y, g.z, g.w};
        #pragma unroll
        for (int j = 0; j < 4; j++) dot += lo_f(e[j]) * (lo_f(q[j]) + w_offset) * lo_f(p[j]) + hi_f(e[j]) * (hi_f(q[j]) + w_offset) * hi_f(p[j]);
    }
    const float c = block_sum(dot, scratch) * r * r * r / D;

    for (int i = threadIdx.x; i < vecs; i += blockDim.x) {
        uint4 v = xr[i], d = dyr[i], g = wr[i];
        u32 p[4] = {v.x, v.y, v.z, v.w}, e[4] = {d.x, d.y, d.z, d.w}, q[4] = {g.x, g.y, g.z, g.w}, o[4];
        u32 prev[4] = {0u, 0u, 0u, 0u};
        if (accumulate) { uint4 old = dxr[i]; prev[0] = old.x; prev[1] = old.y; prev[2] = old.z; prev[3] = old.w; }
        #pragma unroll
        for (int j = 0; j < 4; j++) {
            float a = r * (lo_f(q[j]) + w_offset) * lo_f(e[j]) - lo_f(p[j]) * c;
            float b = r * (hi_f(q[j]) + w_offset) * hi_f(e[j]) - hi_f(p[j]) * c;
            if (accumulate) { a += lo_f(prev[j]); b += hi_f(prev[j]); }
            o[j] = pack_bf16x2(a, b);
        }
        dxr[i] = make_uint4(o[0], o[1], o[2], o[3]);
    }
}
