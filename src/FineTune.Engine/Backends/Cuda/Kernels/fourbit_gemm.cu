// QLoRA's fused 4-bit product for few rows (FourBitKernels.GemmSkinny), in its own module so the
// quantize/dequantize kernels never depend on it compiling. The weight arithmetic is dequantize_4bit's.
#include "common.cuh"

typedef unsigned char u8;

// Fused dequantize + product for skinny inputs (few rows): y[n, out] = x[n, in] * W[out, in]^T (+ beta * addend),
// W in 4-bit, read once per row tile of 8 and never written out in bf16. Each weight is dequantized to
// the same bf16 value dequantize_4bit writes (so only the summation order differs from the cuBLAS path),
// then multiplied in fp32 with fp32 accumulation. A warp owns 4 output features; a lane takes 8
// consecutive weights (4 packed bytes, inside one block of 64 since in % 64 == 0) per step, the rows'
// matching 8 inputs (16 bytes each), and the warp sums lanes in a fixed butterfly order.
// Grid: (ceil(out / 32), ceil(n / 8)), 256 threads.
#define SKINNY_ROWS 8
#define SKINNY_OUTS 4
extern "C" __global__ void fourbit_gemm_skinny(const bf16* __restrict__ x, int n, int in, int out,
    const u8* __restrict__ packed, const float* __restrict__ absmax, const u8* __restrict__ codes, const float* __restrict__ absmax2,
    float offset, const float* __restrict__ code16, const float* __restrict__ dmap, bf16* __restrict__ y, const bf16* __restrict__ addend, float beta)
{
    __shared__ float code[16];
    __shared__ float map[256];
    if (threadIdx.x < 16) code[threadIdx.x] = code16[threadIdx.x];
    if (codes != 0) for (int j = threadIdx.x; j < 256; j += blockDim.x) map[j] = dmap[j];
    __syncthreads();
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int o0 = (blockIdx.x * (blockDim.x >> 5) + warp) * SKINNY_OUTS;
    const int r0 = blockIdx.y * SKINNY_ROWS;
    if (o0 >= out) return;
    float acc[SKINNY_OUTS][SKINNY_ROWS];
    #pragma unroll
    for (int j = 0; j < SKINNY_OUTS; j++)
        #pragma unroll
        for (int r = 0; r < SKINNY_ROWS; r++) acc[j][r] = 0.f;
    for (int k = lane * 8; k < in; k += 256) {
        float xv[SKINNY_ROWS][8];
        #pragma unroll
        for (int r = 0; r < SKINNY_ROWS; r++) {
            uint4 q = make_uint4(0, 0, 0, 0);
            if (r0 + r < n) q = *(const uint4*)(x + (size_t)(r0 + r) * in + k);
            xv[r][0] = lo_f(q.x); xv[r][1] = hi_f(q.x); xv[r][2] = lo_f(q.y); xv[r][3] = hi_f(q.y);
            xv[r][4] = lo_f(q.z); xv[r][5] = hi_f(q.z); xv[r][6] = lo_f(q.w); xv[r][7] = hi_f(q.w);
        }
        #pragma unroll
        for (int j = 0; j < SKINNY_OUTS; j++) {
            const int o = o0 + j;
            if (o >= out) break;
            const size_t at = (size_t)o * in + k;
            const size_t block = at >> 6;
            const float a = codes != 0 ? __fadd_rn(__fmul_rn(map[codes[block]], absmax2[block >> 8]), offset) : absmax[block];
            const u32 p = *(const u32*)(packed + (at >> 1));
            float w[8];
            #pragma unroll
            for (int b = 0; b < 4; b++) {
                const u32 byte = (p >> (8 * b)) & 0xffu;
                const u32 two = pack_bf16x2(__fmul_rn(code[byte >> 4], a), __fmul_rn(code[byte & 15u], a));
                w[2 * b] = lo_f(two); w[2 * b + 1] = hi_f(two);
            }
            #pragma unroll
            for (int r = 0; r < SKINNY_ROWS; r++)
                #pragma unroll
                for (int e = 0; e < 8; e++) acc[j][r] = fmaf(xv[r][e], w[e], acc[j][r]);
        }
    }
    #pragma unroll
    for (int j = 0; j < SKINNY_OUTS; j++)
        #pragma unroll
        for (int r = 0; r < SKINNY_ROWS; r++) {
            const float s = warp_sum(acc[j][r]);
            const int o = o0 + j;
            if (lane == j * SKINNY_ROWS + r && o < out && r0 + r < n) {
                const size_t at = (size_t)(r0 + r) * out + o;
                y[at] = f2bf(addend != 0 ? s + beta * bf2f(addend[at]) : s);
            }
        }
}
