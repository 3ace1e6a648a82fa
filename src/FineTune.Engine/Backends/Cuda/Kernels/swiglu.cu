// SwiGLU: h = silu(gate) * up (and GeGLU below), elementwise over n values (gate and up are separate
// projections, so LoRA can sit on each). 16-byte accesses with a scalar tail.
// gate and up (and dgate, dup) are rows of `width` values `ld` apart: ld == width when they are
// separate buffers, 2 * width when one product wrote [gate | up] per row; h and dh are dense.
#include "common.cuh"

// The offset (elements) of dense element i in a [rows, width] view whose rows are ld apart.
__device__ __forceinline__ long long glu_at(long long i, int width, int ld)
{
    return ld == width ? i : (i / width) * ld + i % width;
}

__device__ __forceinline__ float silu_f(float g) { return g / (1.f + __expf(-g)); }

extern "C" __global__ void swiglu_forward(bf16* __restrict__ h, const bf16* __restrict__ gate, const bf16* __restrict__ up, long long n, int width, int ld)
{
    const long long vecs = n / 8;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < vecs; i += stride) {
        const long long at = glu_at(i * 8, width, ld) / 8;
        uint4 g = ((const uint4*)gate)[at], u = ((const uint4*)up)[at];
        u32 gp[4] = {g.x, g.y, g.z, g.w}, upp[4] = {u.x, u.y, u.z, u.w}, o[4];
        #pragma unroll
        for (int j = 0; j < 4; j++) o[j] = pack_bf16x2(silu_f(lo_f(gp[j])) * lo_f(upp[j]), silu_f(hi_f(gp[j])) * hi_f(upp[j]));
        ((uint4*)h)[i] = make_uint4(o[0], o[1], o[2], o[3]);
    }
    for (long long i = vecs * 8 + blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += stride)
        { const long long at = glu_at(i, width, ld); h[i] = f2bf(silu_f(bf2f(gate[at])) * bf2f(up[at])); }
}

// dgate = dh * up * silu'(gate), dup = dh * silu(gate), silu'(g) = s * (1 + g * (1 - s)) with
// s = sigmoid(g). dgate/dup may alias gate/up: each element is read before it is written. With h
// (not null) the kernel also writes h = silu(gate) * up, for a layer that did not keep it.
__device__ __forceinline__ void swiglu_grad(float g, float u, float d, float& dg, float& du)
{
    const float s = 1.f / (1.f + __expf(-g));
    du = d * g * s;
    dg = d * u * s * (1.f + g * (1.f - s));
}

extern "C" __global__ void swiglu_backward(bf16* dgate, bf16* dup, const bf16* dh, const bf16* gate, const bf16* up, bf16* __restrict__ h,
    long long n, int width, int ld)
{
    const long long vecs = n / 8;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < vecs; i += stride) {
        const long long at = glu_at(i * 8, width, ld) / 8;
        uint4 g = ((const uint4*)gate)[at], u = ((const uint4*)up)[at], d = ((const uint4*)dh)[i];
        u32 gp[4] = {g.x, g.y, g.z, g.w}, upp[4] = {u.x, u.y, u.z, u.w}, dp[4] = {d.x, d.y, d.z, d.w}, og[4], ou[4];
        #pragma unroll
        for (int j = 0; j < 4; j++) {
            float dg0, du0, dg1, du1;
            swiglu_grad(lo_f(gp[j]), lo_f(upp[j]), lo_f(dp[j]), dg0, du0);
            swiglu_grad(hi_f(gp[j]), hi_f(upp[j]), hi_f(dp[j]), dg1, du1);
            og[j] = pack_bf16x2(dg0, dg1);
            ou[j] = pack_bf16x2(du0, du1);
        }
        if (h) {
            // The forward kernel's expression, so h has its bits (GpuMemoryPlan.SharesGluOutput).
            u32 oh[4];
            #pragma unroll
            for (int j = 0; j < 4; j++) oh[j] = pack_bf16x2(silu_f(lo_f(gp[j])) * lo_f(upp[j]), silu_f(hi_f(gp[j])) * hi_f(upp[j]));
            ((uint4*)h)[i] = make_uint4(oh[0], oh[1], oh[2], oh[3]);
        }
        ((uint4*)dgate)[at] = make_uint4(og[0], og[1], og[2], og[3]);
        ((uint4*)dup)[at] = make_uint4(ou[0], ou[1], ou[2], ou[3]);
    }
    for (long long i = vecs * 8 + blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += stride) {
        float dg, du;
        const long long at = glu_at(i, width, ld);
        const float g = bf2f(gate[at]), u = bf2f(up[at]);
        swiglu_grad(g, u, bf2f(dh[i]), dg, du);
        if (h) h[i] = f2bf(silu_f(g) * u);
        dgate[at] = f2bf(dg);
        dup[at] = f2bf(du);
    }
}

// GeGLU (Gemma): h = gelu_tanh(gate) * up with gelu_tanh(g) = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))),
// transformers' gelu_pytorch_tanh. tanhf (not the one-instruction approximation) so the values
// stay within fp32 rounding of the CPU engine's MathF.Tanh.
#define GELU_BETA 0.7978845608028654f
#define GELU_KAPPA 0.044715f

__device__ __forceinline__ float gelu_tanh_f(float g) { return 0.5f * g * (1.f + tanhf(GELU_BETA * (g + GELU_KAPPA * g * g * g))); }

extern "C" __global__ void geglu_forward(bf16* __restrict__ h, const bf16* __restrict__ gate, const bf16* __restrict__ up, long long n, int width, int ld)
{
    const long long vecs = n / 8;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < vecs; i += stride) {
        const long long at = glu_at(i * 8, width, ld) / 8;
        uint4 g = ((const uint4*)gate)[at], u = ((const uint4*)up)[at];
        u32 gp[4] = {g.x, g.y, g.z, g.w}, upp[4] = {u.x, u.y, u.z, u.w}, o[4];
        #pragma unroll
        for (int j = 0; j < 4; j++) o[j] = pack_bf16x2(gelu_tanh_f(lo_f(gp[j])) * lo_f(upp[j]), gelu_tanh_f(hi_f(gp[j])) * hi_f(upp[j]));
        ((uint4*)h)[i] = make_uint4(o[0], o[1], o[2], o[3]);
    }
    for (long long i = vecs * 8 + blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += stride)
        { const long long at = glu_at(i, width, ld); h[i] = f2bf(gelu_tanh_f(bf2f(gate[at])) * bf2f(up[at])); }
}

// dgate = dh * up * gelu'(gate), dup = dh * gelu(gate) with
// gelu'(g) = 0.5 (1 + t) + 0.5 g (1 - t^2) beta (1 + 3 kappa g^2), t = tanh(beta (g + kappa g^3)).
__device__ __forceinline__ void geglu_grad(float g, float u, float d, float& dg, float& du)
{
    const float t = tanhf(GELU_BETA * (g + GELU_KAPPA * g * g * g));
    du = d * 0.5f * g * (1.f + t);
    dg = d * u * (0.5f * (1.f + t) + 0.5f * g * (1.f - t * t) * GELU_BETA * (1.f + 3.f * GELU_KAPPA * g * g));
}

extern "C" __global__ void geglu_backward(bf16* dgate, bf16* dup, const bf16* dh, const bf16* gate, const bf16* up, bf16* __restrict__ h,
    long long n, int width, int ld)
{
    const long long vecs = n / 8;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < vecs; i += stride) {
        const long long at = glu_at(i * 8, width, ld) / 8;
        uint4 g = ((const uint4*)gate)[at], u = ((const uint4*)up)[at], d = ((const uint4*)dh)[i];
        u32 gp[4] = {g.x, g.y, g.z, g.w}, upp[4] = {u.x, u.y, u.z, u.w}, dp[4] = {d.x, d.y, d.z, d.w}, og[4], ou[4];
        #pragma unroll
        for (int j = 0; j < 4; j++) {
            float dg0, du0, dg1, du1;
            geglu_grad(lo_f(gp[j]), lo_f(upp[j]), lo_f(dp[j]), dg0, du0);
            geglu_grad(hi_f(gp[j]), hi_f(upp[j]), hi_f(dp[j]), dg1, du1);
            og[j] = pack_bf16x2(dg0, dg1);
            ou[j] = pack_bf16x2(du0, du1);
        }
        if (h) {
            // The forward kernel's expression, so h has its bits (GpuMemoryPlan.SharesGluOutput).
            u32 oh[4];
            #pragma unroll
            for (int j = 0; j < 4; j++) oh[j] = pack_bf16x2(gelu_tanh_f(lo_f(gp[j])) * lo_f(upp[j]), gelu_tanh_f(hi_f(gp[j])) * hi_f(upp[j]));
            ((uint4*)h)[i] = make_uint4(oh[0], oh[1], oh[2], oh[3]);
        }
        ((uint4*)dgate)[at] = make_uint4(og[0], og[1], og[2], og[3]);
        ((uint4*)dup)[at] = make_uint4(ou[0], ou[1], ou[2], ou[3]);
    }
    for (long long i = vecs * 8 + blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += stride) {
        float dg, du;
        const long long at = glu_at(i, width, ld);
        const float g = bf2f(gate[at]), u = bf2f(up[at]);
        geglu_grad(g, u, bf2f(dh[i]), dg, du);
        if (h) h[i] = f2bf(gelu_tanh_f(g) * u);
        dgate[at] = f2bf(dg);
        dup[at] = f2bf(du);
    }
}
