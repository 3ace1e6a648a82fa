// The LoRA adapter's weight gradients, dB += dYᵀ·h and dA += gᵀ·x, one launch each. Both reduce
// over every token of the batch (thousands) into a small fp32 gradient (out x r, r x in), so the
// work is one read of two tall bf16 matrices. cuBLASLt runs each as a split-K product followed by a
// reduction kernel of its own (330 a step at SmolLM2-135M, most of their time their start and end).
// Here each block owns a (tile of the gradient, slice of the tokens) and writes its fp32 partial
// tile; the block that finishes a group of GROUP slices last (a ticket per group) sums the group's
// partials in slice order, and the group that finishes a tile last (a ticket per tile) sums the
// groups' sums in group order and adds them to the gradient. Two levels keep what one block reads at
// the end short. The order does not depend on which block finishes when, so reruns are
// byte-identical, as they are with cuBLASLt.
//
// One launch takes up to MAX_PRODUCTS gradients at once (a layer's q, k and v dB, or a projection's dB
// and dA): their blocks share the grid, so the small ones stop paying a launch's start and tail each.
//
// Names: X [K, P] is the operand with the wide side (dY, or x), Y [K, Q] the narrow one (h, or g),
// both row-major bf16 with row strides ldx, ldy. D[p][q] = sum_k X[k][p] Y[k][q] is added to the
// fp32 gradient at C[p * cp + q * cq] (dB is [P, Q] with cp = Q, cq = 1; dA is [Q, P], cp = 1, cq = P).
// The products are mma.m16n8k16 with p as M, q as N and the tokens as the reduction: the stored
// tiles are K-row-major for both, so both operands' fragments come from transposed ldmatrix loads.
#include "common.cuh"

#define PT 128                   // gradient rows (p) per block: 8 warps x 16
#define KT 64                    // tokens per pipeline stage
#define STAGES 4
#define GROUP 8                  // slices summed by the last block of their group
#define GRAD_THREADS 256
#define MAX_PRODUCTS 4
#define XLD (PT + 8)             // padded smem rows (bf16): each transposed 8x8 load hits 8 distinct 16-byte bank groups

template <int QT>
struct GradStage {
    bf16 x[KT][XLD];
    bf16 y[KT][QT + 8];
};

// Queues the copy of tokens [k0, k0 + KT) of the block's X columns and Y columns into one stage (zeros past the ends).
template <int QT>
__device__ __forceinline__ void load_stage(GradStage<QT>& s, const bf16* X, long long ldx, const bf16* Y, long long ldy,
    int k0, int kEnd, int p0, int P, int q0, int Q)
{
    constexpr int XC = PT / 8, YC = QT / 8;
    #pragma unroll
    for (int it = 0; it < KT * XC / GRAD_THREADS; it++) {
        const int i = threadIdx.x + it * GRAD_THREADS;
        const int r = i / XC, c = i % XC;
        const int k = k0 + r, p = p0 + c * 8;
        const bool ok = k < kEnd && p < P;
        cp_async16(&s.x[r][c * 8], ok ? X + (long long)k * ldx + p : X, ok);
    }
    #pragma unroll
    for (int it = 0; it < (KT * YC + GRAD_THREADS - 1) / GRAD_THREADS; it++) {
        const int i = threadIdx.x + it * GRAD_THREADS;
        if (i >= KT * YC) break;
        const int r = i / YC, c = i % YC;
        const int k = k0 + r, q = q0 + c * 8;
        const bool ok = k < kEnd && q < Q;
        cp_async16(&s.y[r][c * 8], ok ? Y + (long long)k * ldy + q : Y, ok);
    }
}

// After this block's writes: takes a ticket at *counter; true for the block that is the last of
// `count` to do so, which then finds every other block's writes visible and leaves the counter at
// zero for the next launch.
__device__ __forceinline__ bool last_to_finish(int* counter, int count, int& ticket)
{
    __threadfence();  // this block's partial is visible device-wide before its ticket says so
    __syncthreads();
    if (threadIdx.x == 0) {
        ticket = atomicAdd(counter, 1);
        if (ticket == count - 1) *counter = 0;
    }
    __syncthreads();
    if (ticket != count - 1) return false;
    __threadfence();
    return true;
}

// Element i4 (of float4s) of count consecutive tiles of tf floats, summed in tile order. All loads
// are issued before the first add, so one block keeps enough bytes in flight to read a group's
// partials in about the time the copy engine would.
__device__ __forceinline__ float4 sum_tiles(const float* tiles, int tf, int count, int i4)
{
    float4 v[GROUP];
    #pragma unroll
    for (int s = 0; s < GROUP; s++)
        if (s < count) v[s] = __ldcg(reinterpret_cast<const float4*>(tiles + (size_t)s * tf) + i4);
    float4 sum = v[0];
    #pragma unroll
    for (int s = 1; s < GROUP; s++)
        if (s < count) { sum.x += v[s].x; sum.y += v[s].y; sum.z += v[s].z; sum.w += v[s].w; }
    return sum;
}

// Adds four consecutive q columns of one row of a tile to the gradient.
__device__ __forceinline__ void add4_to_grad(float* C, long long cp, long long cq, int p0, int q0, int P, int Q, int pl, int ql, float4 v)
{
    const int p = p0 + pl, q = q0 + ql;
    if (p >= P) return;
    const float e[4] = {v.x, v.y, v.z, v.w};
    #pragma unroll
    for (int j = 0; j < 4; j++)
        if (q + j < Q) C[p * cp + (q + j) * cq] += e[j];
}

// One gradient of a launch (the host's LoraGradientKernels.Product has the same layout). Its blocks
// are blockStart .. blockStart + slices x qTiles x pTiles - 1, the slice fastest (so a tile's slices
// run together and its sum follows soon after); at most GROUP groups of GROUP slices. slices == 1:
// the block adds its tile to C directly. Otherwise the workspace holds, from float `partials` on,
// slices partial tiles of PT x QT floats per tile then a tile per group per tile, and from int
// `tickets` on one zeroed int per tile then one per group per tile (each left zeroed by its last
// block, so the next launch finds them ready).
struct GradProduct {
    float* C;
    const bf16* X;
    const bf16* Y;
    long long cp, cq, ldx, ldy, partials;
    int P, Q, K, sliceLen, slices, qTiles, pTiles, blockStart, tickets, pad;
};

struct GradBatch {
    float* partials;
    int* tickets;
    GradProduct p[MAX_PRODUCTS];
    int count;
};

template <int QT>
__device__ __forceinline__ void lora_grad_body(const GradProduct& pr, float* __restrict__ workspace, int* __restrict__ ticketBase,
    int slice, int qTile, int pTile)
{
    float* __restrict__ C = pr.C;
    const bf16* __restrict__ X = pr.X;
    const bf16* __restrict__ Y = pr.Y;
    const long long cp = pr.cp, cq = pr.cq, ldx = pr.ldx, ldy = pr.ldy;
    const int P = pr.P, Q = pr.Q, K = pr.K, sliceLen = pr.sliceLen, slices = pr.slices;
    float* __restrict__ partials = workspace + pr.partials;
    int* __restrict__ tickets = ticketBase + pr.tickets;
    extern __shared__ __align__(128) char smem[];
    GradStage<QT>* st = reinterpret_cast<GradStage<QT>*>(smem);
    __shared__ int ticket;
    constexpr int NQ = QT / 8;
    const int p0 = pTile * PT, q0 = qTile * QT;
    const int kBegin = slice * sliceLen, kEnd = min(K, kBegin + sliceLen);
    const int steps = (kEnd - kBegin + KT - 1) / KT;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;

    float acc[NQ][4];
    #pragma unroll
    for (int n = 0; n < NQ; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;

    #pragma unroll
    for (int s = 0; s < STAGES - 1; s++) {
        if (s < steps) load_stage<QT>(st[s], X, ldx, Y, ldy, kBegin + s * KT, kEnd, p0, P, q0, Q);
        cp_async_commit();
    }
    // ldmatrix row addresses: matrix i = lane / 8 of the x4 load, row lane % 8 of it.
    const int mi = lane >> 3, mr = lane & 7;
    for (int step = 0; step < steps; step++) {
        cp_async_wait<STAGES - 2>();
        __syncthreads();  // stage `step` is in for every thread, and stage step - 1 is free to refill
        const int next = step + STAGES - 1;
        if (next < steps) load_stage<QT>(st[next % STAGES], X, ldx, Y, ldy, kBegin + next * KT, kEnd, p0, P, q0, Q);
        cp_async_commit();
        const GradStage<QT>& s = st[step % STAGES];
        #pragma unroll
        for (int kk = 0; kk < KT / 16; kk++) {
            // A (p x k): matrices (k 0-7, p 0-7), (k 0-7, p 8-15), (k 8-15, p 0-7), (k 8-15, p 8-15), transposed.
            u32 a[4];
            ldmatrix_x4_trans(a, &s.x[kk * 16 + mr + (mi >> 1) * 8][warp * 16 + (mi & 1) * 8]);
            #pragma unroll
            for (int n2 = 0; n2 < QT / 16; n2++) {
                // B (k x q) of two 8-wide q tiles: matrices (k 0-7, q 0-7), (k 8-15, q 0-7), (k 0-7, q 8-15), (k 8-15, q 8-15).
                u32 b[4];
                ldmatrix_x4_trans(b, &s.y[kk * 16 + mr + (mi & 1) * 8][n2 * 16 + (mi >> 1) * 8]);
                mma_bf16_16816(acc[2 * n2], a, b);
                mma_bf16_16816(acc[2 * n2 + 1], a, b + 2);
            }
        }
    }
    cp_async_wait<0>();

    // acc[n][e] is D[p0 + 16 warp + g + 8 (e / 2)][q0 + 8 n + 2 t4 + e % 2].
    if (slices == 1) {
        #pragma unroll
        for (int n = 0; n < NQ; n++)
            #pragma unroll
            for (int e = 0; e < 4; e++) {
                const int p = p0 + warp * 16 + g + (e >> 1) * 8, q = q0 + n * 8 + 2 * t4 + (e & 1);
                if (p < P && q < Q) C[p * cp + q * cq] += acc[n][e];
            }
        return;
    }
    const int tile = pTile * pr.qTiles + qTile, tiles = pr.qTiles * pr.pTiles;
    const int groups = (slices + GROUP - 1) / GROUP, group = slice / GROUP;
    const int inGroup = min(GROUP, slices - group * GROUP);
    constexpr int TF = PT * QT;  // floats per partial tile
    float* tileParts = partials + (size_t)tile * slices * TF;
    float* groupParts = partials + (size_t)tiles * slices * TF + (size_t)tile * groups * TF;
    float* mine = tileParts + (size_t)slice * TF;
    #pragma unroll
    for (int n = 0; n < NQ; n++)
        #pragma unroll
        for (int h = 0; h < 2; h++) {
            const int pl = warp * 16 + g + h * 8, ql = n * 8 + 2 * t4;
            *(float2*)(mine + pl * QT + ql) = make_float2(acc[n][2 * h], acc[n][2 * h + 1]);
        }
    // Level 1: the group's last block sums its slices (tickets[tiles + tile * groups + group]).
    if (!last_to_finish(&tickets[tiles + tile * groups + group], inGroup, ticket)) return;
    #pragma unroll 2
    for (int i4 = threadIdx.x; i4 < TF / 4; i4 += GRAD_THREADS) {
        const float4 sum = sum_tiles(tileParts + (size_t)group * GROUP * TF, TF, inGroup, i4);
        if (groups == 1) add4_to_grad(C, cp, cq, p0, q0, P, Q, 4 * i4 / QT, 4 * i4 % QT, sum);
        else reinterpret_cast<float4*>(groupParts + (size_t)group * TF)[i4] = sum;
    }
    if (groups == 1) return;
    // Level 2: the tile's last group sums the groups (tickets[tile]).
    if (!last_to_finish(&tickets[tile], groups, ticket)) return;
    #pragma unroll 2
    for (int i4 = threadIdx.x; i4 < TF / 4; i4 += GRAD_THREADS)
        add4_to_grad(C, cp, cq, p0, q0, P, Q, 4 * i4 / QT, 4 * i4 % QT, sum_tiles(groupParts, TF, groups, i4));
}

// Grid: x = every product's blocks in table order.
#define LORA_GRAD_ENTRY(QT) \
extern "C" __global__ void __launch_bounds__(GRAD_THREADS) lora_grad_q##QT(const __grid_constant__ GradBatch batch) \
{ \
    int e = 0; \
    while (e + 1 < batch.count && (int)blockIdx.x >= batch.p[e + 1].blockStart) e++; \
    const GradProduct& pr = batch.p[e]; \
    const int b = blockIdx.x - pr.blockStart, t = b / pr.slices; \
    lora_grad_body<QT>(pr, batch.partials, batch.tickets, b % pr.slices, t % pr.qTiles, t / pr.qTiles); \
}

LORA_GRAD_ENTRY(16)
LORA_GRAD_ENTRY(32)
LORA_GRAD_ENTRY(48)
LORA_GRAD_ENTRY(64)
