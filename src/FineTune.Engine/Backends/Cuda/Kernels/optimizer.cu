// AdamW on fp32 master weights (PyTorch's formulation) and a deterministic sum of squares for
// gradient-norm clipping.
#include "common.cuh"

// p -= lr * wd * p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps), with g = grad * grad_scale (clipping).
extern "C" __global__ void adamw_step(float* __restrict__ p, const float* __restrict__ grad, float* __restrict__ m, float* __restrict__ v,
    int n, float lr, float beta1, float beta2, float eps, float weight_decay, float bias_correction1, float bias_correction2_sqrt, float grad_scale)
{
    const float step = lr / bias_correction1;
    const float decay = 1.f - lr * weight_decay;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const float g = grad[i] * grad_scale;
        const float mi = beta1 * m[i] + (1.f - beta1) * g;
        const float vi = beta2 * v[i] + (1.f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * decay - step * mi / (sqrtf(vi) / bias_correction2_sqrt + eps);
    }
}

// Stage 1: partial[block] = sum of x^2 over a fixed grid-stride share; stage 2 sums the
// partials in one block. Same grid, same bits.
extern "C" __global__ void sum_squares_partial(float* __restrict__ partial, const float* __restrict__ x, int n)
{
    __shared__ float scratch[32];
    float s = 0.f;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) s += x[i] * x[i];
    s = block_sum(s, scratch);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

extern "C" __global__ void sum_partials(float* __restrict__ out, const float* __restrict__ partial, int count)
{
    __shared__ float scratch[32];
    float s = 0.f;
    for (int i = threadIdx.x; i < count; i += blockDim.x) s += partial[i];
    s = block_sum(s, scratch);
    if (threadIdx.x == 0) out[0] = s;
}
