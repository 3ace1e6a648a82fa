// Rotary position embedding, Hugging Face's rotate_half convention: the pair (i, i + hd/2) of
// each head rotates by angle position * inv_freq[i]. inv_freq arrives from the host already
// scaled (llama3, linear, ...). direction = +1 applies the rotation (forward), -1 its inverse
// (the backward pass: the gradient rotates back). In place on x [rows, heads, head_dim].
#include "common.cuh"

// One thread per (row, pair index): the angle's sine and cosine are computed once and applied
// to that pair in every head of the row.
extern "C" __global__ void rope_apply(bf16* __restrict__ x, const int* __restrict__ positions,
    const float* __restrict__ inv_freq, int rows, int heads, int head_dim, float direction)
{
    const int half = head_dim / 2;
    const size_t total = (size_t)rows * half;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < total; idx += (size_t)gridDim.x * blockDim.x) {
        const int i = (int)(idx % half);
        const size_t row = idx / half;
        const float angle = (float)positions[row] * inv_freq[i];
        float s, c;
        sincosf(angle, &s, &c);
        s *= direction;
        bf16* p = x + row * heads * head_dim;
        #pragma unroll 4
        for (int h = 0; h < heads; h++) {
            const float a = bf2f(p[h * head_dim + i]), b = bf2f(p[h * head_dim + i + half]);
            p[h * head_dim + i] = f2bf(a * c - b * s);
            p[h * head_dim + i + half] = f2bf(b * c + a * s);
        }
    }
}
