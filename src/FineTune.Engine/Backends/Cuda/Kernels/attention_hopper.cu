// Causal grouped-query attention, forward and backward, on Hopper's warpgroup products (wgmma,
// sm_90a), head_dim 64 and 128. Same algorithms, layouts and results contract as attention.cu (online
// softmax in fp32 with lse kept for the backward pass; a deterministic backward of dK/dV blocks and
// dQ blocks, no atomics; the longest tiles first; sliding windows; variable-length tile tables);
// what changes is who feeds the tensor cores. attention.cu's warps load every operand fragment with
// ldmatrix and issue one mma.sync per 16x8x16 product, which on Hopper caps the products near two
// thirds of the peak and spends issue slots on shared-memory reads. Here a warpgroup (4 warps, 64
// rows) issues one asynchronous 64x64x16 product per k-step and the tensor cores read Q, K, V and dO
// straight from shared memory through matrix descriptors; only the probabilities and dS come from
// registers (their accumulator layout is the A-fragment layout, as with mma.sync).
//
// Shared-memory tiles use the 128-byte swizzle the descriptors name: an atom is 64 rows of 64 bf16
// (128 bytes), 16-byte chunk c of row r lives at chunk c ^ (r % 8), and atoms start on 1024-byte
// boundaries (one swizzle pattern is 8 rows). A 64-row tile is HEAD_DIM / 64 atoms side by side,
// atom a holding head columns [64a, 64a + 64). Q and K are "K-major" operands (the head dimension is
// the reduction and is contiguous): a k-step's 16 columns lie within one atom. V in P.V is
// "MN-major" (its contiguous head dimension is the output's column), which the product's transpose
// flag takes; at head_dim 128 the output's two 64-column halves are two products, one per atom.
//
// Only compiled for sm_90a (KernelCompiler picks the architecture-specific target for this file on
// compute capability 9.0); CudaKernels uses it only there and only at head_dim 64 and 128.
#include "attention.cuh"

#if defined(__CUDA_ARCH_FEAT_SM90_ALL) && (HEAD_DIM == 64 || HEAD_DIM == 128)

#define WG_ROWS 64                          // query rows per warpgroup (the product's M)
#define ATOM_BYTES (TILE * 128)             // 64 rows of one 64-column swizzle atom
#define ATOMS (HEAD_DIM / 64)               // atoms across the head dimension
#define SW_TILE_BYTES (ATOMS * ATOM_BYTES)  // one 64-row tile
#define CHUNKS_PER_ROW (HEAD_DIM / 8)       // 16-byte chunks in a row
// Blocks per multiprocessor of the one-warpgroup kernels: at head_dim 128 the tiles are twice the
// size and the dK/dV body holds twice the accumulators, so two blocks fit, not three.
#define ROWS64_BLOCKS (HEAD_DIM == 64 ? 3 : 2)

// Byte offset of 16-byte chunk c of row r in a 128-byte-swizzled atom.
__device__ __forceinline__ int sw128(int r, int c) { return r * 128 + ((c ^ (r & 7)) << 4); }

// Byte offset of 16-byte chunk c (of CHUNKS_PER_ROW) of row r in a run of swizzled 64-row tiles.
__device__ __forceinline__ int sw_off(int r, int c) { return (r / TILE) * SW_TILE_BYTES + (c >> 3) * ATOM_BYTES + sw128(r % TILE, c & 7); }

// Queues the copy of rows [row0, row0 + ROWS) of a [T, stride] matrix into a swizzled tile (zeros past T).
template <int ROWS, int NT>
__device__ __forceinline__ void load_tile_sw(char* s, const bf16* base, size_t stride, int row0, int T)
{
    static_assert((ROWS * CHUNKS_PER_ROW) % NT == 0, "tile copy must split evenly over the block");
    #pragma unroll
    for (int it = 0; it < ROWS * CHUNKS_PER_ROW / NT; it++) {
        const int i = threadIdx.x + it * NT;
        const int r = i / CHUNKS_PER_ROW, c = i % CHUNKS_PER_ROW;
        const bool ok = row0 + r < T;
        cp_async16((bf16*)(s + sw_off(r, c)), ok ? base + (size_t)(row0 + r) * stride + c * 8 : base, ok);
    }
}

// A shared-memory matrix descriptor (PTX ISA, wgmma "matrix descriptor"): start address, leading and
// stride byte offsets (16-byte units), 128-byte swizzle. For both majors here the 8-row groups are
// 1024 bytes apart and every product's operand lies within one atom along its contiguous dimension
// (a K-major k-step's 16 columns, an MN-major operand's 64), so the other offset is never used; it
// is given the same value.
__device__ __forceinline__ unsigned long long sw_desc(const char* p)
{
    const unsigned long long a = ((u32)__cvta_generic_to_shared(p) & 0x3FFFF) >> 4;
    return a | (64ull << 16) | (64ull << 32) | (1ull << 62);
}

// K-step kk (head columns [16kk, 16kk + 16)) of a K-major 64-row tile: its atom, 32 bytes a step within it.
__device__ __forceinline__ unsigned long long kmajor_desc(const char* tile, int kk) { return sw_desc(tile + (kk >> 2) * ATOM_BYTES + (kk & 3) * 32); }

__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wg_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" :: "n"(N) : "memory"); }
// Copies into shared memory (cp.async, the generic proxy) must be made visible to the products'
// operand reads (the async proxy).
__device__ __forceinline__ void fence_async_smem() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// Queues key tile j + 1's (K, V) copy into the other buffer of a double-buffered pair, waits for
// tile j's, makes it visible to the products and returns it (buffer (j - j0) & 1 of sKV).
template <int NT>
__device__ __forceinline__ const char* kv_tile_ready(char* sKV, const bf16* kb, const bf16* vb, size_t ks, int j, int j0, int kv_tiles, int T)
{
    const int buf = (j - j0) & 1;
    if (j + 1 < kv_tiles) {
        char* next = sKV + (buf ^ 1) * 2 * SW_TILE_BYTES;
        load_tile_sw<TILE, NT>(next, kb, ks, (j + 1) * TILE, T);
        load_tile_sw<TILE, NT>(next + SW_TILE_BYTES, vb, ks, (j + 1) * TILE, T);
    }
    cp_async_commit();
    cp_async_wait<1>();
    fence_async_smem();
    __syncthreads();
    return sKV + buf * 2 * SW_TILE_BYTES;
}

// Keeps the compiler from moving accumulator reads or writes across the asynchronous products.
template <int N>
__device__ __forceinline__ void pin(float (&d)[N][4])
{
    #pragma unroll
    for (int n = 0; n < N; n++)
        #pragma unroll
        for (int e = 0; e < 4; e++) asm volatile("" : "+f"(d[n][e]) :: "memory");
}

// A product with a register operand reads it asynchronously too: the fragments must stay in their
// registers until the wait, so every k-step gets its own and keep() uses them after the wait.
__device__ __forceinline__ void keep(const u32 (&a)[TILE / 16][4])
{
    #pragma unroll
    for (int kk = 0; kk < TILE / 16; kk++)
        #pragma unroll
        for (int i = 0; i < 4; i++) asm volatile("" :: "r"(a[kk][i]) : "memory");
}

// The register operands of P (64 x 64, accumulator layout) . B over its 64 columns: k-step kk takes
// the 8-column blocks 2kk and 2kk+1, packed to bf16 (the mma.m16n8k16 A-fragment layout).
__device__ __forceinline__ void pack_a(u32 (&a)[TILE / 16][4], const float (&p)[NTILES][4])
{
    #pragma unroll
    for (int kk = 0; kk < TILE / 16; kk++) {
        a[kk][0] = pack2(p[2 * kk][0], p[2 * kk][1]);
        a[kk][1] = pack2(p[2 * kk][2], p[2 * kk][3]);
        a[kk][2] = pack2(p[2 * kk + 1][0], p[2 * kk + 1][1]);
        a[kk][3] = pack2(p[2 * kk + 1][2], p[2 * kk + 1][3]);
    }
}

// The 8 x 4 accumulators of one 64-column product, from 8-column block o of d.
#define WG_D32_AT(d, o) "+f"(d[o][0]), "+f"(d[o][1]), "+f"(d[o][2]), "+f"(d[o][3]), "+f"(d[o + 1][0]), "+f"(d[o + 1][1]), "+f"(d[o + 1][2]), "+f"(d[o + 1][3]), \
    "+f"(d[o + 2][0]), "+f"(d[o + 2][1]), "+f"(d[o + 2][2]), "+f"(d[o + 2][3]), "+f"(d[o + 3][0]), "+f"(d[o + 3][1]), "+f"(d[o + 3][2]), "+f"(d[o + 3][3]), \
    "+f"(d[o + 4][0]), "+f"(d[o + 4][1]), "+f"(d[o + 4][2]), "+f"(d[o + 4][3]), "+f"(d[o + 5][0]), "+f"(d[o + 5][1]), "+f"(d[o + 5][2]), "+f"(d[o + 5][3]), \
    "+f"(d[o + 6][0]), "+f"(d[o + 6][1]), "+f"(d[o + 6][2]), "+f"(d[o + 6][3]), "+f"(d[o + 7][0]), "+f"(d[o + 7][1]), "+f"(d[o + 7][2]), "+f"(d[o + 7][3])
#define WG_D32(d) WG_D32_AT(d, 0)
#define WG_D32_LIST "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
    "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"

// d (64 x 64, the accumulator layout of mma.m16n8 per warp and 8-column block: d[n][e] is row
// 16*warp + g + 8*(e/2), column 8n + 2*t4 + e%2) = or += A (64 x 16) . B^T (B: 64 x 16), both
// K-major in shared memory.
__device__ __forceinline__ void wgmma_ss(float (&d)[NTILES][4], unsigned long long a, unsigned long long b, int accumulate)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " WG_D32_LIST ", %32, %33, p, 1, 1, 0, 0;\n}\n"
        : WG_D32(d) : "l"(a), "l"(b), "r"(accumulate));
}

// d's 64 columns from 8-column block OFF += A (64 x 16, the mma.m16n8k16 A fragments of each warp's
// 16 rows) . B (16 x 64, MN-major in shared memory: its 16 rows are tile rows, its columns the
// contiguous head dimension).
template <int OFF>
__device__ __forceinline__ void wgmma_rs_mn(float (&d)[OTILES][4], const u32 (&a)[4], unsigned long long b)
{
    asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " WG_D32_LIST ", {%32, %33, %34, %35}, %36, 1, 1, 1, 1;\n"
        : WG_D32_AT(d, OFF) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}

// d (64 x HEAD_DIM) += A (64 x 16) . rows [16kk, 16kk + 16) of an MN-major 64-row tile, one product per atom.
__device__ __forceinline__ void wgmma_rs_rows(float (&d)[OTILES][4], const u32 (&a)[4], const char* tile, int kk)
{
    wgmma_rs_mn<0>(d, a, sw_desc(tile + kk * 16 * 128));
#if HEAD_DIM == 128
    wgmma_rs_mn<8>(d, a, sw_desc(tile + ATOM_BYTES + kk * 16 * 128));
#endif
}

// x = Ax . Bx^T, then y = Ay . By^T, over the head dimension (all K-major shared-memory tiles), as two
// commit groups; returns once x is ready, y still running (the score and dP products of a step).
__device__ __forceinline__ void two_products(float (&x)[NTILES][4], const char* ax, const char* bx,
    float (&y)[NTILES][4], const char* ay, const char* by)
{
    wg_fence();
    #pragma unroll
    for (int kk = 0; kk < KSTEPS; kk++) wgmma_ss(x, kmajor_desc(ax, kk), kmajor_desc(bx, kk), kk > 0);
    wg_commit();
    #pragma unroll
    for (int kk = 0; kk < KSTEPS; kk++) wgmma_ss(y, kmajor_desc(ay, kk), kmajor_desc(by, kk), kk > 0);
    wg_commit();
    wg_wait<1>();
    pin(x);
}

// The forward pass for 64 * WG query rows, one warpgroup per 64 rows sharing the double-buffered
// K/V tiles; arguments as attention_forward_body. A tile the warpgroup's rows cannot see is
// skipped by the whole warpgroup (the products are warpgroup-wide); within a processed tile the
// mask works per warp as in attention.cu.
template <int WG>
__device__ __forceinline__ void attention_forward_hopper_body(char* smem, bf16* __restrict__ out, float* __restrict__ lse,
    const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, int T, int Hq, int Hkv, float scale, int window,
    int bx, int by)
{
    constexpr int QROWS = WG_ROWS * WG, NT = 128 * WG;
    char* sQ = smem;                              // WG tiles
    char* sKV = smem + WG * SW_TILE_BYTES;        // 2 x (K, V)

    const int tiles = (T + QROWS - 1) / QROWS;
    const int qt = tiles - 1 - by;  // the longest (last) tiles first
    const int h = bx % Hq, b = bx / Hq, hk = h / (Hq / Hkv);
    const int wg = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const size_t qs = (size_t)Hq * HEAD_DIM, ks = (size_t)Hkv * HEAD_DIM;
    const bf16* qb = q + (size_t)b * T * qs + (size_t)h * HEAD_DIM;
    const bf16* kb = k + (size_t)b * T * ks + (size_t)hk * HEAD_DIM;
    const bf16* vb = v + (size_t)b * T * ks + (size_t)hk * HEAD_DIM;
    const int q0 = qt * QROWS;
    const int wgFirst = q0 + wg * WG_ROWS, wgLast = wgFirst + WG_ROWS - 1;
    const int first = wgFirst + warp * 16, last = first + 15;

    const int j0 = max(0, q0 - window + 1) / TILE;
    load_tile_sw<QROWS, NT>(sQ, qb, qs, q0, T);
    load_tile_sw<TILE, NT>(sKV, kb, ks, j0 * TILE, T);
    load_tile_sw<TILE, NT>(sKV + SW_TILE_BYTES, vb, ks, j0 * TILE, T);
    cp_async_commit();

    float o[1][OTILES][4];
    float mrow[1][2] = {{FT_NEG_INF, FT_NEG_INF}}, lrow[1][2] = {{0.f, 0.f}};
    #pragma unroll
    for (int n = 0; n < OTILES; n++) o[0][n][0] = o[0][n][1] = o[0][n][2] = o[0][n][3] = 0.f;
    const float sl2 = scale * LOG2E;
    const int kv_tiles = (min(T, q0 + QROWS) + TILE - 1) / TILE;
    const char* sQw = sQ + wg * SW_TILE_BYTES;

    for (int j = j0; j < kv_tiles; j++) {
        const int k0 = j * TILE;
        const char* sK = kv_tile_ready<NT>(sKV, kb, vb, ks, j, j0, kv_tiles, T);
        const char* sV = sK + SW_TILE_BYTES;

        if (k0 <= wgLast && k0 + TILE - 1 > wgFirst - window) {
            float s[1][NTILES][4];
            wg_fence();
            #pragma unroll
            for (int kk = 0; kk < KSTEPS; kk++) wgmma_ss(s[0], kmajor_desc(sQw, kk), kmajor_desc(sK, kk), kk > 0);
            wg_commit();
            wg_wait<0>();
            pin(s[0]);
            if (k0 + TILE - 1 > first || k0 + TILE > T || last - k0 >= window) softmax_tile<1, true>(s, mrow, lrow, o, k0, first + g, t4, T, window, sl2);
            else softmax_tile<1, false>(s, mrow, lrow, o, k0, first + g, t4, T, window, sl2);
            u32 a[TILE / 16][4];
            pack_a(a, s[0]);
            pin(o[0]);
            wg_fence();
            #pragma unroll
            for (int kk = 0; kk < TILE / 16; kk++) wgmma_rs_rows(o[0], a[kk], sV, kk);
            wg_commit();
            wg_wait<0>();
            keep(a);
            pin(o[0]);
        }
        __syncthreads();  // this buffer is refilled two tiles on
    }

    bf16* ob = out + (size_t)b * T * qs + (size_t)h * HEAD_DIM;
    float* lb = lse + ((size_t)b * Hq + h) * T;
    const float l0 = quad_sum(lrow[0][0]), l1 = quad_sum(lrow[0][1]);
    const float inv0 = 1.f / l0, inv1 = 1.f / l1;
    const int row0 = first + g, row1 = row0 + 8;
    #pragma unroll
    for (int n = 0; n < OTILES; n++) {
        if (row0 < T) *(u32*)(ob + (size_t)row0 * qs + n * 8 + 2 * t4) = pack2(o[0][n][0] * inv0, o[0][n][1] * inv0);
        if (row1 < T) *(u32*)(ob + (size_t)row1 * qs + n * 8 + 2 * t4) = pack2(o[0][n][2] * inv1, o[0][n][3] * inv1);
    }
    if (t4 == 0) {
        if (row0 < T) lb[row0] = (mrow[0][0] * sl2 + log2f(l0)) * LN2;
        if (row1 < T) lb[row1] = (mrow[0][1] * sl2 + log2f(l1)) * LN2;
    }
}

// dQ for 64 * WG query rows of one head, one warpgroup per 64 rows; grid and order as
// attention.cu's backward_dq_wide_body, whose algorithm this is: Q and dO resident, the key tiles
// double-buffered, S = Q K^T and dP = dO V^T as shared-memory products, P = exp(S - lse) and
// dS = P (dP - delta) in registers, dQ += dS K with dS as the register operand.
template <int WG>
__device__ __forceinline__ void backward_dq_hopper_body(char* smem, int bx, int by, bf16* __restrict__ dq,
    const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, const bf16* __restrict__ dout,
    const float* __restrict__ lse, const float* __restrict__ delta, int T, int Hq, int Hkv, float scale, int window)
{
    constexpr int QROWS = WG_ROWS * WG, NT = 128 * WG;
    char* sQ = smem;                              // WG tiles
    char* sD = smem + WG * SW_TILE_BYTES;         // WG tiles
    char* sKV = smem + 2 * WG * SW_TILE_BYTES;    // 2 x (K, V)
    const int tiles = (T + QROWS - 1) / QROWS;
    const int qt = tiles - 1 - by;
    const int h = bx % Hq, b = bx / Hq, hk = h / (Hq / Hkv);
    const int wg = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const size_t qs = (size_t)Hq * HEAD_DIM, ks = (size_t)Hkv * HEAD_DIM;
    const int q0 = qt * QROWS;
    const int wgFirst = q0 + wg * WG_ROWS, wgLast = wgFirst + WG_ROWS - 1;
    const int first = wgFirst + warp * 16, last = first + 15;
    const float sl2 = scale * LOG2E;
    const bf16* kb = k + (size_t)b * T * ks + (size_t)hk * HEAD_DIM;
    const bf16* vb = v + (size_t)b * T * ks + (size_t)hk * HEAD_DIM;

    const int j0 = max(0, q0 - window + 1) / TILE;
    load_tile_sw<QROWS, NT>(sQ, q + (size_t)b * T * qs + (size_t)h * HEAD_DIM, qs, q0, T);
    load_tile_sw<QROWS, NT>(sD, dout + (size_t)b * T * qs + (size_t)h * HEAD_DIM, qs, q0, T);
    load_tile_sw<TILE, NT>(sKV, kb, ks, j0 * TILE, T);
    load_tile_sw<TILE, NT>(sKV + SW_TILE_BYTES, vb, ks, j0 * TILE, T);
    cp_async_commit();

    const float* lb = lse + ((size_t)b * Hq + h) * T;
    const float* deb = delta + ((size_t)b * Hq + h) * T;
    // Rows past the sequence end have zero Q and dO, so with lse = delta = 0 they give dS = 0.
    float nl[2], dl[2];
    #pragma unroll
    for (int i = 0; i < 2; i++) {
        const int row = first + i * 8 + g;
        nl[i] = row < T ? -lb[row] * LOG2E : 0.f;
        dl[i] = row < T ? deb[row] : 0.f;
    }
    float dqa[OTILES][4];
    #pragma unroll
    for (int n = 0; n < OTILES; n++) dqa[n][0] = dqa[n][1] = dqa[n][2] = dqa[n][3] = 0.f;
    const char* sQw = sQ + wg * SW_TILE_BYTES;
    const char* sDw = sD + wg * SW_TILE_BYTES;

    const int kv_tiles = (min(T, q0 + QROWS) + TILE - 1) / TILE;
    for (int j = j0; j < kv_tiles; j++) {
        const int k0 = j * TILE;
        const char* sK = kv_tile_ready<NT>(sKV, kb, vb, ks, j, j0, kv_tiles, T);
        const char* sV = sK + SW_TILE_BYTES;

        if (k0 <= wgLast && k0 + TILE - 1 > wgFirst - window) {
            float p[NTILES][4], dp[NTILES][4];
            two_products(p, sQw, sK, dp, sDw, sV);  // S = Q K^T ready; dP = dO V^T runs on while P is computed
            if (k0 + TILE - 1 > first || k0 + TILE > T || last - k0 >= window) {
                #pragma unroll
                for (int n = 0; n < NTILES; n++)
                    #pragma unroll
                    for (int e = 0; e < 4; e++) {
                        const int key = k0 + n * 8 + 2 * t4 + (e & 1);
                        const int row = first + (e >> 1) * 8 + g;
                        p[n][e] = (row < T && key < T && key <= row && row - key < window) ? ex2(fmaf(p[n][e], sl2, nl[e >> 1])) : 0.f;
                    }
            } else {
                #pragma unroll
                for (int n = 0; n < NTILES; n++)
                    #pragma unroll
                    for (int e = 0; e < 4; e++) p[n][e] = ex2(fmaf(p[n][e], sl2, nl[e >> 1]));
            }
            wg_wait<0>();
            pin(dp);
            #pragma unroll
            for (int n = 0; n < NTILES; n++)
                #pragma unroll
                for (int e = 0; e < 4; e++) dp[n][e] = p[n][e] * (dp[n][e] - dl[e >> 1]);
            u32 a[TILE / 16][4];
            pack_a(a, dp);
            pin(dqa);
            wg_fence();
            #pragma unroll
            for (int kk = 0; kk < TILE / 16; kk++) wgmma_rs_rows(dqa, a[kk], sK, kk);
            wg_commit();
            wg_wait<0>();
            keep(a);
            pin(dqa);
        }
        __syncthreads();
    }

    bf16* dqb = dq + (size_t)b * T * qs + (size_t)h * HEAD_DIM;
    const int row0 = first + g, row1 = row0 + 8;
    #pragma unroll
    for (int n = 0; n < OTILES; n++) {
        const int c = n * 8 + 2 * t4;
        if (row0 < T) *(u32*)(dqb + (size_t)row0 * qs + c) = pack2(dqa[n][0] * scale, dqa[n][1] * scale);
        if (row1 < T) *(u32*)(dqb + (size_t)row1 * qs + c) = pack2(dqa[n][2] * scale, dqa[n][3] * scale);
    }
}

// Queues step `it` of a dK/dV block into buffer it & 1 (2 x (Q, dO) swizzled tiles, then 2 x
// (lse, delta) rows at sStat), as attention.cu's dkv_issue: the group's query heads from h0, and
// within a head the nq query tiles from qt0.
template <int NT>
__device__ __forceinline__ void dkv_issue_sw(char* smem, float* sStat, int it, int nq, int qt0, int h0, int b,
    const bf16* __restrict__ q, const bf16* __restrict__ dout, const float* __restrict__ lse, const float* __restrict__ delta, int T, int Hq)
{
    const size_t qs = (size_t)Hq * HEAD_DIM;
    const int buf = it & 1;
    const int h = h0 + it / nq, q0 = (qt0 + it % nq) * TILE;
    char* sQ = smem + buf * 2 * SW_TILE_BYTES;
    load_tile_sw<TILE, NT>(sQ, q + (size_t)b * T * qs + (size_t)h * HEAD_DIM, qs, q0, T);
    load_tile_sw<TILE, NT>(sQ + SW_TILE_BYTES, dout + (size_t)b * T * qs + (size_t)h * HEAD_DIM, qs, q0, T);
    dkv_issue_stats(sStat, buf, b, h, q0, lse, delta, T, Hq);
}

// dK, dV for 64 * WG keys of one kv head, one warpgroup per 64 keys; grid and order as
// attention.cu's backward_dkv_wide_body, whose algorithm this is: K and V resident, the group's
// (Q, dO, lse, delta) query tiles double-buffered, S^T = K Q^T and dP^T = V dO^T as shared-memory
// products, then dV += P^T dO and dK += dS^T Q with P^T and dS^T as the register operands.
template <int WG>
__device__ __forceinline__ void backward_dkv_hopper_body(char* smem, int bx, int by, bf16* __restrict__ dk, bf16* __restrict__ dv,
    const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, const bf16* __restrict__ dout,
    const float* __restrict__ lse, const float* __restrict__ delta, int T, int Hq, int Hkv, float scale, int window)
{
    constexpr int KROWS = WG_ROWS * WG, NT = 128 * WG;
    // 2 x (Q, dO) tiles, K and V (WG tiles each), then 2 x (lse, delta) rows
    char* sK = smem + 4 * SW_TILE_BYTES;
    char* sV = sK + WG * SW_TILE_BYTES;
    float* sStat = (float*)(sV + WG * SW_TILE_BYTES);

    const int kt = by, hk = bx % Hkv, b = bx / Hkv;
    const int group = Hq / Hkv;
    const int wg = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const size_t ks = (size_t)Hkv * HEAD_DIM;
    const int k0 = kt * KROWS;
    const int wgKey = k0 + wg * WG_ROWS;      // the warpgroup's first key
    const int wkey = wgKey + warp * 16;       // the warp's first key
    const float sl2 = scale * LOG2E;
    const int qt0 = k0 / TILE;
    const int nq = min(T - 1, k0 + KROWS - 2 + window) / TILE - qt0 + 1;
    const int steps = group * nq;

    load_tile_sw<KROWS, NT>(sK, k + (size_t)b * T * ks + (size_t)hk * HEAD_DIM, ks, k0, T);
    load_tile_sw<KROWS, NT>(sV, v + (size_t)b * T * ks + (size_t)hk * HEAD_DIM, ks, k0, T);
    dkv_issue_sw<NT>(smem, sStat, 0, nq, qt0, hk * group, b, q, dout, lse, delta, T, Hq);
    cp_async_commit();
    const char* sKw = sK + wg * SW_TILE_BYTES;
    const char* sVw = sV + wg * SW_TILE_BYTES;

    float dka[OTILES][4], dva[OTILES][4];
    #pragma unroll
    for (int n = 0; n < OTILES; n++)
        #pragma unroll
        for (int e = 0; e < 4; e++) dka[n][e] = dva[n][e] = 0.f;

    for (int it = 0; it < steps; it++) {
        if (it + 1 < steps) dkv_issue_sw<NT>(smem, sStat, it + 1, nq, qt0, hk * group, b, q, dout, lse, delta, T, Hq);
        cp_async_commit();
        cp_async_wait<1>();
        fence_async_smem();
        __syncthreads();

        const int q0 = (qt0 + it % nq) * TILE;
        const char* sQ = smem + (it & 1) * 2 * SW_TILE_BYTES;
        const char* sD = sQ + SW_TILE_BYTES;
        const float* sLse = sStat + (it & 1) * 2 * TILE;
        const float* sDelta = sLse + TILE;
        // Warpgroup-uniform: every query of the tile is before every key of the warpgroup, or past the window of all of them.
        if (!(q0 + TILE - 1 < wgKey || q0 - (wgKey + WG_ROWS - 1) >= window)) {
            const bool mask = q0 < wgKey + WG_ROWS - 1 || q0 + TILE > T || q0 + TILE - 1 - wgKey >= window;
            float p[NTILES][4], dp[NTILES][4];
            two_products(p, sKw, sQ, dp, sVw, sD);  // S^T = K Q^T ready; dP^T = V dO^T runs on while P^T is computed
            #pragma unroll
            for (int n = 0; n < NTILES; n++) {
                const float2 l2 = *(const float2*)(sLse + n * 8 + 2 * t4);
                const float nl[2] = { -l2.x * LOG2E, -l2.y * LOG2E };
                #pragma unroll
                for (int e = 0; e < 4; e++) {
                    if (mask) {
                        const int query = q0 + n * 8 + 2 * t4 + (e & 1);
                        const int key = wkey + (e >> 1) * 8 + g;
                        p[n][e] = (query < T && key <= query && query - key < window) ? ex2(fmaf(p[n][e], sl2, nl[e & 1])) : 0.f;
                    } else {
                        p[n][e] = ex2(fmaf(p[n][e], sl2, nl[e & 1]));
                    }
                }
            }
            u32 pa[TILE / 16][4], da[TILE / 16][4];
            pack_a(pa, p);
            pin(dva);
            wg_fence();
            #pragma unroll
            for (int kk = 0; kk < TILE / 16; kk++) wgmma_rs_rows(dva, pa[kk], sD, kk);
            wg_commit();
            wg_wait<1>();  // dP^T is ready; dV += P^T dO runs on while dS^T is computed
            pin(dp);
            // dS^T takes P^T as the product above did, rounded to bf16 (read back from its register
            // operand): the fp32 probabilities are dead once packed, which keeps the body within
            // the 168 registers of three blocks per multiprocessor.
            #pragma unroll
            for (int n = 0; n < NTILES; n++) {
                const float2 d2 = *(const float2*)(sDelta + n * 8 + 2 * t4);
                const float dl[2] = { d2.x, d2.y };
                #pragma unroll
                for (int e = 0; e < 4; e++) {
                    const u32 w = pa[n >> 1][(n & 1) * 2 + (e >> 1)];
                    dp[n][e] = ((e & 1) ? hi_f(w) : lo_f(w)) * (dp[n][e] - dl[e & 1]);
                }
            }
            pack_a(da, dp);
            pin(dka);
            wg_fence();
            #pragma unroll
            for (int kk = 0; kk < TILE / 16; kk++) wgmma_rs_rows(dka, da[kk], sQ, kk);
            wg_commit();
            wg_wait<0>();
            keep(pa);
            keep(da);
            pin(dva);
            pin(dka);
        }
        __syncthreads();  // this buffer is refilled two steps on
    }

    bf16* dkb = dk + (size_t)b * T * ks + (size_t)hk * HEAD_DIM;
    bf16* dvb = dv + (size_t)b * T * ks + (size_t)hk * HEAD_DIM;
    const int key0 = wkey + g, key1 = key0 + 8;
    #pragma unroll
    for (int n = 0; n < OTILES; n++) {
        const int c = n * 8 + 2 * t4;
        if (key0 < T) {
            *(u32*)(dkb + (size_t)key0 * ks + c) = pack2(dka[n][0] * scale, dka[n][1] * scale);
            *(u32*)(dvb + (size_t)key0 * ks + c) = pack2(dva[n][0], dva[n][1]);
        }
        if (key1 < T) {
            *(u32*)(dkb + (size_t)key1 * ks + c) = pack2(dka[n][2] * scale, dka[n][3] * scale);
            *(u32*)(dvb + (size_t)key1 * ks + c) = pack2(dva[n][2], dva[n][3]);
        }
    }
}

// Dynamic shared memory starts 16-byte aligned; the swizzled tiles need 1024 (the launcher adds 1 KiB).
__device__ __forceinline__ char* align1024(char* p) { return (char*)(((size_t)p + 1023) & ~(size_t)1023); }

#define HOPPER_DKV_PARAMS bf16* __restrict__ dk, bf16* __restrict__ dv, const bf16* __restrict__ q, const bf16* __restrict__ k, \
    const bf16* __restrict__ v, const bf16* __restrict__ dout, const float* __restrict__ lse, const float* __restrict__ delta, \
    int T, int Hq, int Hkv, float scale, int window
#define HOPPER_DQ_PARAMS bf16* __restrict__ dq, const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, \
    const bf16* __restrict__ dout, const float* __restrict__ lse, const float* __restrict__ delta, int T, int Hq, int Hkv, float scale, int window

// Each kernel in two sizes: SUFFIX "" has two warpgroups (128 rows, 256 threads, the grids of
// attention.cu's _wide kernels and the 128-row varlen tables), "_rows64" one (64 rows, 128 threads,
// the grids of its 64-row kernels and tables). MINB blocks per multiprocessor: three one-warpgroup
// blocks need at most 168 registers a thread (the dK/dV body wants 186 unbounded at head_dim 64);
// at head_dim 128, two (ROWS64_BLOCKS). Shared memory: 1 KiB of alignment, then the swizzled
// 64-row tiles (8 KiB at head_dim 64, 16 at 128) each body lays out: forward WG + 4, dQ 2 WG + 4,
// dK/dV 2 WG + 4 and 1 KiB of lse/delta rows.
#define HOPPER_KERNELS(SUFFIX, WG, MINB) \
extern "C" __global__ void __launch_bounds__(128 * WG, MINB) attention_forward_hopper##SUFFIX(bf16* __restrict__ out, float* __restrict__ lse, \
    const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, int T, int Hq, int Hkv, float scale, int window) \
{ \
    extern __shared__ __align__(16) char smem_raw[]; \
    attention_forward_hopper_body<WG>(align1024(smem_raw), out, lse, q, k, v, T, Hq, Hkv, scale, window, blockIdx.x, blockIdx.y); \
} \
extern "C" __global__ void __launch_bounds__(128 * WG, MINB) attention_forward_hopper##SUFFIX##_varlen(bf16* __restrict__ out, float* __restrict__ lse, \
    const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, const int4* __restrict__ tiles, int Hq, int Hkv, float scale, int window) \
{ \
    extern __shared__ __align__(16) char smem_raw[]; \
    const int4 t = tiles[blockIdx.y]; \
    const size_t qo = (size_t)t.x * Hq * HEAD_DIM, ko = (size_t)t.x * Hkv * HEAD_DIM; \
    attention_forward_hopper_body<WG>(align1024(smem_raw), out + qo, lse + (size_t)t.x * Hq, q + qo, k + ko, v + ko, t.y, Hq, Hkv, scale, \
        varlen_window(window, t.y), blockIdx.x, t.z); \
} \
extern "C" __global__ void __launch_bounds__(128 * WG, MINB) attention_backward_dkv_hopper##SUFFIX(HOPPER_DKV_PARAMS) \
{ \
    extern __shared__ __align__(16) char smem_raw[]; \
    backward_dkv_hopper_body<WG>(align1024(smem_raw), blockIdx.x, blockIdx.y, dk, dv, q, k, v, dout, lse, delta, T, Hq, Hkv, scale, window); \
} \
extern "C" __global__ void __launch_bounds__(128 * WG, MINB) attention_backward_dq_hopper##SUFFIX(HOPPER_DQ_PARAMS) \
{ \
    extern __shared__ __align__(16) char smem_raw[]; \
    backward_dq_hopper_body<WG>(align1024(smem_raw), blockIdx.x, blockIdx.y, dq, q, k, v, dout, lse, delta, T, Hq, Hkv, scale, window); \
} \
/* dK/dV blocks then dQ blocks in one launch, as attention_backward_fused_wide. */ \
extern "C" __global__ void __launch_bounds__(128 * WG, MINB) attention_backward_fused_hopper##SUFFIX(bf16* __restrict__ dq, HOPPER_DKV_PARAMS, int kvX, int kvY, int qX) \
{ \
    extern __shared__ __align__(16) char smem_raw[]; \
    char* smem = align1024(smem_raw); \
    const int bid = blockIdx.x, kvBlocks = kvX * kvY; \
    if (bid < kvBlocks) backward_dkv_hopper_body<WG>(smem, bid % kvX, bid / kvX, dk, dv, q, k, v, dout, lse, delta, T, Hq, Hkv, scale, window); \
    else backward_dq_hopper_body<WG>(smem, (bid - kvBlocks) % qX, (bid - kvBlocks) / qX, dq, q, k, v, dout, lse, delta, T, Hq, Hkv, scale, window); \
} \
/* The same over a variable-length batch's tile table, as attention.cu's BACKWARD_VARLEN. */ \
extern "C" __global__ void __launch_bounds__(128 * WG, MINB) attention_backward_fused_hopper##SUFFIX##_varlen(bf16* __restrict__ dq, bf16* __restrict__ dk, \
    bf16* __restrict__ dv, const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, const bf16* __restrict__ dout, \
    const float* __restrict__ lse, const float* __restrict__ delta, const int4* __restrict__ tiles, int n, int Hq, int Hkv, float scale, int window, int kvX, int qX) \
{ \
    extern __shared__ __align__(16) char smem_raw[]; \
    char* smem = align1024(smem_raw); \
    const int bid = blockIdx.x, kvBlocks = kvX * n; \
    const int4 t = tiles[bid < kvBlocks ? bid / kvX : (bid - kvBlocks) / qX]; \
    const size_t qo = (size_t)t.x * Hq * HEAD_DIM, ko = (size_t)t.x * Hkv * HEAD_DIM, so = (size_t)t.x * Hq; \
    const int w = varlen_window(window, t.y); \
    if (bid < kvBlocks) backward_dkv_hopper_body<WG>(smem, bid % kvX, t.z, dk + ko, dv + ko, q + qo, k + ko, v + ko, dout + qo, lse + so, delta + so, t.y, Hq, Hkv, scale, w); \
    else backward_dq_hopper_body<WG>(smem, (bid - kvBlocks) % qX, t.z, dq + qo, q + qo, k + ko, v + ko, dout + qo, lse + so, delta + so, t.y, Hq, Hkv, scale, w); \
}

HOPPER_KERNELS(, 2, 1)
HOPPER_KERNELS(_rows64, 1, ROWS64_BLOCKS)

#endif
