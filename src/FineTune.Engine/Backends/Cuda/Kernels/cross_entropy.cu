// Fused lm-head + cross-entropy over vocabulary chunks. For each chunk c of the vocabulary the
// host runs: logits_c = h . W_c^T (cuBLASLt, fp32), ce_chunk (below), then
// dh_acc += E_c . W_c (cuBLASLt, beta = 1). ce_chunk keeps a running max and sum of exponentials
// per row (online softmax) and rescales dh_acc whenever the max grows, so after the last chunk
// dh_acc / sum = sum_v softmax_v W_v without ever holding more than one chunk of logits.
// ce_finalize then forms loss = logsumexp - logit[target] and dh = scale * (softmax.W - W[target]).
#include "common.cuh"

#define CE_THREADS 256
#define CE_PER_THREAD 32   // a chunk of up to 8192 logits per row stays in registers: one read

// One block of CE_THREADS per row; chunk <= CE_THREADS * CE_PER_THREAD.
extern "C" __global__ void __launch_bounds__(CE_THREADS) ce_chunk(bf16* __restrict__ e_out, float* __restrict__ dh_acc, float* __restrict__ run_max,
    float* __restrict__ run_sum, float* __restrict__ target_logit, const float* __restrict__ logits,
    const int* __restrict__ targets, int chunk, int v0, int D, int first)
{
    __shared__ float scratch[32];
    const size_t row = blockIdx.x;
    const float* z = logits + row * chunk;
    bf16* e = e_out + row * chunk;

    float zr[CE_PER_THREAD];
    float mx = FT_NEG_INF;
    #pragma unroll
    for (int j = 0; j < CE_PER_THREAD; j++) {
        const int i = threadIdx.x + j * CE_THREADS;
        zr[j] = i < chunk ? z[i] : FT_NEG_INF;
        mx = fmaxf(mx, zr[j]);
    }
    mx = block_max(mx, scratch);

    const float old_max = first ? FT_NEG_INF : run_max[row];
    const float new_max = fmaxf(old_max, mx);
    float s = 0.f;
    #pragma unroll
    for (int j = 0; j < CE_PER_THREAD; j++) {
        const int i = threadIdx.x + j * CE_THREADS;
        if (i < chunk) {
            const float ex = __expf(zr[j] - new_max);
            s += ex;
            e[i] = f2bf(ex);
        }
    }
    s = block_sum(s, scratch);

    // Rescale (or, on the first chunk, clear) this row's gradient accumulator.
    const float rescale = first ? 0.f : __expf(old_max - new_max);
    float* acc = dh_acc + row * D;
    if (first) { for (int i = threadIdx.x; i < D; i += blockDim.x) acc[i] = 0.f; }
    else if (rescale != 1.f) { for (int i = threadIdx.x; i < D; i += blockDim.x) acc[i] *= rescale; }

    if (threadIdx.x == 0) {
        run_max[row] = new_max;
        run_sum[row] = (first ? 0.f : run_sum[row] * rescale) + s;
        const int t = targets[row];
        if (t >= v0 && t < v0 + chunk) target_logit[row] = z[t - v0];
    }
}

// loss[row] = max + log(sum) - logit[target]; dh = grad_scale * (dh_acc / sum - W[target]).
// Rows whose target is negative (masked out of the loss) get loss 0 and gradient 0.
extern "C" __global__ void ce_finalize(bf16* __restrict__ dh, float* __restrict__ loss, const float* __restrict__ dh_acc,
    const bf16* __restrict__ weight, const int* __restrict__ targets, const float* __restrict__ run_max,
    const float* __restrict__ run_sum, const float* __restrict__ target_logit, int D, float grad_scale)
{
    const size_t row = blockIdx.x;
    const int t = targets[row];
    bf16* out = dh + row * D;
    if (t < 0) {
        for (int i = threadIdx.x; i < D; i += blockDim.x) out[i] = 0;
        if (threadIdx.x == 0) loss[row] = 0.f;
        return;
    }
    const float inv = 1.f / run_sum[row];
    const float* acc = dh_acc + row * D;
    const bf16* w = weight + (size_t)t * D;
    for (int i = threadIdx.x; i < D; i += blockDim.x) out[i] = f2bf(grad_scale * (acc[i] * inv - bf2f(w[i])));
    if (threadIdx.x == 0) loss[row] = run_max[row] + logf(run_sum[row]) - target_logit[row];
}

// Preference training (DPO, ORPO): sums[row] (+)= the row's logits of this chunk, for TRL's logits/*
// metrics (the mean logit over the vocabulary). One block per row, fixed reduction order.
extern "C" __global__ void ce_row_sum(float* __restrict__ sums, const float* __restrict__ logits, int chunk, int first)
{
    __shared__ float scratch[32];
    const size_t row = blockIdx.x;
    const float* z = logits + row * chunk;
    float s = 0.f;
    for (int i = threadIdx.x; i < chunk; i += blockDim.x) s += z[i];
    s = block_sum(s, scratch);
    if (threadIdx.x == 0) sums[row] = first ? s : sums[row] + s;
}

// As ce_finalize's gradient with a scale per row (d loss / d cross-entropy of that row, known only
// once the host has seen every row's loss): reads the chunk loop's dh_acc and run_sum, which stay
// valid until the head's next run, and leaves the loss alone.
extern "C" __global__ void ce_finalize_rows(bf16* __restrict__ dh, const float* __restrict__ dh_acc, const bf16* __restrict__ weight,
    const int* __restrict__ targets, const float* __restrict__ run_sum, const float* __restrict__ row_scale, int D)
{
    const size_t row = blockIdx.x;
    const int t = targets[row];
    bf16* out = dh + row * D;
    const float scale = t < 0 ? 0.f : row_scale[row];
    if (scale == 0.f) {
        for (int i = threadIdx.x; i < D; i += blockDim.x) out[i] = 0;
        return;
    }
    const float inv = 1.f / run_sum[row];
    const float* acc = dh_acc + row * D;
    const bf16* w = weight + (size_t)t * D;
    for (int i = threadIdx.x; i < D; i += blockDim.x) out[i] = f2bf(scale * (acc[i] * inv - bf2f(w[i])));
}
