// Causal grouped-query attention, flash-attention style: query tiles of 64 rows (128 for
// head_dim <= 64, attention_forward_wide) against key tiles of 64, online softmax in fp32,
// tensor-core products (mma.m16n8k16 bf16 -> fp32) fed by ldmatrix, tiles copied with cp.async
// into double buffers. Memory is linear in the sequence length: only the log-sum-exp per query
// row is kept for the backward pass, which recomputes the probabilities. Deterministic: no
// atomics; dK/dV of a key tile are accumulated by one block that walks every query tile (and
// every query head of the group) in a fixed order, and dQ by another kernel that walks the key
// tiles.
//
// Layouts (row-major): q, out, dq: [B, T, Hq, HEAD_DIM]; k, v, dk, dv: [B, T, Hkv, HEAD_DIM];
// lse, delta: [B, Hq, T] fp32 (lse in natural log units of the scaled scores).
#include "common.cuh"

#ifndef HEAD_DIM
#define HEAD_DIM 64
#endif
#define TILE 64
#define LDS (HEAD_DIM + 8)          // padded smem row (bf16): fragment loads hit 32 distinct banks
#define KSTEPS (HEAD_DIM / 16)      // k-steps over the head dimension
#define DTILES (HEAD_DIM / 8)       // 8-wide n-tiles over the head dimension
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

// Queues the copy of rows [row0, row0 + ROWS) of a [T, stride] matrix into smem (zeros past T).
template <int ROWS = TILE>
__device__ __forceinline__ void load_tile_async(bf16* s, const bf16* base, size_t stride, int row0, int T)
{
    constexpr int VPR = HEAD_DIM / 8;
    for (int i = threadIdx.x; i < ROWS * VPR; i += blockDim.x) {
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

__device__ __forceinline__ u32 ld32(const bf16* p) { return *(const u32*)p; }

// A fragments of rows [r0, r0+16) of a smem tile, over the whole head dimension.
__device__ __forceinline__ void load_a_frags(u32 (&f)[KSTEPS][4], const bf16* s, int r0, int g, int t4)
{
    #pragma unroll
    for (int ks = 0; ks < KSTEPS; ks++) {
        f[ks][0] = ld32(s + (r0 + g) * LDS + ks * 16 + 2 * t4);
        f[ks][1] = ld32(s + (r0 + g + 8) * LDS + ks * 16 + 2 * t4);
        f[ks][2] = ld32(s + (r0 + g) * LDS + ks * 16 + 8 + 2 * t4);
        f[ks][3] = ld32(s + (r0 + g + 8) * LDS + ks * 16 + 8 + 2 * t4);
    }
}

// acc[n] (16 x 64) = A(16 x HEAD_DIM) . S^T where S is a smem tile [64 rows][HEAD_DIM]:
// the product of the warp's rows with every row of the tile. B fragments come straight from
// ldmatrix: matrix i of an x4 load covers tile rows (n + i/2)*8.., head columns ks*16 + (i%2)*8...
__device__ __forceinline__ void mma_rows_x_tile(float (&acc)[NTILES][4], const u32 (&a)[KSTEPS][4], const bf16* s, int lane)
{
    const int mi = lane >> 3, mr = lane & 7;
    #pragma unroll
    for (int n = 0; n < NTILES; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;
    #pragma unroll
    for (int n = 0; n < NTILES; n += 2) {
        #pragma unroll
        for (int ks = 0; ks < KSTEPS; ks++) {
            u32 b[4];
            ldmatrix_x4(b, s + ((n + (mi >> 1)) * 8 + mr) * LDS + ks * 16 + (mi & 1) * 8);
            mma_bf16_16816(acc[n], a[ks], b);
            mma_bf16_16816(acc[n + 1], a[ks], b + 2);
        }
    }
}

// out[d] (16 x HEAD_DIM) += P(16 x 64, fp32 accumulator layout) . S where S is a smem tile
// [64 rows][HEAD_DIM]. The accumulator layout of P is exactly the A-fragment layout once
// packed to bf16, so P never leaves registers; B fragments come from transposing ldmatrix loads
// (matrix i covers tile rows kk*16 + (i%2)*8.., head columns (n + i/2)*8..).
__device__ __forceinline__ void mma_p_x_tile(float (&out)[DTILES][4], const float (&p)[NTILES][4], const bf16* s, int lane)
{
    const int mi = lane >> 3, mr = lane & 7;
    #pragma unroll
    for (int kk = 0; kk < TILE / 16; kk++) {
        u32 a[4];
        a[0] = pack_bf16x2(p[2 * kk][0], p[2 * kk][1]);
        a[1] = pack_bf16x2(p[2 * kk][2], p[2 * kk][3]);
        a[2] = pack_bf16x2(p[2 * kk + 1][0], p[2 * kk + 1][1]);
        a[3] = pack_bf16x2(p[2 * kk + 1][2], p[2 * kk + 1][3]);
        #pragma unroll
        for (int n = 0; n < DTILES; n += 2) {
            u32 b[4];
            ldmatrix_x4_trans(b, s + (kk * 16 + (mi & 1) * 8 + mr) * LDS + (n + (mi >> 1)) * 8);
            mma_bf16_16816(out[n], a, b);
            mma_bf16_16816(out[n + 1], a, b + 2);
        }
    }
}

// Two 16-row groups per warp share every B fragment: acc[m][n] = A[m] . S^T.
__device__ __forceinline__ void mma_rows2_x_tile(float (&acc)[2][NTILES][4], const u32 (&a)[2][KSTEPS][4], const bf16* s, int lane)
{
    const int mi = lane >> 3, mr = lane & 7;
    #pragma unroll
    for (int m = 0; m < 2; m++)
        #pragma unroll
        for (int n = 0; n < NTILES; n++) acc[m][n][0] = acc[m][n][1] = acc[m][n][2] = acc[m][n][3] = 0.f;
    #pragma unroll
    for (int n = 0; n < NTILES; n += 2) {
        #pragma unroll
        for (int ks = 0; ks < KSTEPS; ks++) {
            u32 b[4];
            ldmatrix_x4(b, s + ((n + (mi >> 1)) * 8 + mr) * LDS + ks * 16 + (mi & 1) * 8);
            #pragma unroll
            for (int m = 0; m < 2; m++) {
                mma_bf16_16816(acc[m][n], a[m][ks], b);
                mma_bf16_16816(acc[m][n + 1], a[m][ks], b + 2);
            }
        }
    }
}

// out[m] += P[m] . S for two 16-row groups sharing the B fragments.
__device__ __forceinline__ void mma_p2_x_tile(float (&out)[2][DTILES][4], const float (&p)[2][NTILES][4], const bf16* s, int lane)
{
    const int mi = lane >> 3, mr = lane & 7;
    #pragma unroll
    for (int kk = 0; kk < TILE / 16; kk++) {
        u32 a[2][4];
        #pragma unroll
        for (int m = 0; m < 2; m++) {
            a[m][0] = pack_bf16x2(p[m][2 * kk][0], p[m][2 * kk][1]);
            a[m][1] = pack_bf16x2(p[m][2 * kk][2], p[m][2 * kk][3]);
            a[m][2] = pack_bf16x2(p[m][2 * kk + 1][0], p[m][2 * kk + 1][1]);
            a[m][3] = pack_bf16x2(p[m][2 * kk + 1][2], p[m][2 * kk + 1][3]);
        }
        #pragma unroll
        for (int n = 0; n < DTILES; n += 2) {
            u32 b[4];
            ldmatrix_x4_trans(b, s + (kk * 16 + (mi & 1) * 8 + mr) * LDS + (n + (mi >> 1)) * 8);
            #pragma unroll
            for (int m = 0; m < 2; m++) {
                mma_bf16_16816(out[m][n], a[m], b);
                mma_bf16_16816(out[m][n + 1], a[m], b + 2);
            }
        }
    }
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

// grid (ceil(T/64), Hq, B), 128 threads: each warp owns 16 query rows of the tile. K/V tiles
// are double-buffered: the next tile's cp.async copies run while this one is multiplied.
extern "C" __global__ void __launch_bounds__(128) attention_forward(bf16* __restrict__ out, float* __restrict__ lse,
    const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, int T, int Hq, int Hkv, float scale)
{
    extern __shared__ __align__(16) bf16 smem[];  // Q, then 2 x (K, V): 5 tiles
    bf16* sQ = smem;
    bf16* sKV = smem + TILE * LDS;

    const int tiles = (T + TILE - 1) / TILE;
    const int qt = tiles - 1 - blockIdx.x;  // the longest (last) tiles first
    const int h = blockIdx.y, b = blockIdx.z, hk = h / (Hq / Hkv);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const size_t qs = (size_t)Hq * HEAD_DIM, ks = (size_t)Hkv * HEAD_DIM;
    const bf16* qb = q + (size_t)b * T * qs + (size_t)h * HEAD_DIM;
    const bf16* kb = k + (size_t)b * T * ks + (size_t)hk * HEAD_DIM;
    const bf16* vb = v + (size_t)b * T * ks + (size_t)hk * HEAD_DIM;
    const int q0 = qt * TILE;
    const int row0 = q0 + warp * 16 + g, row1 = row0 + 8;

    load_tile_async(sQ, qb, qs, q0, T);
    load_tile_async(sKV, kb, ks, 0, T);
    load_tile_async(sKV + TILE * LDS, vb, ks, 0, T);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    u32 qf[KSTEPS][4];
    load_a_frags(qf, sQ, warp * 16, g, t4);

    float o[DTILES][4];
    #pragma unroll
    for (int n = 0; n < DTILES; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
    float m0 = FT_NEG_INF, m1 = FT_NEG_INF, l0 = 0.f, l1 = 0.f;
    const float sl2 = scale * LOG2E;
    const int kv_tiles = (min(T, q0 + TILE) + TILE - 1) / TILE;

    for (int j = 0; j < kv_tiles; j++) {
        const int k0 = j * TILE;
        const bf16* sK = sKV + (j & 1) * 2 * TILE * LDS;
        const bf16* sV = sK + TILE * LDS;
        if (j + 1 < kv_tiles) {
            bf16* nK = sKV + ((j + 1) & 1) * 2 * TILE * LDS;
            load_tile_async(nK, kb, ks, k0 + TILE, T);
            load_tile_async(nK + TILE * LDS, vb, ks, k0 + TILE, T);
        }
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();

        float s[NTILES][4];
        mma_rows_x_tile(s, qf, sK, lane);
        const bool edge = k0 + TILE > q0 || k0 + TILE > T;
        float mx0 = FT_NEG_INF, mx1 = FT_NEG_INF;
        #pragma unroll
        for (int n = 0; n < NTILES; n++) {
            #pragma unroll
            for (int e = 0; e < 4; e++) {
                const int key = k0 + n * 8 + 2 * t4 + (e & 1);
                const int row = e < 2 ? row0 : row1;
                float x = s[n][e] * sl2;
                if (edge && (key > row || key >= T)) x = FT_NEG_INF;
                s[n][e] = x;
            }
            mx0 = fmaxf(mx0, fmaxf(s[n][0], s[n][1]));
            mx1 = fmaxf(mx1, fmaxf(s[n][2], s[n][3]));
        }
        const float nm0 = fmaxf(m0, quad_max(mx0)), nm1 = fmaxf(m1, quad_max(mx1));
        const float base0 = nm0 == FT_NEG_INF ? 0.f : nm0, base1 = nm1 == FT_NEG_INF ? 0.f : nm1;
        const float alpha0 = exp2f(m0 - base0), alpha1 = exp2f(m1 - base1);
        float sum0 = 0.f, sum1 = 0.f;
        #pragma unroll
        for (int n = 0; n < NTILES; n++) {
            s[n][0] = exp2f(s[n][0] - base0);
            s[n][1] = exp2f(s[n][1] - base0);
            s[n][2] = exp2f(s[n][2] - base1);
            s[n][3] = exp2f(s[n][3] - base1);
            sum0 += s[n][0] + s[n][1];
            sum1 += s[n][2] + s[n][3];
        }
        l0 = l0 * alpha0 + sum0;
        l1 = l1 * alpha1 + sum1;
        m0 = nm0;
        m1 = nm1;
        #pragma unroll
        for (int n = 0; n < DTILES; n++) {
            o[n][0] *= alpha0; o[n][1] *= alpha0;
            o[n][2] *= alpha1; o[n][3] *= alpha1;
        }
        mma_p_x_tile(o, s, sV, lane);
        __syncthreads();  // this buffer is refilled two tiles on
    }

    l0 = quad_sum(l0);
    l1 = quad_sum(l1);
    const float inv0 = 1.f / l0, inv1 = 1.f / l1;
    bf16* ob = out + (size_t)b * T * qs + (size_t)h * HEAD_DIM;
    #pragma unroll
    for (int n = 0; n < DTILES; n++) {
        if (row0 < T) *(u32*)(ob + (size_t)row0 * qs + n * 8 + 2 * t4) = pack_bf16x2(o[n][0] * inv0, o[n][1] * inv0);
        if (row1 < T) *(u32*)(ob + (size_t)row1 * qs + n * 8 + 2 * t4) = pack_bf16x2(o[n][2] * inv1, o[n][3] * inv1);
    }
    if (t4 == 0) {
        float* lb = lse + ((size_t)b * Hq + h) * T;
        if (row0 < T) lb[row0] = (m0 + log2f(l0)) * LN2;
        if (row1 < T) lb[row1] = (m1 + log2f(l1)) * LN2;
    }
}

// The same with twice the query rows per block (for head_dim <= 64, where the registers allow):
// grid (ceil(T/128), Hq, B), 128 threads: a block owns 128 query rows, each warp 32 (two
// 16-row groups that share every K/V fragment it loads). K/V tiles of 64 keys are
// double-buffered: the next tile's cp.async copies run while this one is multiplied.
#define QTILE 128
extern "C" __global__ void __launch_bounds__(128) attention_forward_wide(bf16* __restrict__ out, float* __restrict__ lse,
    const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, int T, int Hq, int Hkv, float scale)
{
    extern __shared__ __align__(16) bf16 smem[];  // Q (128 rows), then 2 x (K, V) of 64 rows
    bf16* sQ = smem;
    bf16* sKV = smem + QTILE * LDS;

    const int tiles = (T + QTILE - 1) / QTILE;
    const int qt = tiles - 1 - blockIdx.x;  // the longest (last) tiles first
    const int h = blockIdx.y, b = blockIdx.z, hk = h / (Hq / Hkv);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const size_t qs = (size_t)Hq * HEAD_DIM, ks = (size_t)Hkv * HEAD_DIM;
    const bf16* qb = q + (size_t)b * T * qs + (size_t)h * HEAD_DIM;
    const bf16* kb = k + (size_t)b * T * ks + (size_t)hk * HEAD_DIM;
    const bf16* vb = v + (size_t)b * T * ks + (size_t)hk * HEAD_DIM;
    const int q0 = qt * QTILE;
    int rows[2][2];
    #pragma unroll
    for (int m = 0; m < 2; m++) { rows[m][0] = q0 + warp * 32 + m * 16 + g; rows[m][1] = rows[m][0] + 8; }

    load_tile_async<QTILE>(sQ, qb, qs, q0, T);
    load_tile_async(sKV, kb, ks, 0, T);
    load_tile_async(sKV + TILE * LDS, vb, ks, 0, T);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    u32 qf[2][KSTEPS][4];
    load_a_frags(qf[0], sQ, warp * 32, g, t4);
    load_a_frags(qf[1], sQ, warp * 32 + 16, g, t4);

    float o[2][DTILES][4];
    float mrow[2][2], lrow[2][2];
    #pragma unroll
    for (int m = 0; m < 2; m++) {
        #pragma unroll
        for (int n = 0; n < DTILES; n++) o[m][n][0] = o[m][n][1] = o[m][n][2] = o[m][n][3] = 0.f;
        mrow[m][0] = mrow[m][1] = FT_NEG_INF;
        lrow[m][0] = lrow[m][1] = 0.f;
    }
    const float sl2 = scale * LOG2E;
    const int kv_tiles = (min(T, q0 + QTILE) + TILE - 1) / TILE;

    for (int j = 0; j < kv_tiles; j++) {
        const int k0 = j * TILE;
        const bf16* sK = sKV + (j & 1) * 2 * TILE * LDS;
        const bf16* sV = sK + TILE * LDS;
        if (j + 1 < kv_tiles) {
            bf16* nK = sKV + ((j + 1) & 1) * 2 * TILE * LDS;
            load_tile_async(nK, kb, ks, k0 + TILE, T);
            load_tile_async(nK + TILE * LDS, vb, ks, k0 + TILE, T);
        }
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();

        float s[2][NTILES][4];
        mma_rows2_x_tile(s, qf, sK, lane);
        const bool edge = k0 + TILE > q0 || k0 + TILE > T;
        #pragma unroll
        for (int m = 0; m < 2; m++) {
            float mx0 = FT_NEG_INF, mx1 = FT_NEG_INF;
            #pragma unroll
            for (int n = 0; n < NTILES; n++) {
                #pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int key = k0 + n * 8 + 2 * t4 + (e & 1);
                    const int row = rows[m][e >> 1];
                    float x = s[m][n][e] * sl2;
                    if (edge && (key > row || key >= T)) x = FT_NEG_INF;
                    s[m][n][e] = x;
                }
                mx0 = fmaxf(mx0, fmaxf(s[m][n][0], s[m][n][1]));
                mx1 = fmaxf(mx1, fmaxf(s[m][n][2], s[m][n][3]));
            }
            const float nm0 = fmaxf(mrow[m][0], quad_max(mx0)), nm1 = fmaxf(mrow[m][1], quad_max(mx1));
            const float base0 = nm0 == FT_NEG_INF ? 0.f : nm0, base1 = nm1 == FT_NEG_INF ? 0.f : nm1;
            const float alpha0 = exp2f(mrow[m][0] - base0), alpha1 = exp2f(mrow[m][1] - base1);
            float sum0 = 0.f, sum1 = 0.f;
            #pragma unroll
            for (int n = 0; n < NTILES; n++) {
                s[m][n][0] = exp2f(s[m][n][0] - base0);
                s[m][n][1] = exp2f(s[m][n][1] - base0);
                s[m][n][2] = exp2f(s[m][n][2] - base1);
                s[m][n][3] = exp2f(s[m][n][3] - base1);
                sum0 += s[m][n][0] + s[m][n][1];
                sum1 += s[m][n][2] + s[m][n][3];
            }
            lrow[m][0] = lrow[m][0] * alpha0 + sum0;
            lrow[m][1] = lrow[m][1] * alpha1 + sum1;
            mrow[m][0] = nm0;
            mrow[m][1] = nm1;
            #pragma unroll
            for (int n = 0; n < DTILES; n++) {
                o[m][n][0] *= alpha0; o[m][n][1] *= alpha0;
                o[m][n][2] *= alpha1; o[m][n][3] *= alpha1;
            }
        }
        mma_p2_x_tile(o, s, sV, lane);
        __syncthreads();  // this buffer is refilled two tiles on
    }

    bf16* ob = out + (size_t)b * T * qs + (size_t)h * HEAD_DIM;
    float* lb = lse + ((size_t)b * Hq + h) * T;
    #pragma unroll
    for (int m = 0; m < 2; m++) {
        const float l0 = quad_sum(lrow[m][0]), l1 = quad_sum(lrow[m][1]);
        const float inv0 = 1.f / l0, inv1 = 1.f / l1;
        const int row0 = rows[m][0], row1 = rows[m][1];
        #pragma unroll
        for (int n = 0; n < DTILES; n++) {
            if (row0 < T) *(u32*)(ob + (size_t)row0 * qs + n * 8 + 2 * t4) = pack_bf16x2(o[m][n][0] * inv0, o[m][n][1] * inv0);
            if (row1 < T) *(u32*)(ob + (size_t)row1 * qs + n * 8 + 2 * t4) = pack_bf16x2(o[m][n][2] * inv1, o[m][n][3] * inv1);
        }
        if (t4 == 0) {
            if (row0 < T) lb[row0] = (mrow[m][0] + log2f(l0)) * LN2;
            if (row1 < T) lb[row1] = (mrow[m][1] + log2f(l1)) * LN2;
        }
    }
}

// delta[b,h,t] = sum_d dO[b,t,h,d] * O[b,t,h,d]; one warp per (b, t, h).
extern "C" __global__ void attention_backward_delta(float* __restrict__ delta, const bf16* __restrict__ dout,
    const bf16* __restrict__ out, int B, int T, int Hq)
{
    const size_t idx = (size_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (idx >= (size_t)B * T * Hq) return;
    const size_t h = idx % Hq, t = (idx / Hq) % T, b = idx / ((size_t)Hq * T);
    const bf16* d = dout + idx * HEAD_DIM;
    const bf16* o = out + idx * HEAD_DIM;
    float s = 0.f;
    for (int i = lane; i < HEAD_DIM; i += 32) s += bf2f(d[i]) * bf2f(o[i]);
    s = warp_sum(s);
    if (lane == 0) delta[(b * Hq + h) * T + t] = s;
}

// dK, dV for one key tile of one kv head: grid (ceil(T/64), Hkv, B), 128 threads, each warp
// owns 16 keys. Walks the query heads of the group and the query tiles at or after the key
// tile (causal) in a fixed order, accumulating in registers: S^T = K Q^T, P^T = exp(S^T - lse),
// dP^T = V dO^T, dS^T = P^T (dP^T - delta), dV += P^T dO, dK += dS^T Q. The next (Q, dO, lse,
// delta) tile is copied asynchronously while this one is used.
extern "C" __global__ void __launch_bounds__(128) attention_backward_dkv(bf16* __restrict__ dk, bf16* __restrict__ dv,
    const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, const bf16* __restrict__ dout,
    const float* __restrict__ lse, const float* __restrict__ delta, int T, int Hq, int Hkv, float scale)
{
    extern __shared__ __align__(16) bf16 smem[];  // 2 x (Q, dO) tiles, then 2 x (lse, delta) rows
    float* sStat = (float*)(smem + 4 * TILE * LDS);

    const int kt = blockIdx.x, hk = blockIdx.y, b = blockIdx.z;
    const int group = Hq / Hkv;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const size_t qs = (size_t)Hq * HEAD_DIM, ks = (size_t)Hkv * HEAD_DIM;
    const int k0 = kt * TILE;
    const int key0 = k0 + warp * 16 + g, key1 = key0 + 8;
    const float sl2 = scale * LOG2E;
    const int tiles = (T + TILE - 1) / TILE;
    const int nq = tiles - kt;          // query tiles at or after this key tile
    const int steps = group * nq;

    auto issue = [&](int it) {
        const int buf = it & 1;
        const int h = hk * group + it / nq, q0 = (kt + it % nq) * TILE;
        bf16* sQ = smem + buf * 2 * TILE * LDS;
        load_tile_async(sQ, q + (size_t)b * T * qs + (size_t)h * HEAD_DIM, qs, q0, T);
        load_tile_async(sQ + TILE * LDS, dout + (size_t)b * T * qs + (size_t)h * HEAD_DIM, qs, q0, T);
        const float* lb = lse + ((size_t)b * Hq + h) * T;
        const float* deb = delta + ((size_t)b * Hq + h) * T;
        float* st = sStat + buf * 2 * TILE;
        for (int i = threadIdx.x; i < TILE; i += blockDim.x) {
            const bool ok = q0 + i < T;
            cp_async4(st + i, ok ? lb + q0 + i : lb, ok);
            cp_async4(st + TILE + i, ok ? deb + q0 + i : deb, ok);
        }
    };

    // This warp's 16 keys and values as A fragments, staged through buffer 1 while step 0 lands in buffer 0.
    u32 kf[KSTEPS][4], vf[KSTEPS][4];
    bf16* stage = smem + 2 * TILE * LDS;
    load_tile_async(stage, k + (size_t)b * T * ks + (size_t)hk * HEAD_DIM, ks, k0, T);
    load_tile_async(stage + TILE * LDS, v + (size_t)b * T * ks + (size_t)hk * HEAD_DIM, ks, k0, T);
    issue(0);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    load_a_frags(kf, stage, warp * 16, g, t4);
    load_a_frags(vf, stage + TILE * LDS, warp * 16, g, t4);
    __syncthreads();

    float dka[DTILES][4], dva[DTILES][4];
    #pragma unroll
    for (int n = 0; n < DTILES; n++)
        #pragma unroll
        for (int e = 0; e < 4; e++) dka[n][e] = dva[n][e] = 0.f;

    for (int it = 0; it < steps; it++) {
        if (it + 1 < steps) issue(it + 1);
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();

        const int q0 = (kt + it % nq) * TILE;
        const bf16* sQ = smem + (it & 1) * 2 * TILE * LDS;
        const bf16* sD = sQ + TILE * LDS;
        const float* sLse = sStat + (it & 1) * 2 * TILE;
        const float* sDelta = sLse + TILE;

        float p[NTILES][4], dp[NTILES][4];
        mma_rows_x_tile(p, kf, sQ, lane);
        mma_rows_x_tile(dp, vf, sD, lane);
        #pragma unroll
        for (int n = 0; n < NTILES; n++) {
            #pragma unroll
            for (int e = 0; e < 4; e++) {
                const int col = n * 8 + 2 * t4 + (e & 1);
                const int query = q0 + col;
                const int key = e < 2 ? key0 : key1;
                const float pr = (query < T && key <= query) ? exp2f(p[n][e] * sl2 - sLse[col] * LOG2E) : 0.f;
                p[n][e] = pr;
                dp[n][e] = pr * (dp[n][e] - sDelta[col]);
            }
        }
        mma_p_x_tile(dva, p, sD, lane);
        mma_p_x_tile(dka, dp, sQ, lane);
        __syncthreads();  // this buffer is refilled two steps on
    }

    bf16* dkb = dk + (size_t)b * T * ks + (size_t)hk * HEAD_DIM;
    bf16* dvb = dv + (size_t)b * T * ks + (size_t)hk * HEAD_DIM;
    #pragma unroll
    for (int n = 0; n < DTILES; n++) {
        const int c = n * 8 + 2 * t4;
        if (key0 < T) {
            *(u32*)(dkb + (size_t)key0 * ks + c) = pack_bf16x2(dka[n][0] * scale, dka[n][1] * scale);
            *(u32*)(dvb + (size_t)key0 * ks + c) = pack_bf16x2(dva[n][0], dva[n][1]);
        }
        if (key1 < T) {
            *(u32*)(dkb + (size_t)key1 * ks + c) = pack_bf16x2(dka[n][2] * scale, dka[n][3] * scale);
            *(u32*)(dvb + (size_t)key1 * ks + c) = pack_bf16x2(dva[n][2], dva[n][3]);
        }
    }
}

// dQ for one query tile of one head: grid (ceil(T/64), Hq, B), 128 threads, each warp owns 16
// queries. Walks the key tiles up to the diagonal (double-buffered): S = Q K^T,
// P = exp(S - lse), dP = dO V^T, dS = P (dP - delta), dQ += dS K.
extern "C" __global__ void __launch_bounds__(128) attention_backward_dq(bf16* __restrict__ dq,
    const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, const bf16* __restrict__ dout,
    const float* __restrict__ lse, const float* __restrict__ delta, int T, int Hq, int Hkv, float scale)
{
    extern __shared__ __align__(16) bf16 smem[];  // 2 x (K, V) tiles
    const int tiles = (T + TILE - 1) / TILE;
    const int qt = tiles - 1 - blockIdx.x;
    const int h = blockIdx.y, b = blockIdx.z, hk = h / (Hq / Hkv);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const size_t qs = (size_t)Hq * HEAD_DIM, ks = (size_t)Hkv * HEAD_DIM;
    const int q0 = qt * TILE;
    const int row0 = q0 + warp * 16 + g, row1 = row0 + 8;
    const float sl2 = scale * LOG2E;
    const bf16* kb = k + (size_t)b * T * ks + (size_t)hk * HEAD_DIM;
    const bf16* vb = v + (size_t)b * T * ks + (size_t)hk * HEAD_DIM;

    // Q and dO are staged through buffer 1 while key tile 0 lands in buffer 0.
    u32 qf[KSTEPS][4], df[KSTEPS][4];
    bf16* stage = smem + 2 * TILE * LDS;
    load_tile_async(stage, q + (size_t)b * T * qs + (size_t)h * HEAD_DIM, qs, q0, T);
    load_tile_async(stage + TILE * LDS, dout + (size_t)b * T * qs + (size_t)h * HEAD_DIM, qs, q0, T);
    load_tile_async(smem, kb, ks, 0, T);
    load_tile_async(smem + TILE * LDS, vb, ks, 0, T);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    load_a_frags(qf, stage, warp * 16, g, t4);
    load_a_frags(df, stage + TILE * LDS, warp * 16, g, t4);
    __syncthreads();

    const float* lb = lse + ((size_t)b * Hq + h) * T;
    const float* deb = delta + ((size_t)b * Hq + h) * T;
    const float lse0 = row0 < T ? lb[row0] * LOG2E : 0.f, lse1 = row1 < T ? lb[row1] * LOG2E : 0.f;
    const float del0 = row0 < T ? deb[row0] : 0.f, del1 = row1 < T ? deb[row1] : 0.f;

    float dqa[DTILES][4];
    #pragma unroll
    for (int n = 0; n < DTILES; n++) dqa[n][0] = dqa[n][1] = dqa[n][2] = dqa[n][3] = 0.f;

    const int kv_tiles = (min(T, q0 + TILE) + TILE - 1) / TILE;
    for (int j = 0; j < kv_tiles; j++) {
        const int k0 = j * TILE;
        if (j + 1 < kv_tiles) {
            bf16* nK = smem + ((j + 1) & 1) * 2 * TILE * LDS;
            load_tile_async(nK, kb, ks, k0 + TILE, T);
            load_tile_async(nK + TILE * LDS, vb, ks, k0 + TILE, T);
        }
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        const bf16* sK = smem + (j & 1) * 2 * TILE * LDS;
        const bf16* sV = sK + TILE * LDS;

        float p[NTILES][4], dp[NTILES][4];
        mma_rows_x_tile(p, qf, sK, lane);
        mma_rows_x_tile(dp, df, sV, lane);
        #pragma unroll
        for (int n = 0; n < NTILES; n++) {
            #pragma unroll
            for (int e = 0; e < 4; e++) {
                const int key = k0 + n * 8 + 2 * t4 + (e & 1);
                const int row = e < 2 ? row0 : row1;
                const float pr = (row < T && key < T && key <= row) ? exp2f(p[n][e] * sl2 - (e < 2 ? lse0 : lse1)) : 0.f;
                dp[n][e] = pr * (dp[n][e] - (e < 2 ? del0 : del1));
            }
        }
        mma_p_x_tile(dqa, dp, sK, lane);
        __syncthreads();
    }

    bf16* dqb = dq + (size_t)b * T * qs + (size_t)h * HEAD_DIM;
    #pragma unroll
    for (int n = 0; n < DTILES; n++) {
        const int c = n * 8 + 2 * t4;
        if (row0 < T) *(u32*)(dqb + (size_t)row0 * qs + c) = pack_bf16x2(dqa[n][0] * scale, dqa[n][1] * scale);
        if (row1 < T) *(u32*)(dqb + (size_t)row1 * qs + c) = pack_bf16x2(dqa[n][2] * scale, dqa[n][3] * scale);
    }
}
