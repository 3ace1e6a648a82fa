// Causal grouped-query attention, flash-attention-2 style: query tiles of 64 rows (16 per warp)
// or 128 rows (32 per warp, two 16-row groups sharing every K/V fragment) against key tiles of
// 64, online softmax in fp32, tensor-core products (mma.m16n8k16 bf16 -> fp32) fed by ldmatrix,
// K/V tiles copied with cp.async into double buffers. Memory is linear in the sequence length:
// only the log-sum-exp per query row is kept for the backward pass, which recomputes the
// probabilities. Deterministic: no atomics; dK/dV of a key tile are accumulated by one block
// that walks every query tile (and every query head of the group) in a fixed order, and dQ by
// another kernel that walks the key tiles.
//
// The inner loops are short on purpose: the tensor cores are fast enough that the per-score
// instructions decide the speed. Scores stay unscaled until one FFMA folds scale*log2(e) and
// the row maximum into the exponent (ex2.approx.ftz, one MUFU op), probabilities are packed to
// bf16 two at a time (cvt.rn.bf16x2, round to nearest even like f2bf), and the causal mask is
// applied only on the tiles that straddle the diagonal or the end of the sequence.
//
// Blocks are launched longest-first: the grid's x runs over (batch, head) and y over tiles, so
// the first wave holds the tiles with the most causal work and the short ones fill the tail.
//
// Layouts (row-major): q, out, dq: [B, T, Hq, HEAD_DIM]; k, v, dk, dv: [B, T, Hkv, HEAD_DIM];
// lse, delta: [B, Hq, T] fp32 (lse in natural log units of the scaled scores).
#include "attention.cuh"

// The forward pass for a block of 64*M query rows (M 16-row groups per warp), 128 threads. QREG
// keeps the warp's Q fragments in registers for the whole pass (head_dim 64); otherwise they are
// re-read from the resident Q tile for every key tile (head_dim 128 with M = 2). The block writes
// output columns [chunk * DCHUNK, +DCHUNK); the chunk-0 block also writes lse. Key tiles wholly
// before the block's sliding window (window = T when there is none) are never loaded.
template <int M, bool QREG>
__device__ __forceinline__ void attention_forward_body(bf16* smem, bf16* __restrict__ out, float* __restrict__ lse,
    const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, int T, int Hq, int Hkv, float scale, int window,
    int bx, int by)
{
    constexpr int QROWS = 64 * M;
    bf16* sQ = smem;                 // QROWS rows
    bf16* sKV = smem + QROWS * LDS;  // 2 x (K, V) tiles of 64 rows

    const int tiles = (T + QROWS - 1) / QROWS;
    const int qt = tiles - 1 - by;  // the longest (last) tiles first
    const int chunk = bx % CHUNKS, bh = bx / CHUNKS, c0 = chunk * DCHUNK;
    const int h = bh % Hq, b = bh / Hq, hk = h / (Hq / Hkv);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const size_t qs = (size_t)Hq * HEAD_DIM, ks = (size_t)Hkv * HEAD_DIM;
    const bf16* qb = q + (size_t)b * T * qs + (size_t)h * HEAD_DIM;
    const bf16* kb = k + (size_t)b * T * ks + (size_t)hk * HEAD_DIM;
    const bf16* vb = v + (size_t)b * T * ks + (size_t)hk * HEAD_DIM;
    const int q0 = qt * QROWS;
    const int wrow = warp * 16 * M;            // the warp's first row in the tile
    const int first = q0 + wrow, last = first + 16 * M - 1;

    const int j0 = max(0, q0 - window + 1) / TILE;  // the first key tile the block's first row sees
    load_tile_async<QROWS>(sQ, qb, qs, q0, T);
    load_tile_async<TILE>(sKV, kb, ks, j0 * TILE, T);
    load_tile_async<TILE>(sKV + TILE * LDS, vb, ks, j0 * TILE, T);
    cp_async_commit();

    u32 qf[QREG ? M : 1][KSTEPS][4];
    float o[M][OTILES][4];
    float mrow[M][2], lrow[M][2];
    #pragma unroll
    for (int m = 0; m < M; m++) {
        #pragma unroll
        for (int n = 0; n < OTILES; n++) o[m][n][0] = o[m][n][1] = o[m][n][2] = o[m][n][3] = 0.f;
        mrow[m][0] = mrow[m][1] = FT_NEG_INF;
        lrow[m][0] = lrow[m][1] = 0.f;
    }
    const float sl2 = scale * LOG2E;
    const int kv_tiles = (min(T, q0 + QROWS) + TILE - 1) / TILE;

    for (int j = j0; j < kv_tiles; j++) {
        const int k0 = j * TILE, buf = (j - j0) & 1;
        const bf16* sK = sKV + buf * 2 * TILE * LDS;
        const bf16* sV = sK + TILE * LDS;
        if (j + 1 < kv_tiles) {
            bf16* nK = sKV + (buf ^ 1) * 2 * TILE * LDS;
            load_tile_async<TILE>(nK, kb, ks, k0 + TILE, T);
            load_tile_async<TILE>(nK + TILE * LDS, vb, ks, k0 + TILE, T);
        }
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        if (QREG && j == j0) load_a_frags<QREG ? M : 1>(qf, sQ, wrow, lane);

        // Warp-uniform: a tile whose first key is after the warp's last row, or whose last key is
        // before the window of the warp's first row, adds nothing.
        if (k0 <= last && k0 + TILE - 1 > first - window) {
            float s[M][NTILES][4];
            if constexpr (QREG) mma_a_x_tile<M>(s, qf, sK, lane);
            else mma_smem_x_tile<M>(s, sQ, wrow, sK, lane);
            if (k0 + TILE - 1 > first || k0 + TILE > T || last - k0 >= window) softmax_tile<M, true>(s, mrow, lrow, o, k0, first + g, t4, T, window, sl2);
            else softmax_tile<M, false>(s, mrow, lrow, o, k0, first + g, t4, T, window, sl2);
            mma_p_x_tile<M>(o, s, sV, c0, lane);
        }
        __syncthreads();  // this buffer is refilled two tiles on
    }

    bf16* ob = out + (size_t)b * T * qs + (size_t)h * HEAD_DIM;
    float* lb = lse + ((size_t)b * Hq + h) * T;
    #pragma unroll
    for (int m = 0; m < M; m++) {
        const float l0 = quad_sum(lrow[m][0]), l1 = quad_sum(lrow[m][1]);
        const float inv0 = 1.f / l0, inv1 = 1.f / l1;
        const int row0 = first + m * 16 + g, row1 = row0 + 8;
        #pragma unroll
        for (int n = 0; n < OTILES; n++) {
            if (row0 < T) *(u32*)(ob + (size_t)row0 * qs + c0 + n * 8 + 2 * t4) = pack2(o[m][n][0] * inv0, o[m][n][1] * inv0);
            if (row1 < T) *(u32*)(ob + (size_t)row1 * qs + c0 + n * 8 + 2 * t4) = pack2(o[m][n][2] * inv1, o[m][n][3] * inv1);
        }
        if (t4 == 0 && chunk == 0) {
            if (row0 < T) lb[row0] = (mrow[m][0] * sl2 + log2f(l0)) * LN2;
            if (row1 < T) lb[row1] = (mrow[m][1] * sl2 + log2f(l1)) * LN2;
        }
    }
}

// grid (B * Hq * CHUNKS, ceil(T/64)), 128 threads: 64 query rows per block, 16 per warp.
// Shared memory: the query tile and two (K, V) buffers, 5 tiles of 64 rows.
extern "C" __global__ void __launch_bounds__(THREADS) attention_forward(bf16* __restrict__ out, float* __restrict__ lse,
    const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, int T, int Hq, int Hkv, float scale, int window)
{
    extern __shared__ __align__(16) bf16 smem[];
    attention_forward_body<1, HEAD_DIM <= 128>(smem, out, lse, q, k, v, T, Hq, Hkv, scale, window, blockIdx.x, blockIdx.y);
}

// grid (B * Hq * CHUNKS, ceil(T/128)), 128 threads: 128 query rows per block, 32 per warp, sharing
// each K/V fragment between two 16-row groups. Shared memory: 6 tiles of 64 rows.
extern "C" __global__ void __launch_bounds__(THREADS) attention_forward_wide(bf16* __restrict__ out, float* __restrict__ lse,
    const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, int T, int Hq, int Hkv, float scale, int window)
{
    extern __shared__ __align__(16) bf16 smem[];
    attention_forward_body<2, HEAD_DIM <= 64>(smem, out, lse, q, k, v, T, Hq, Hkv, scale, window, blockIdx.x, blockIdx.y);
}

// One row's sum_d dO * O over HEAD_DIM/8 lanes of a warp: each lane's 8 values in a fixed FMA chain,
// then a butterfly over the lanes, the same order in every kernel that needs delta. Lanes of a row
// past the end (!valid) take part in the shuffle with 0.
__device__ __forceinline__ float delta_row_sum(const bf16* __restrict__ dout, const bf16* __restrict__ out, size_t row, int part, bool valid)
{
    constexpr int LPR = HEAD_DIM / 8;
    float s = 0.f;
    if (valid) {
        const uint4 d = *(const uint4*)(dout + row * HEAD_DIM + part * 8);
        const uint4 o = *(const uint4*)(out + row * HEAD_DIM + part * 8);
        s = lo_f(d.x) * lo_f(o.x);
        s = fmaf(hi_f(d.x), hi_f(o.x), s);
        s = fmaf(lo_f(d.y), lo_f(o.y), s);
        s = fmaf(hi_f(d.y), hi_f(o.y), s);
        s = fmaf(lo_f(d.z), lo_f(o.z), s);
        s = fmaf(hi_f(d.z), hi_f(o.z), s);
        s = fmaf(lo_f(d.w), lo_f(o.w), s);
        s = fmaf(hi_f(d.w), hi_f(o.w), s);
    }
    #pragma unroll
    for (int off = LPR / 2; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    return s;
}

// delta[b,h,t] = sum_d dO[b,t,h,d] * O[b,t,h,d]. Each thread reads 16 bytes of both (8 values);
// the HEAD_DIM/8 threads of a row sum in a fixed butterfly order.
extern "C" __global__ void attention_backward_delta(float* __restrict__ delta, const bf16* __restrict__ dout,
    const bf16* __restrict__ out, int B, int T, int Hq)
{
    constexpr int LPR = HEAD_DIM / 8;
    const size_t gid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const size_t row = gid / LPR, rows = (size_t)B * T * Hq;
    const int part = (int)(gid % LPR);
    const float s = delta_row_sum(dout, out, row, part, row < rows);
    if (row < rows && part == 0) {
        const size_t h = row % Hq, t = (row / Hq) % T, bb = row / ((size_t)Hq * T);
        delta[(bb * Hq + h) * T + t] = s;
    }
}

// Queues step `it` of a dK/dV block into buffer it & 1 (2 x (Q, dO) tiles, then 2 x (lse, delta)
// rows at sStat): steps run over the group's query heads (from h0), and within a head over the nq
// query tiles from qt0.
__device__ __forceinline__ void dkv_issue(bf16* smem, float* sStat, int it, int nq, int qt0, int h0, int b,
    const bf16* __restrict__ q, const bf16* __restrict__ dout, const float* __restrict__ lse, const float* __restrict__ delta, int T, int Hq)
{
    const size_t qs = (size_t)Hq * HEAD_DIM;
    const int buf = it & 1;
    const int h = h0 + it / nq, q0 = (qt0 + it % nq) * TILE;
    bf16* sQ = smem + buf * 2 * TILE * LDS;
    load_tile_async<TILE>(sQ, q + (size_t)b * T * qs + (size_t)h * HEAD_DIM, qs, q0, T);
    load_tile_async<TILE>(sQ + TILE * LDS, dout + (size_t)b * T * qs + (size_t)h * HEAD_DIM, qs, q0, T);
    dkv_issue_stats(sStat, buf, b, h, q0, lse, delta, T, Hq);
}

// dK, dV for one key tile of one kv head: grid (B * Hkv, ceil(T/64)), 128 threads, each warp
// owns 16 keys; key tile 0 (the most work) first. Walks the query heads of the group and the
// query tiles at or after the key tile (causal) in a fixed order, accumulating in registers:
// S^T = K Q^T, P^T = exp(S^T - lse), dP^T = V dO^T, dS^T = P^T (dP^T - delta), dV += P^T dO,
// dK += dS^T Q. The next (Q, dO, lse, delta) tile is copied asynchronously while this one is used.
//
// At head_dim 64 the warp's K and V fragments live in registers; above it the registers cannot
// hold them next to the dK/dV accumulators, so K and V stay resident in shared memory and the
// fragments are re-read for every step (KVREG false).
//
// bx runs over (batch, kv head, chunk): the block accumulates dK and dV columns [chunk * DCHUNK,
// +DCHUNK). On a sliding-window layer (window < T) only the query tiles that see a key of the
// tile are walked.
#define KVREG (HEAD_DIM <= 64)
__device__ __forceinline__ void backward_dkv_body(bf16* smem, int bx, int by, bf16* __restrict__ dk, bf16* __restrict__ dv,
    const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, const bf16* __restrict__ dout,
    const float* __restrict__ lse, const float* __restrict__ delta, int T, int Hq, int Hkv, float scale, int window)
{
    // 2 x (Q, dO) tiles, [K, V tiles when !KVREG], then 2 x (lse, delta) rows
    bf16* sKres = smem + 4 * TILE * LDS;
    float* sStat = (float*)(smem + (KVREG ? 4 : 6) * TILE * LDS);

    const int chunk = bx % CHUNKS, c0 = chunk * DCHUNK;
    bx /= CHUNKS;
    const int kt = by, hk = bx % Hkv, b = bx / Hkv;
    const int group = Hq / Hkv;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const size_t qs = (size_t)Hq * HEAD_DIM, ks = (size_t)Hkv * HEAD_DIM;
    const int k0 = kt * TILE;
    const int key0 = k0 + warp * 16 + g, key1 = key0 + 8;
    const float sl2 = scale * LOG2E;
    // Query tiles from this key tile to the last one whose rows see one of its keys.
    const int qt0 = kt, nq = min(T - 1, k0 + TILE - 2 + window) / TILE - kt + 1;
    const int steps = group * nq;


    // This warp's 16 keys and values as A fragments, staged through buffer 1 while step 0 lands
    // in buffer 0 (KVREG), or the K and V tiles kept resident.
    u32 kf[1][KSTEPS][4], vf[1][KSTEPS][4];
    bf16* stage = KVREG ? smem + 2 * TILE * LDS : sKres;
    load_tile_async<TILE>(stage, k + (size_t)b * T * ks + (size_t)hk * HEAD_DIM, ks, k0, T);
    load_tile_async<TILE>(stage + TILE * LDS, v + (size_t)b * T * ks + (size_t)hk * HEAD_DIM, ks, k0, T);
    dkv_issue(smem, sStat, 0, nq, qt0, hk * group, b, q, dout, lse, delta, T, Hq);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    if constexpr (KVREG) {
        load_a_frags<1>(kf, stage, warp * 16, lane);
        load_a_frags<1>(vf, stage + TILE * LDS, warp * 16, lane);
        __syncthreads();
    }

    float dka[1][OTILES][4], dva[1][OTILES][4];
    #pragma unroll
    for (int n = 0; n < OTILES; n++)
        #pragma unroll
        for (int e = 0; e < 4; e++) dka[0][n][e] = dva[0][n][e] = 0.f;

    for (int it = 0; it < steps; it++) {
        if (it + 1 < steps) dkv_issue(smem, sStat, it + 1, nq, qt0, hk * group, b, q, dout, lse, delta, T, Hq);
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();

        const int q0 = (kt + it % nq) * TILE;
        const bf16* sQ = smem + (it & 1) * 2 * TILE * LDS;
        const bf16* sD = sQ + TILE * LDS;
        const float* sLse = sStat + (it & 1) * 2 * TILE;
        const float* sDelta = sLse + TILE;

        float p[1][NTILES][4], dp[1][NTILES][4];
        if constexpr (KVREG) {
            mma_a_x_tile<1>(p, kf, sQ, lane);
            mma_a_x_tile<1>(dp, vf, sD, lane);
        } else {
            mma_smem_x_tile<1>(p, sKres, warp * 16, sQ, lane);
            mma_smem_x_tile<1>(dp, sKres + TILE * LDS, warp * 16, sD, lane);
        }
        // The lse (log2 units, negated) and delta of this lane's 16 query columns.
        float nl[NTILES][2], dl[NTILES][2];
        #pragma unroll
        for (int n = 0; n < NTILES; n++) {
            const float2 l2 = *(const float2*)(sLse + n * 8 + 2 * t4);
            const float2 d2 = *(const float2*)(sDelta + n * 8 + 2 * t4);
            nl[n][0] = -l2.x * LOG2E; nl[n][1] = -l2.y * LOG2E;
            dl[n][0] = d2.x; dl[n][1] = d2.y;
        }
        // Only the diagonal tile, the one past the sequence end and those reaching past the window have masked pairs.
        if (q0 == k0 || q0 + TILE > T || q0 + TILE - 1 - k0 >= window) {
            #pragma unroll
            for (int n = 0; n < NTILES; n++) {
                #pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int query = q0 + n * 8 + 2 * t4 + (e & 1);
                    const int key = e < 2 ? key0 : key1;
                    const float pr = (query < T && key <= query && query - key < window) ? ex2(fmaf(p[0][n][e], sl2, nl[n][e & 1])) : 0.f;
                    p[0][n][e] = pr;
                    dp[0][n][e] = pr * (dp[0][n][e] - dl[n][e & 1]);
                }
            }
        } else {
            #pragma unroll
            for (int n = 0; n < NTILES; n++) {
                #pragma unroll
                for (int e = 0; e < 4; e++) {
                    const float pr = ex2(fmaf(p[0][n][e], sl2, nl[n][e & 1]));
                    p[0][n][e] = pr;
                    dp[0][n][e] = pr * (dp[0][n][e] - dl[n][e & 1]);
                }
            }
        }
        mma_p_x_tile<1>(dva, p, sD, c0, lane);
        mma_p_x_tile<1>(dka, dp, sQ, c0, lane);
        __syncthreads();  // this buffer is refilled two steps on
    }

    bf16* dkb = dk + (size_t)b * T * ks + (size_t)hk * HEAD_DIM;
    bf16* dvb = dv + (size_t)b * T * ks + (size_t)hk * HEAD_DIM;
    #pragma unroll
    for (int n = 0; n < OTILES; n++) {
        const int c = c0 + n * 8 + 2 * t4;
        if (key0 < T) {
            *(u32*)(dkb + (size_t)key0 * ks + c) = pack2(dka[0][n][0] * scale, dka[0][n][1] * scale);
            *(u32*)(dvb + (size_t)key0 * ks + c) = pack2(dva[0][n][0], dva[0][n][1]);
        }
        if (key1 < T) {
            *(u32*)(dkb + (size_t)key1 * ks + c) = pack2(dka[0][n][2] * scale, dka[0][n][3] * scale);
            *(u32*)(dvb + (size_t)key1 * ks + c) = pack2(dva[0][n][2], dva[0][n][3]);
        }
    }
}

// dQ for one query tile of one head: grid (B * Hq, ceil(T/64)), 128 threads, each warp owns 16
// queries; the longest (last) tiles first. Walks the key tiles up to the diagonal
// (double-buffered): S = Q K^T, P = exp(S - lse), dP = dO V^T, dS = P (dP - delta), dQ += dS K.
// bx runs over (batch, head, chunk): the block writes dQ columns [chunk * DCHUNK, +DCHUNK). On a
// sliding-window layer the walk starts at the first key tile the block's first row sees. Up to
// head_dim 128 the warp's Q and dO fragments live in registers; above, Q and dO stay resident in
// shared memory (2 more tiles) and are re-read per key tile (QDREG false).
#define QDREG (HEAD_DIM <= 128)
__device__ __forceinline__ void backward_dq_body(bf16* smem, int bx, int by, bf16* __restrict__ dq,
    const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, const bf16* __restrict__ dout,
    const float* __restrict__ lse, const float* __restrict__ delta, int T, int Hq, int Hkv, float scale, int window)
{
    // 2 x (K, V) tiles, [Q, dO tiles when !QDREG]
    const int tiles = (T + TILE - 1) / TILE;
    const int qt = tiles - 1 - by;
    const int chunk = bx % CHUNKS, c0 = chunk * DCHUNK;
    bx /= CHUNKS;
    const int h = bx % Hq, b = bx / Hq, hk = h / (Hq / Hkv);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const size_t qs = (size_t)Hq * HEAD_DIM, ks = (size_t)Hkv * HEAD_DIM;
    const int q0 = qt * TILE;
    const int row0 = q0 + warp * 16 + g, row1 = row0 + 8;
    const float sl2 = scale * LOG2E;
    const bf16* kb = k + (size_t)b * T * ks + (size_t)hk * HEAD_DIM;
    const bf16* vb = v + (size_t)b * T * ks + (size_t)hk * HEAD_DIM;

    // Q and dO are staged through buffer 1 while the first key tile lands in buffer 0 (QDREG),
    // or kept resident after the two buffers.
    const int j0 = max(0, q0 - window + 1) / TILE;
    u32 qf[1][KSTEPS][4], df[1][KSTEPS][4];  // unused (and dropped) when !QDREG
    bf16* stage = smem + (QDREG ? 2 : 4) * TILE * LDS;
    load_tile_async<TILE>(stage, q + (size_t)b * T * qs + (size_t)h * HEAD_DIM, qs, q0, T);
    load_tile_async<TILE>(stage + TILE * LDS, dout + (size_t)b * T * qs + (size_t)h * HEAD_DIM, qs, q0, T);
    load_tile_async<TILE>(smem, kb, ks, j0 * TILE, T);
    load_tile_async<TILE>(smem + TILE * LDS, vb, ks, j0 * TILE, T);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    if constexpr (QDREG) {
        load_a_frags<1>(qf, stage, warp * 16, lane);
        load_a_frags<1>(df, stage + TILE * LDS, warp * 16, lane);
        __syncthreads();
    }

    const float* lb = lse + ((size_t)b * Hq + h) * T;
    const float* deb = delta + ((size_t)b * Hq + h) * T;
    // Rows past the sequence end have zero Q and dO, so with lse = delta = 0 they give dS = 0.
    const float nl0 = row0 < T ? -lb[row0] * LOG2E : 0.f, nl1 = row1 < T ? -lb[row1] * LOG2E : 0.f;
    const float del0 = row0 < T ? deb[row0] : 0.f, del1 = row1 < T ? deb[row1] : 0.f;

    float dqa[1][OTILES][4];
    #pragma unroll
    for (int n = 0; n < OTILES; n++) dqa[0][n][0] = dqa[0][n][1] = dqa[0][n][2] = dqa[0][n][3] = 0.f;

    const int kv_tiles = (min(T, q0 + TILE) + TILE - 1) / TILE;
    for (int j = j0; j < kv_tiles; j++) {
        const int k0 = j * TILE, buf = (j - j0) & 1;
        if (j + 1 < kv_tiles) {
            bf16* nK = smem + (buf ^ 1) * 2 * TILE * LDS;
            load_tile_async<TILE>(nK, kb, ks, k0 + TILE, T);
            load_tile_async<TILE>(nK + TILE * LDS, vb, ks, k0 + TILE, T);
        }
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        const bf16* sK = smem + buf * 2 * TILE * LDS;
        const bf16* sV = sK + TILE * LDS;

        float p[1][NTILES][4], dp[1][NTILES][4];
        if constexpr (QDREG) {
            mma_a_x_tile<1>(p, qf, sK, lane);
            mma_a_x_tile<1>(dp, df, sV, lane);
        } else {
            mma_smem_x_tile<1>(p, stage, warp * 16, sK, lane);
            mma_smem_x_tile<1>(dp, stage + TILE * LDS, warp * 16, sV, lane);
        }
        // Only the diagonal tile (the last; it also holds the sequence end) and those reaching
        // before the window have masked pairs.
        if (k0 == q0 || q0 + TILE - 1 - k0 >= window) {
            #pragma unroll
            for (int n = 0; n < NTILES; n++) {
                #pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int key = k0 + n * 8 + 2 * t4 + (e & 1);
                    const int row = e < 2 ? row0 : row1;
                    const float pr = (row < T && key < T && key <= row && row - key < window) ? ex2(fmaf(p[0][n][e], sl2, e < 2 ? nl0 : nl1)) : 0.f;
                    dp[0][n][e] = pr * (dp[0][n][e] - (e < 2 ? del0 : del1));
                }
            }
        } else {
            #pragma unroll
            for (int n = 0; n < NTILES; n++) {
                #pragma unroll
                for (int e = 0; e < 4; e++) {
                    const float pr = ex2(fmaf(p[0][n][e], sl2, e < 2 ? nl0 : nl1));
                    dp[0][n][e] = pr * (dp[0][n][e] - (e < 2 ? del0 : del1));
                }
            }
        }
        mma_p_x_tile<1>(dqa, dp, sK, c0, lane);
        __syncthreads();
    }

    bf16* dqb = dq + (size_t)b * T * qs + (size_t)h * HEAD_DIM;
    #pragma unroll
    for (int n = 0; n < OTILES; n++) {
        const int c = c0 + n * 8 + 2 * t4;
        if (row0 < T) *(u32*)(dqb + (size_t)row0 * qs + c) = pack2(dqa[0][n][0] * scale, dqa[0][n][1] * scale);
        if (row1 < T) *(u32*)(dqb + (size_t)row1 * qs + c) = pack2(dqa[0][n][2] * scale, dqa[0][n][3] * scale);
    }
}

#if HEAD_DIM <= 64  // the 128-row backward kernels (their accumulators do not fit in registers above)
// dQ for 128 query rows of one head: grid (B * Hq, ceil(T/128)), 128 threads, each warp owns 32
// queries (two 16-row groups sharing every K/V fragment, which halves the shared-memory reads per
// tensor-core op of attention_backward_dq); the longest tiles first. Q and dO stay resident in
// shared memory and their fragments are re-read per key tile, which keeps P, dP and the dQ
// accumulators in registers. Used for head_dim <= 64 (one chunk); the sliding window as in backward_dq_body.
__device__ __forceinline__ void backward_dq_wide_body(bf16* smem, int bx, int by, bf16* __restrict__ dq,
    const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, const bf16* __restrict__ dout,
    const float* __restrict__ lse, const float* __restrict__ delta, int T, int Hq, int Hkv, float scale, int window)
{
    constexpr int M = 2, QROWS = 64 * M;
    // Q, dO (QROWS rows each), then 2 x (K, V) tiles
    bf16* sQ = smem;
    bf16* sD = smem + QROWS * LDS;
    bf16* sKV = smem + 2 * QROWS * LDS;
    const int tiles = (T + QROWS - 1) / QROWS;
    const int qt = tiles - 1 - by;
    const int h = bx % Hq, b = bx / Hq, hk = h / (Hq / Hkv);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const size_t qs = (size_t)Hq * HEAD_DIM, ks = (size_t)Hkv * HEAD_DIM;
    const int q0 = qt * QROWS;
    const int wrow = warp * 16 * M, first = q0 + wrow, last = first + 16 * M - 1;
    const float sl2 = scale * LOG2E;
    const bf16* kb = k + (size_t)b * T * ks + (size_t)hk * HEAD_DIM;
    const bf16* vb = v + (size_t)b * T * ks + (size_t)hk * HEAD_DIM;

    const int j0 = max(0, q0 - window + 1) / TILE;
    load_tile_async<QROWS>(sQ, q + (size_t)b * T * qs + (size_t)h * HEAD_DIM, qs, q0, T);
    load_tile_async<QROWS>(sD, dout + (size_t)b * T * qs + (size_t)h * HEAD_DIM, qs, q0, T);
    load_tile_async<TILE>(sKV, kb, ks, j0 * TILE, T);
    load_tile_async<TILE>(sKV + TILE * LDS, vb, ks, j0 * TILE, T);
    cp_async_commit();

    const float* lb = lse + ((size_t)b * Hq + h) * T;
    const float* deb = delta + ((size_t)b * Hq + h) * T;
    // Rows past the sequence end have zero Q and dO, so with lse = delta = 0 they give dS = 0.
    float nl[M][2], dl[M][2];
    #pragma unroll
    for (int m = 0; m < M; m++)
        #pragma unroll
        for (int i = 0; i < 2; i++) {
            const int row = first + m * 16 + i * 8 + g;
            nl[m][i] = row < T ? -lb[row] * LOG2E : 0.f;
            dl[m][i] = row < T ? deb[row] : 0.f;
        }

    float dqa[M][OTILES][4];
    #pragma unroll
    for (int m = 0; m < M; m++)
        #pragma unroll
        for (int n = 0; n < OTILES; n++) dqa[m][n][0] = dqa[m][n][1] = dqa[m][n][2] = dqa[m][n][3] = 0.f;

    const int kv_tiles = (min(T, q0 + QROWS) + TILE - 1) / TILE;
    for (int j = j0; j < kv_tiles; j++) {
        const int k0 = j * TILE, buf = (j - j0) & 1;
        if (j + 1 < kv_tiles) {
            bf16* nK = sKV + (buf ^ 1) * 2 * TILE * LDS;
            load_tile_async<TILE>(nK, kb, ks, k0 + TILE, T);
            load_tile_async<TILE>(nK + TILE * LDS, vb, ks, k0 + TILE, T);
        }
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        const bf16* sK = sKV + buf * 2 * TILE * LDS;
        const bf16* sV = sK + TILE * LDS;

        // Warp-uniform: a tile whose first key is after the warp's last row, or whose last key is
        // before the window of its first row, adds nothing.
        if (k0 <= last && k0 + TILE - 1 > first - window) {
            float p[M][NTILES][4], dp[M][NTILES][4];
            mma_smem_x_tile<M>(p, sQ, wrow, sK, lane);
            if (k0 + TILE - 1 > first || k0 + TILE > T || last - k0 >= window) {
                #pragma unroll
                for (int m = 0; m < M; m++)
                    #pragma unroll
                    for (int n = 0; n < NTILES; n++)
                        #pragma unroll
                        for (int e = 0; e < 4; e++) {
                            const int key = k0 + n * 8 + 2 * t4 + (e & 1);
                            const int row = first + m * 16 + (e >> 1) * 8 + g;
                            p[m][n][e] = (row < T && key < T && key <= row && row - key < window) ? ex2(fmaf(p[m][n][e], sl2, nl[m][e >> 1])) : 0.f;
                        }
            } else {
                #pragma unroll
                for (int m = 0; m < M; m++)
                    #pragma unroll
                    for (int n = 0; n < NTILES; n++)
                        #pragma unroll
                        for (int e = 0; e < 4; e++) p[m][n][e] = ex2(fmaf(p[m][n][e], sl2, nl[m][e >> 1]));
            }
            mma_smem_x_tile<M>(dp, sD, wrow, sV, lane);
            #pragma unroll
            for (int m = 0; m < M; m++)
                #pragma unroll
                for (int n = 0; n < NTILES; n++)
                    #pragma unroll
                    for (int e = 0; e < 4; e++) dp[m][n][e] = p[m][n][e] * (dp[m][n][e] - dl[m][e >> 1]);
            mma_p_x_tile<M>(dqa, dp, sK, 0, lane);
        }
        __syncthreads();
    }

    bf16* dqb = dq + (size_t)b * T * qs + (size_t)h * HEAD_DIM;
    #pragma unroll
    for (int m = 0; m < M; m++) {
        const int row0 = first + m * 16 + g, row1 = row0 + 8;
        #pragma unroll
        for (int n = 0; n < OTILES; n++) {
            const int c = n * 8 + 2 * t4;
            if (row0 < T) *(u32*)(dqb + (size_t)row0 * qs + c) = pack2(dqa[m][n][0] * scale, dqa[m][n][1] * scale);
            if (row1 < T) *(u32*)(dqb + (size_t)row1 * qs + c) = pack2(dqa[m][n][2] * scale, dqa[m][n][3] * scale);
        }
    }
}
#endif

#if HEAD_DIM <= 64
// dK, dV for 128 keys of one kv head: grid (B * Hkv, ceil(T/128)), 128 threads, each warp owns
// 32 keys (two 16-row groups sharing every Q/dO fragment, which halves the shared-memory reads
// per tensor-core op of attention_backward_dkv); key block 0 first. Query tiles of 64 arrive
// double-buffered as there and are consumed 16 queries at a time, so the K/V fragments, the
// dK/dV accumulators and one sub-step's P and dP all fit in registers. Used for head_dim <= 64
// (one chunk); the sliding window as in backward_dkv_body.
__device__ __forceinline__ void backward_dkv_wide_body(bf16* smem, int bx, int by, bf16* __restrict__ dk, bf16* __restrict__ dv,
    const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, const bf16* __restrict__ dout,
    const float* __restrict__ lse, const float* __restrict__ delta, int T, int Hq, int Hkv, float scale, int window)
{
    constexpr int M = 2, KROWS = 64 * M;
    // 2 x (Q, dO) tiles, K and V (KROWS rows each), then 2 x (lse, delta) rows
    bf16* sK = smem + 4 * TILE * LDS;
    bf16* sV = sK + KROWS * LDS;
    float* sStat = (float*)(sV + KROWS * LDS);

    const int kt = by, hk = bx % Hkv, b = bx / Hkv;
    const int group = Hq / Hkv;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const size_t qs = (size_t)Hq * HEAD_DIM, ks = (size_t)Hkv * HEAD_DIM;
    const int k0 = kt * KROWS;
    const int wkey = k0 + warp * 16 * M;  // the warp's first key
    const float sl2 = scale * LOG2E;
    const int qt0 = k0 / TILE;            // the first query tile that can see a key of the block
    const int nq = min(T - 1, k0 + KROWS - 2 + window) / TILE - qt0 + 1;  // to the last one that does
    const int steps = group * nq;


    u32 kf[M][KSTEPS][4], vf[M][KSTEPS][4];
    load_tile_async<KROWS>(sK, k + (size_t)b * T * ks + (size_t)hk * HEAD_DIM, ks, k0, T);
    load_tile_async<KROWS>(sV, v + (size_t)b * T * ks + (size_t)hk * HEAD_DIM, ks, k0, T);
    dkv_issue(smem, sStat, 0, nq, qt0, hk * group, b, q, dout, lse, delta, T, Hq);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    load_a_frags<M>(kf, sK, warp * 16 * M, lane);
    load_a_frags<M>(vf, sV, warp * 16 * M, lane);

    float dka[M][OTILES][4], dva[M][OTILES][4];
    #pragma unroll
    for (int m = 0; m < M; m++)
        #pragma unroll
        for (int n = 0; n < OTILES; n++)
            #pragma unroll
            for (int e = 0; e < 4; e++) dka[m][n][e] = dva[m][n][e] = 0.f;

    for (int it = 0; it < steps; it++) {
        if (it + 1 < steps) dkv_issue(smem, sStat, it + 1, nq, qt0, hk * group, b, q, dout, lse, delta, T, Hq);
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();

        const int q0 = (qt0 + it % nq) * TILE;
        const bf16* sQ = smem + (it & 1) * 2 * TILE * LDS;
        const bf16* sD = sQ + TILE * LDS;
        const float* sLse = sStat + (it & 1) * 2 * TILE;
        const float* sDelta = sLse + TILE;
        // Block-uniform: only query tiles that reach into the key block, past the sequence end or
        // past the window of the block's first key have masked pairs.
        const bool mask = q0 < k0 + KROWS - 1 || q0 + TILE > T || q0 + TILE - 1 - k0 >= window;

        #pragma unroll
        for (int sub = 0; sub < TILE / 16; sub++) {
            const int qs0 = q0 + sub * 16;
            // Warp-uniform: every query of the sub-step is before every key of the warp, or past the window of all of them.
            if (qs0 + 15 < wkey || qs0 - (wkey + 16 * M - 1) >= window) continue;
            float p[M][2][4], dp[M][2][4];
            mma_a_x_rows<M, 2>(p, kf, sQ + sub * 16 * LDS, lane);
            mma_a_x_rows<M, 2>(dp, vf, sD + sub * 16 * LDS, lane);
            float nl[2][2], dl[2][2];
            #pragma unroll
            for (int n = 0; n < 2; n++) {
                const float2 l2 = *(const float2*)(sLse + sub * 16 + n * 8 + 2 * t4);
                const float2 d2 = *(const float2*)(sDelta + sub * 16 + n * 8 + 2 * t4);
                nl[n][0] = -l2.x * LOG2E; nl[n][1] = -l2.y * LOG2E;
                dl[n][0] = d2.x; dl[n][1] = d2.y;
            }
            if (mask) {
                #pragma unroll
                for (int m = 0; m < M; m++)
                    #pragma unroll
                    for (int n = 0; n < 2; n++)
                        #pragma unroll
                        for (int e = 0; e < 4; e++) {
                            const int query = qs0 + n * 8 + 2 * t4 + (e & 1);
                            const int key = wkey + m * 16 + (e >> 1) * 8 + g;
                            const float pr = (query < T && key <= query && query - key < window) ? ex2(fmaf(p[m][n][e], sl2, nl[n][e & 1])) : 0.f;
                            p[m][n][e] = pr;
                            dp[m][n][e] = pr * (dp[m][n][e] - dl[n][e & 1]);
                        }
            } else {
                #pragma unroll
                for (int m = 0; m < M; m++)
                    #pragma unroll
                    for (int n = 0; n < 2; n++)
                        #pragma unroll
                        for (int e = 0; e < 4; e++) {
                            const float pr = ex2(fmaf(p[m][n][e], sl2, nl[n][e & 1]));
                            p[m][n][e] = pr;
                            dp[m][n][e] = pr * (dp[m][n][e] - dl[n][e & 1]);
                        }
            }
            mma_p_x_rows<M, 1>(dva, p, sD + sub * 16 * LDS, 0, lane);
            mma_p_x_rows<M, 1>(dka, dp, sQ + sub * 16 * LDS, 0, lane);
        }
        __syncthreads();  // this buffer is refilled two steps on
    }

    bf16* dkb = dk + (size_t)b * T * ks + (size_t)hk * HEAD_DIM;
    bf16* dvb = dv + (size_t)b * T * ks + (size_t)hk * HEAD_DIM;
    #pragma unroll
    for (int m = 0; m < M; m++) {
        const int key0 = wkey + m * 16 + g, key1 = key0 + 8;
        #pragma unroll
        for (int n = 0; n < OTILES; n++) {
            const int c = n * 8 + 2 * t4;
            if (key0 < T) {
                *(u32*)(dkb + (size_t)key0 * ks + c) = pack2(dka[m][n][0] * scale, dka[m][n][1] * scale);
                *(u32*)(dvb + (size_t)key0 * ks + c) = pack2(dva[m][n][0], dva[m][n][1]);
            }
            if (key1 < T) {
                *(u32*)(dkb + (size_t)key1 * ks + c) = pack2(dka[m][n][2] * scale, dka[m][n][3] * scale);
                *(u32*)(dvb + (size_t)key1 * ks + c) = pack2(dva[m][n][2], dva[m][n][3]);
            }
        }
    }
}
#endif

// The standalone kernels (the benchmark times each stage with them): dK/dV over grid
// (B * Hkv * CHUNKS, key tiles), dQ over grid (B * Hq * CHUNKS, query tiles), as described at
// each body. window: a query sees the window - 1 keys before it (T when the layer is global).
#define BACKWARD_DKV_PARAMS bf16* __restrict__ dk, bf16* __restrict__ dv, const bf16* __restrict__ q, const bf16* __restrict__ k, \
    const bf16* __restrict__ v, const bf16* __restrict__ dout, const float* __restrict__ lse, const float* __restrict__ delta, \
    int T, int Hq, int Hkv, float scale, int window
#define BACKWARD_DQ_PARAMS bf16* __restrict__ dq, const bf16* __restrict__ q, const bf16* __restrict__ k, \
    const bf16* __restrict__ v, const bf16* __restrict__ dout, const float* __restrict__ lse, const float* __restrict__ delta, \
    int T, int Hq, int Hkv, float scale, int window

extern "C" __global__ void __launch_bounds__(THREADS) attention_backward_dkv(BACKWARD_DKV_PARAMS)
{
    extern __shared__ __align__(16) bf16 smem[];
    backward_dkv_body(smem, blockIdx.x, blockIdx.y, dk, dv, q, k, v, dout, lse, delta, T, Hq, Hkv, scale, window);
}

#if HEAD_DIM <= 64
extern "C" __global__ void __launch_bounds__(THREADS) attention_backward_dkv_wide(BACKWARD_DKV_PARAMS)
{
    extern __shared__ __align__(16) bf16 smem[];
    backward_dkv_wide_body(smem, blockIdx.x, blockIdx.y, dk, dv, q, k, v, dout, lse, delta, T, Hq, Hkv, scale, window);
}
#endif

extern "C" __global__ void __launch_bounds__(THREADS) attention_backward_dq(BACKWARD_DQ_PARAMS)
{
    extern __shared__ __align__(16) bf16 smem[];
    backward_dq_body(smem, blockIdx.x, blockIdx.y, dq, q, k, v, dout, lse, delta, T, Hq, Hkv, scale, window);
}

#if HEAD_DIM <= 64
extern "C" __global__ void __launch_bounds__(THREADS) attention_backward_dq_wide(BACKWARD_DQ_PARAMS)
{
    extern __shared__ __align__(16) bf16 smem[];
    backward_dq_wide_body(smem, blockIdx.x, blockIdx.y, dq, q, k, v, dout, lse, delta, T, Hq, Hkv, scale, window);
}
#endif

// The whole backward pass after delta in one launch: a 1-D grid whose first kvX * kvY blocks are
// the dK/dV blocks and the rest (qX per row of query tiles) the dQ blocks, each kind row-major
// in the order of its standalone grid, so the longest come first. A dK/dV block walks every
// later query tile of its group and outlasts any dQ block, so the short dQ blocks fill the tail
// that the dK/dV blocks leave (two launches would each leave their own). Shared memory: the
// larger of the two kinds' needs.
extern "C" __global__ void __launch_bounds__(THREADS) attention_backward_fused(bf16* __restrict__ dq, BACKWARD_DKV_PARAMS, int kvX, int kvY, int qX)
{
    extern __shared__ __align__(16) bf16 smem[];
    const int bid = blockIdx.x, kvBlocks = kvX * kvY;
    if (bid < kvBlocks) backward_dkv_body(smem, bid % kvX, bid / kvX, dk, dv, q, k, v, dout, lse, delta, T, Hq, Hkv, scale, window);
    else backward_dq_body(smem, (bid - kvBlocks) % qX, (bid - kvBlocks) / qX, dq, q, k, v, dout, lse, delta, T, Hq, Hkv, scale, window);
}

#if HEAD_DIM <= 64
// The same with the 128-row kernels (head_dim <= 64).
extern "C" __global__ void __launch_bounds__(THREADS) attention_backward_fused_wide(bf16* __restrict__ dq, BACKWARD_DKV_PARAMS, int kvX, int kvY, int qX)
{
    extern __shared__ __align__(16) bf16 smem[];
    const int bid = blockIdx.x, kvBlocks = kvX * kvY;
    if (bid < kvBlocks) backward_dkv_wide_body(smem, bid % kvX, bid / kvX, dk, dv, q, k, v, dout, lse, delta, T, Hq, Hkv, scale, window);
    else backward_dq_wide_body(smem, (bid - kvBlocks) % qX, (bid - kvBlocks) / qX, dq, q, k, v, dout, lse, delta, T, Hq, Hkv, scale, window);
}
#endif

// ---- Variable-length batches: one launch over every sequence of a batch ----------------------------
// Sequences lie end to end (row `start`, `len` rows each, len a multiple of 16); lse and delta are
// [Hq, len] per sequence at start * Hq, the layout of the per-run launches. A tile table (int4: start,
// len, tile index `by` as the uniform kernels number it, unused) names each block's sequence and tile,
// ordered by work, the most first; a block runs the uniform body on its sequence alone (batch 1, T = len),
// so attention never crosses examples and every value equals the per-run launches' bit for bit.
// (varlen_window, in attention.cuh, turns a window of 0 or of at least the length into the length.)

// grid (Hq * CHUNKS, table entries for 64 * M-row tiles), 128 threads.
#define FORWARD_VARLEN(NAME, M, QREG) \
extern "C" __global__ void __launch_bounds__(THREADS) NAME(bf16* __restrict__ out, float* __restrict__ lse, \
    const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, const int4* __restrict__ tiles, int Hq, int Hkv, float scale, int window) \
{ \
    extern __shared__ __align__(16) bf16 smem[]; \
    const int4 t = tiles[blockIdx.y]; \
    const size_t qo = (size_t)t.x * Hq * HEAD_DIM, ko = (size_t)t.x * Hkv * HEAD_DIM; \
    attention_forward_body<M, QREG>(smem, out + qo, lse + (size_t)t.x * Hq, q + qo, k + ko, v + ko, t.y, Hq, Hkv, scale, varlen_window(window, t.y), blockIdx.x, t.z); \
}
FORWARD_VARLEN(attention_forward_varlen, 1, HEAD_DIM <= 128)
FORWARD_VARLEN(attention_forward_wide_varlen, 2, HEAD_DIM <= 64)

// delta over `rows` rows of a batch whose sequences start at starts[0..S) (starts[S] = rows): each row
// finds its sequence by binary search; the sum is the uniform kernel's, in the same order.
extern "C" __global__ void attention_backward_delta_varlen(float* __restrict__ delta, const bf16* __restrict__ dout,
    const bf16* __restrict__ out, const int* __restrict__ starts, int S, int rows, int Hq)
{
    constexpr int LPR = HEAD_DIM / 8;
    const size_t gid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const size_t row = gid / LPR, all = (size_t)rows * Hq;
    const int part = (int)(gid % LPR);
    const float s = delta_row_sum(dout, out, row, part, row < all);
    if (row < all && part == 0) {
        const int r = (int)(row / Hq), h = (int)(row % Hq);
        int lo = 0, hi = S - 1;  // the last sequence starting at or before r
        while (lo < hi) { const int mid = (lo + hi + 1) >> 1; if (starts[mid] <= r) lo = mid; else hi = mid - 1; }
        const int st = starts[lo], len = starts[lo + 1] - st;
        delta[(size_t)st * Hq + (size_t)h * len + (r - st)] = s;
    }
}

// The fused backward pass over a tile table: the first kvX * n blocks are dK/dV blocks (table entry
// bid / kvX, key tile t.z), the rest dQ blocks (entry (bid - kvX * n) / qX); kvX = Hkv * CHUNKS,
// qX = Hq * CHUNKS. The table holds the 64-row tiles, or with the _wide kernels the 128-row ones.
#define BACKWARD_VARLEN(NAME, DKV, DQ) \
extern "C" __global__ void __launch_bounds__(THREADS) NAME(bf16* __restrict__ dq, bf16* __restrict__ dk, bf16* __restrict__ dv, \
    const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, const bf16* __restrict__ dout, \
    const float* __restrict__ lse, const float* __restrict__ delta, const int4* __restrict__ tiles, int n, int Hq, int Hkv, float scale, int window, int kvX, int qX) \
{ \
    extern __shared__ __align__(16) bf16 smem[]; \
    const int bid = blockIdx.x, kvBlocks = kvX * n; \
    const int4 t = tiles[bid < kvBlocks ? bid / kvX : (bid - kvBlocks) / qX]; \
    const size_t qo = (size_t)t.x * Hq * HEAD_DIM, ko = (size_t)t.x * Hkv * HEAD_DIM, so = (size_t)t.x * Hq; \
    const int w = varlen_window(window, t.y); \
    if (bid < kvBlocks) DKV(smem, bid % kvX, t.z, dk + ko, dv + ko, q + qo, k + ko, v + ko, dout + qo, lse + so, delta + so, t.y, Hq, Hkv, scale, w); \
    else DQ(smem, (bid - kvBlocks) % qX, t.z, dq + qo, q + qo, k + ko, v + ko, dout + qo, lse + so, delta + so, t.y, Hq, Hkv, scale, w); \
}
BACKWARD_VARLEN(attention_backward_fused_varlen, backward_dkv_body, backward_dq_body)
#if HEAD_DIM <= 64
BACKWARD_VARLEN(attention_backward_fused_wide_varlen, backward_dkv_wide_body, backward_dq_wide_body)
#endif
