// What the attention kernels share (attention.cu with mma.sync, attention_hopper.cu with wgmma):
// tile geometry, asynchronous copies, fragment loads, the per-tile online softmax. The layouts and
// the reasons behind the inner loops are described at the top of attention.cu.
#pragma once
#include "common.cuh"

#ifndef HEAD_DIM
#define HEAD_DIM 64
#endif
#define TILE 64
#define THREADS 128
#define LDS (HEAD_DIM + 8)          // padded smem row (bf16): fragment loads hit 32 distinct banks
#define KSTEPS (HEAD_DIM / 16)      // k-steps over the head dimension
#define DTILES (HEAD_DIM / 8)       // 8-wide n-tiles over the head dimension
// Above head_dim 128 the output accumulators (O, dQ, dK and dV) of a whole head would not fit in
// registers, so each block owns one 128-column chunk of them: its grid's x runs over (..., chunk)
// and the scores, which need every column, are recomputed per chunk. At most 128 one chunk.
#define DCHUNK (HEAD_DIM > 128 ? 128 : HEAD_DIM)
#define CHUNKS (HEAD_DIM / DCHUNK)
#define OTILES (DCHUNK / 8)         // 8-wide n-tiles over one output chunk
#define NTILES (TILE / 8)           // 8-wide n-tiles over a 64-row tile
#define LOG2E 1.4426950408889634f
#define LN2 0.6931471805599453f

// Asynchronous 16-byte global->shared copy (sm_80+); zero-fills when !valid.
__device__ __forceinline__ void cp_async16(bf16* dst, const bf16* src, bool valid)
{
    const u32 s = (u32)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" :: "r"(s), "l"(src), "r"(valid ? 16 : 0));
}

__device__ __forceinline__ void cp_async4(float* dst, const float* src, bool valid)
{
    const u32 s = (u32)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" :: "r"(s), "l"(src), "r"(valid ? 4 : 0));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" :: "n"(N)); }

// 2^x in one MUFU op (inputs are <= 0 here; -inf gives 0).
__device__ __forceinline__ float ex2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

// Two floats to packed bf16 (lo at the lower address), round to nearest even, in one instruction.
__device__ __forceinline__ u32 pack2(float lo, float hi)
{
    u32 r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

// Queues the copy of rows [row0, row0 + ROWS) of a [T, stride] matrix into smem (zeros past T).
template <int ROWS>
__device__ __forceinline__ void load_tile_async(bf16* s, const bf16* base, size_t stride, int row0, int T)
{
    constexpr int VPR = HEAD_DIM / 8;
    static_assert((ROWS * VPR) % THREADS == 0, "tile copy must split evenly over the block");
    #pragma unroll
    for (int it = 0; it < ROWS * VPR / THREADS; it++) {
        const int i = threadIdx.x + it * THREADS;
        const int r = i / VPR, c = i % VPR;
        const bool ok = row0 + r < T;
        cp_async16(s + r * LDS + c * 8, ok ? base + (size_t)(row0 + r) * stride + c * 8 : base, ok);
    }
}

// Four 8x8 bf16 matrices from smem; lanes 8i..8i+7 give the row addresses of matrix i.
__device__ __forceinline__ void ldmatrix_x4(u32 (&r)[4], const bf16* p)
{
    const u32 a = (u32)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}

__device__ __forceinline__ void ldmatrix_x4_trans(u32 (&r)[4], const bf16* p)
{
    const u32 a = (u32)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}

// The A fragment of the 16x16 block at (r0, c0) of a smem tile: matrix i of the x4 load covers
// rows r0 + (i%2)*8.., columns c0 + (i/2)*8.., which is a[0..3] of mma.m16n8k16.
__device__ __forceinline__ void ldmatrix_a(u32 (&a)[4], const bf16* s, int r0, int c0, int lane)
{
    ldmatrix_x4(a, s + (r0 + (lane & 7) + ((lane >> 3) & 1) * 8) * LDS + c0 + (lane >> 4) * 8);
}

// A fragments of M 16-row groups starting at row r0 of a smem tile, over the whole head dimension.
template <int M>
__device__ __forceinline__ void load_a_frags(u32 (&f)[M][KSTEPS][4], const bf16* s, int r0, int lane)
{
    #pragma unroll
    for (int m = 0; m < M; m++)
        #pragma unroll
        for (int ks = 0; ks < KSTEPS; ks++) ldmatrix_a(f[m][ks], s, r0 + m * 16, ks * 16, lane);
}

template <int M>
__device__ __forceinline__ void zero(float (&acc)[M][NTILES][4])
{
    #pragma unroll
    for (int m = 0; m < M; m++)
        #pragma unroll
        for (int n = 0; n < NTILES; n++) acc[m][n][0] = acc[m][n][1] = acc[m][n][2] = acc[m][n][3] = 0.f;
}

// acc[m] (16 x 8*NT) = A[m] (16 x HEAD_DIM) . S^T for the first 8*NT rows of a smem tile S
// [rows][HEAD_DIM], A in registers. M 16-row groups share every B fragment: matrix i of an x4
// load covers tile rows (n + i/2)*8.., head columns ks*16 + (i%2)*8...
template <int M, int NT>
__device__ __forceinline__ void mma_a_x_rows(float (&acc)[M][NT][4], const u32 (&a)[M][KSTEPS][4], const bf16* s, int lane)
{
    const int mi = lane >> 3, mr = lane & 7;
    #pragma unroll
    for (int m = 0; m < M; m++)
        #pragma unroll
        for (int n = 0; n < NT; n++) acc[m][n][0] = acc[m][n][1] = acc[m][n][2] = acc[m][n][3] = 0.f;
    #pragma unroll
    for (int ks = 0; ks < KSTEPS; ks++) {
        #pragma unroll
        for (int n = 0; n < NT; n += 2) {
            u32 b[4];
            ldmatrix_x4(b, s + ((n + (mi >> 1)) * 8 + mr) * LDS + ks * 16 + (mi & 1) * 8);
            #pragma unroll
            for (int m = 0; m < M; m++) {
                mma_bf16_16816(acc[m][n], a[m][ks], b);
                mma_bf16_16816(acc[m][n + 1], a[m][ks], b + 2);
            }
        }
    }
}

// The product with every row of a 64-row tile.
template <int M>
__device__ __forceinline__ void mma_a_x_tile(float (&acc)[M][NTILES][4], const u32 (&a)[M][KSTEPS][4], const bf16* s, int lane)
{
    mma_a_x_rows<M, NTILES>(acc, a, s, lane);
}

// The same with A read from smem (rows r0.. of sA) one k-step at a time, for when the registers
// cannot hold A over the whole head dimension.
template <int M>
__device__ __forceinline__ void mma_smem_x_tile(float (&acc)[M][NTILES][4], const bf16* sA, int r0, const bf16* s, int lane)
{
    const int mi = lane >> 3, mr = lane & 7;
    zero<M>(acc);
    #pragma unroll
    for (int ks = 0; ks < KSTEPS; ks++) {
        u32 a[M][4];
        #pragma unroll
        for (int m = 0; m < M; m++) ldmatrix_a(a[m], sA, r0 + m * 16, ks * 16, lane);
        #pragma unroll
        for (int n = 0; n < NTILES; n += 2) {
            u32 b[4];
            ldmatrix_x4(b, s + ((n + (mi >> 1)) * 8 + mr) * LDS + ks * 16 + (mi & 1) * 8);
            #pragma unroll
            for (int m = 0; m < M; m++) {
                mma_bf16_16816(acc[m][n], a[m], b);
                mma_bf16_16816(acc[m][n + 1], a[m], b + 2);
            }
        }
    }
}

// out[m] (16 x DCHUNK) += P[m] (16 x 16*KK, fp32 accumulator layout) . S[:, c0 .. c0 + DCHUNK) for
// the first 16*KK rows of a smem tile S [rows][HEAD_DIM]. The accumulator layout of P is exactly the A-fragment
// layout once packed to bf16, so P never leaves registers; B fragments come from transposing
// ldmatrix loads (matrix i covers tile rows kk*16 + (i%2)*8.., head columns (n + i/2)*8..).
template <int M, int KK>
__device__ __forceinline__ void mma_p_x_rows(float (&out)[M][OTILES][4], const float (&p)[M][2 * KK][4], const bf16* s, int c0, int lane)
{
    const int mi = lane >> 3, mr = lane & 7;
    #pragma unroll
    for (int kk = 0; kk < KK; kk++) {
        u32 a[M][4];
        #pragma unroll
        for (int m = 0; m < M; m++) {
            a[m][0] = pack2(p[m][2 * kk][0], p[m][2 * kk][1]);
            a[m][1] = pack2(p[m][2 * kk][2], p[m][2 * kk][3]);
            a[m][2] = pack2(p[m][2 * kk + 1][0], p[m][2 * kk + 1][1]);
            a[m][3] = pack2(p[m][2 * kk + 1][2], p[m][2 * kk + 1][3]);
        }
        #pragma unroll
        for (int n = 0; n < OTILES; n += 2) {
            u32 b[4];
            ldmatrix_x4_trans(b, s + (kk * 16 + (mi & 1) * 8 + mr) * LDS + c0 + (n + (mi >> 1)) * 8);
            #pragma unroll
            for (int m = 0; m < M; m++) {
                mma_bf16_16816(out[m][n], a[m], b);
                mma_bf16_16816(out[m][n + 1], a[m], b + 2);
            }
        }
    }
}

// The product with every row of a 64-row tile.
template <int M>
__device__ __forceinline__ void mma_p_x_tile(float (&out)[M][OTILES][4], const float (&p)[M][NTILES][4], const bf16* s, int c0, int lane)
{
    mma_p_x_rows<M, TILE / 16>(out, p, s, c0, lane);
}

__device__ __forceinline__ float quad_max(float v)
{
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}

__device__ __forceinline__ float quad_sum(float v)
{
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// One key tile of the online softmax for M 16-row groups: s holds raw scores (Q.K^T) and
// becomes the unnormalised probabilities; the row maxima (raw units), partial row sums (per
// lane, summed over the quad at the end) and the output accumulators are rescaled. MASK applies
// causality, the sliding window (a row sees the window - 1 keys before it) and the sequence end;
// tiles wholly inside every row's visible range skip it.
template <int M, bool MASK>
__device__ __forceinline__ void softmax_tile(float (&s)[M][NTILES][4], float (&mrow)[M][2], float (&lrow)[M][2],
    float (&o)[M][OTILES][4], int k0, int r0, int t4, int T, int window, float sl2)
{
    #pragma unroll
    for (int m = 0; m < M; m++) {
        float mx0 = mrow[m][0], mx1 = mrow[m][1];
        #pragma unroll
        for (int n = 0; n < NTILES; n++) {
            if (MASK) {
                #pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int key = k0 + n * 8 + 2 * t4 + (e & 1);
                    const int row = r0 + m * 16 + (e >> 1) * 8;
                    if (key > row || key >= T || row - key >= window) s[m][n][e] = FT_NEG_INF;
                }
            }
            mx0 = fmaxf(mx0, fmaxf(s[m][n][0], s[m][n][1]));
            mx1 = fmaxf(mx1, fmaxf(s[m][n][2], s[m][n][3]));
        }
        mx0 = quad_max(mx0);
        mx1 = quad_max(mx1);
        // A row with no visible key yet keeps -inf; its base is 0 so nothing becomes NaN.
        const float b0 = (mx0 == FT_NEG_INF ? 0.f : mx0) * sl2, b1 = (mx1 == FT_NEG_INF ? 0.f : mx1) * sl2;
        const float a0 = ex2(fmaf(mrow[m][0], sl2, -b0)), a1 = ex2(fmaf(mrow[m][1], sl2, -b1));
        mrow[m][0] = mx0;
        mrow[m][1] = mx1;
        float sum0 = 0.f, sum1 = 0.f;
        #pragma unroll
        for (int n = 0; n < NTILES; n++) {
            s[m][n][0] = ex2(fmaf(s[m][n][0], sl2, -b0));
            s[m][n][1] = ex2(fmaf(s[m][n][1], sl2, -b0));
            s[m][n][2] = ex2(fmaf(s[m][n][2], sl2, -b1));
            s[m][n][3] = ex2(fmaf(s[m][n][3], sl2, -b1));
            sum0 += s[m][n][0] + s[m][n][1];
            sum1 += s[m][n][2] + s[m][n][3];
        }
        lrow[m][0] = fmaf(lrow[m][0], a0, sum0);
        lrow[m][1] = fmaf(lrow[m][1], a1, sum1);
        #pragma unroll
        for (int n = 0; n < OTILES; n++) {
            o[m][n][0] *= a0; o[m][n][1] *= a0;
            o[m][n][2] *= a1; o[m][n][3] *= a1;
        }
    }
}

// Queues the lse and delta rows of query tile q0 of head h into buffer buf of the (lse, delta) row
// pairs at sStat, zeros past T: the statistics step of a dK/dV block (dkv_issue and its swizzled twin).
__device__ __forceinline__ void dkv_issue_stats(float* sStat, int buf, int b, int h, int q0,
    const float* __restrict__ lse, const float* __restrict__ delta, int T, int Hq)
{
    const float* lb = lse + ((size_t)b * Hq + h) * T;
    const float* deb = delta + ((size_t)b * Hq + h) * T;
    float* st = sStat + buf * 2 * TILE;
    if (threadIdx.x < TILE) {
        const int i = threadIdx.x;
        const bool ok = q0 + i < T;
        cp_async4(st + i, ok ? lb + q0 + i : lb, ok);
        cp_async4(st + TILE + i, ok ? deb + q0 + i : deb, ok);
    }
}

// window 0: none; a window of at least the sequence's length masks nothing and becomes the length.
__device__ __forceinline__ int varlen_window(int window, int len) { return window > 0 && window < len ? window : len; }
