// Small element-wise kernels of the training model: bias addition, LoRA-input dropout with a
// counter-based mask, constant fills for random-initialised benchmark models, and a strided copy
// (a weight's columns, LoRA B into a weight's spare columns).
#include "common.cuh"

// y[rows, cols] += bias[cols] (q/k/v biases of qwen2, llama's attention_bias). cols % 8 == 0.
extern "C" __global__ void add_bias(bf16* __restrict__ y, const bf16* __restrict__ bias, long long rows, int cols)
{
    const long long vecs = rows * (cols / 8);
    const int per_row = cols / 8;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < vecs; i += (long long)gridDim.x * blockDim.x) {
        uint4 v = ((const uint4*)y)[i], b = ((const uint4*)bias)[i % per_row];
        u32 p[4] = {v.x, v.y, v.z, v.w}, q[4] = {b.x, b.y, b.z, b.w}, o[4];
        #pragma unroll
        for (int j = 0; j < 4; j++) o[j] = pack_bf16x2(lo_f(p[j]) + lo_f(q[j]), hi_f(p[j]) + hi_f(q[j]));
        ((uint4*)y)[i] = make_uint4(o[0], o[1], o[2], o[3]);
    }
}

// SplitMix64's finaliser, the same function as DeterministicRandom.Mix on the host: element i is
// dropped when (mix(key + i) >> 11) < threshold, threshold = ceil(rate * 2^53), which is the
// CPU's test mix(key + i) >> 11) * 2^-53 < rate in integers. So both backends drop the same elements.
__device__ __forceinline__ bool dropped(unsigned long long key, unsigned long long i, unsigned long long threshold)
{
    unsigned long long z = key + i;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (z >> 11) < threshold;
}

// dst = dropout(src) (inverted: kept values scaled by keep_scale).
extern "C" __global__ void dropout_apply(bf16* __restrict__ dst, const bf16* __restrict__ src, long long n,
    unsigned long long key, unsigned long long threshold, float keep_scale)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        dst[i] = dropped(key, (unsigned long long)i, threshold) ? (bf16)0 : f2bf(bf2f(src[i]) * keep_scale);
}

// dx += dropout'(t): the gradient through the same mask.
extern "C" __global__ void dropout_add(bf16* __restrict__ dx, const bf16* __restrict__ t, long long n,
    unsigned long long key, unsigned long long threshold, float keep_scale)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        if (!dropped(key, (unsigned long long)i, threshold)) dx[i] = f2bf(bf2f(dx[i]) + bf2f(t[i]) * keep_scale);
}

extern "C" __global__ void fill_bf16(bf16* __restrict__ out, long long n, float value)
{
    const bf16 v = f2bf(value);
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) out[i] = v;
}

// dst[rows[i]] = src[i] for m rows of D bf16 (D % 8 == 0); one block per row. The loss head runs on
// the target rows only (gathered with embedding_forward); this puts their gradient back in place.
extern "C" __global__ void scatter_rows(bf16* __restrict__ dst, const bf16* __restrict__ src, const int* __restrict__ rows, int D)
{
    const uint4* s = (const uint4*)(src + (size_t)blockIdx.x * D);
    uint4* d = (uint4*)(dst + (size_t)rows[blockIdx.x] * D);
    for (int i = threadIdx.x; i < D / 8; i += blockDim.x) d[i] = s[i];
}

// dst[i] = ((src[i] + src[n + i]) + src[2n + i]) + ... over `ranks` slices: every rank's gradients
// (gathered by ncclAllGather) summed in rank order, so each GPU computes the same bits, and the
// same as RankOrder.Sum on the host. Plain float adds: nothing to contract into an FMA.
extern "C" __global__ void sum_rank_slices(float* __restrict__ dst, const float* __restrict__ src, long long n, int ranks)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        float s = src[i];
        for (int r = 1; r < ranks; r++) s += src[(long long)r * n + i];
        dst[i] = s;
    }
}

// dst[r, c] = src[r, c] for rows x cols values of row-major matrices whose rows are dst_stride and
// src_stride elements apart: the other columns of dst are left alone.
__device__ __forceinline__ void copy_columns(bf16* __restrict__ dst, long long dst_stride, const bf16* __restrict__ src, long long src_stride,
    long long rows, long long cols)
{
    const long long n = rows * cols;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        const long long r = i / cols, c = i % cols;
        dst[r * dst_stride + c] = src[r * src_stride + c];
    }
}

extern "C" __global__ void copy_columns_bf16(bf16* __restrict__ dst, long long dst_stride, const bf16* __restrict__ src, long long src_stride,
    long long rows, int cols)
{
    copy_columns(dst, dst_stride, src, src_stride, rows, cols);
}

// copy_columns_bf16 for a table of copies in one launch (blockIdx.y picks the copy): the bf16 copies
// of every LoRA B in its weight's spare columns after each optimizer step, 5 a layer, each a few
// microseconds of launch for a few kilobytes.
struct ColumnCopy { bf16* dst; long long dst_stride; const bf16* src; long long src_stride; long long rows; long long cols; };

extern "C" __global__ void copy_columns_bf16_table(const ColumnCopy* __restrict__ table)
{
    const ColumnCopy j = table[blockIdx.y];
    copy_columns(j.dst, j.dst_stride, j.src, j.src_stride, j.rows, j.cols);
}
