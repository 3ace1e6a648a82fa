using FineTune.Engine.Backends.Cuda.Training;
using FineTune.Engine.Model;
using FineTune.Engine.Weights.FourBit;

namespace FineTune.Engine.Tests.Cuda;

/// <summary>The GPU memory plan's arithmetic (no GPU needed), against sizes worked out by hand.</summary>
public sealed class GpuMemoryPlanTests
{
    private static ModelConfig Llama1B => new()
    {
        ModelType = "llama", VocabSize = 128256, HiddenSize = 2048, IntermediateSize = 8192, NumLayers = 16,
        NumHeads = 32, NumKvHeads = 8, HeadDim = 64, TieWordEmbeddings = true,
    };

    private static ModelConfig Tiny => new()
    {
        ModelType = "llama", VocabSize = 160, HiddenSize = 64, IntermediateSize = 96, NumLayers = 2, NumHeads = 4, NumKvHeads = 2, HeadDim = 16,
    };

    [Fact]
    public void Layer_activations_per_token_are_counted_by_hand()
    {
        // bf16: norm1 64 + q 64 + k 32 + v 32 + attention 64 + x1 64 + norm2 64 + gate, up, SwiGLU 3 x 96 + LoRA 7 x 8 = 728 values = 1456 bytes;
        // fp32: rstd1, rstd2 and 4 heads' log-sum-exp = 6 values = 24 bytes.
        Assert.Equal(1480, GpuMemoryPlan.LayerBytes(Tiny, rank: 8, loraTargets: 7));
        // Llama-3.2-1B, r=16 on all seven: 2 x (2048·5 + 512·2 + 8192·3 + 16·7) + 4 x (2 + 32) = 71904 + 136.
        Assert.Equal(72040, GpuMemoryPlan.LayerBytes(Llama1B, rank: 16, loraTargets: 7));
        // qwen3's q/k norms also keep the pre-norm q and k (bf16) and their per-head rstd (fp32): + 2 x 96 + 4 x 6.
        Assert.Equal(1480 + 192 + 24, GpuMemoryPlan.LayerBytes(Tiny with { ModelType = "qwen3", QkNorm = true }, rank: 8, loraTargets: 7));
        // Gemma 3's sandwich norms also keep o_proj's and down_proj's outputs (bf16, 64 each) and their rstd (fp32): + 2 x 128 + 4 x 2.
        Assert.Equal(1480 + 192 + 24 + 256 + 8, GpuMemoryPlan.LayerBytes(Tiny with { ModelType = "gemma3_text", QkNorm = true, SandwichNorms = true }, rank: 8, loraTargets: 7));
    }

    [Fact]
    public void The_qkv_weight_buffer_holds_a_and_the_scratch_fits_the_packed_qkv_gradient()
    {
        Projection[] all = [Projection.Q, Projection.K, Projection.V, Projection.O, Projection.Gate, Projection.Up, Projection.Down];
        // Llama-3.2-1B, r = 16. q/k/v: stride 2,048 + 48 -> 2,112, so 64 padding columns over 3,072 rows, plus A's 48 rows of
        // 2,112; gate/up: stride 2,048 + 32 -> 2,112, 64 padding columns over 16,384 rows and no A rows. bf16.
        var (weights, perToken) = GpuMemoryPlan.SpareColumnBytes(Llama1B, 16, all);
        Assert.Equal(2L * (64 * 3072 + 48 * 2112) + 2L * 64 * 16384, weights);
        Assert.Equal(2L * (64 - 48) + 2L * (64 - 32), perToken);
        // q/k norms keep the three products apart (their backward pass runs between RoPE's and the products): no A rows.
        var (qwen, _) = GpuMemoryPlan.SpareColumnBytes(Llama1B with { ModelType = "qwen3", QkNorm = true }, 16, all);
        Assert.Equal(2L * 64 * 3072 + 2L * 64 * 16384, qwen);
        // The scratch holds a dropped input (intermediate 8,192 wide at 1B) or the packed [dq | dk | dv | g] rows (2,048 + 2 x 512 + 48).
        Assert.Equal(8192, GpuMemoryPlan.ScratchWidth(Llama1B, 16));
        // The tiny model's packed rows (64 + 2 x 32 + 3 x 8 = 152) are wider than its intermediate size (96).
        Assert.Equal(152, GpuMemoryPlan.ScratchWidth(Tiny, 8));
    }

    [Fact]
    public void Checkpointing_keeps_q_k_v_and_with_qk_norms_their_inputs_and_rstd()
    {
        // q 64 + k 32 + v 32 bf16 = 256 bytes; with q/k norms also the pre-norm q and k (bf16, 96) and 4 + 2 heads' rstd (fp32).
        Assert.Equal(256, GpuMemoryPlan.QkvBytes(Tiny));
        Assert.Equal(256 + 192 + 24, GpuMemoryPlan.QkvBytes(Tiny with { ModelType = "qwen3", QkNorm = true }));
        // Attention out 64 + x1 64 bf16 and 4 heads' lse fp32 = 272, then q/k/v.
        Assert.Equal(272, GpuMemoryPlan.KeptBytes(Tiny, qkv: false));
        Assert.Equal(272 + 256, GpuMemoryPlan.KeptBytes(Tiny));
        var qwen3 = Tiny with { ModelType = "qwen3", QkNorm = true };
        var ckpt = GpuMemoryPlan.For(qwen3, 8, 7, adapterParameters: 10_000, batch: 2, sequenceLength: 64, gradientCheckpointing: true);
        // One shared set of the rest of a layer, and every layer's kept tensors (2 layers, 128 tokens).
        Assert.Equal((GpuMemoryPlan.LayerBytes(qwen3, 8, 7) - (272 + 472)) * 128 + (272 + 472) * 128 * 2, ckpt.Activations);
    }

    /// <summary>A preference micro-batch holds a chosen and a rejected sequence per pair: the plan must hold twice the tokens of SFT's.</summary>
    [Fact]
    public void A_preference_plan_holds_both_sequences_of_each_pair()
    {
        var sft = new Core.Config.TrainingConfig { R = 8, PerDeviceTrainBatchSize = 4 };
        var adapter = new Lora.LoraAdapter(Tiny, Lora.LoraSettings.From(sft));
        // 100 tokens pad to 112; four pairs are eight sequences of at most 112 rows each.
        var sftPlan = CudaTrainingDevice.PlanFor(Tiny, adapter, sft, longestSequence: 100);
        var dpoPlan = CudaTrainingDevice.PlanFor(Tiny, adapter, sft with { Trainer = "dpo" }, longestSequence: 100);
        Assert.Equal(4 * 112, sftPlan.Tokens);
        Assert.Equal(8 * 112, dpoPlan.Tokens);
        // The batch stays the configured pairs, so halving it in a suggestion means per_device_train_batch_size.
        Assert.Equal(4, dpoPlan.Batch);
    }

    [Fact]
    public void Gemma3_weights_count_the_sandwich_norms()
    {
        // Two more hidden-size norms per layer than the same shape without them.
        var gemma = Tiny with { ModelType = "gemma3_text", QkNorm = true, SandwichNorms = true, TieWordEmbeddings = true };
        Assert.Equal(CudaModelWeights.Bytes(gemma with { SandwichNorms = false }) + 2L * 2 * 64 * 2, CudaModelWeights.Bytes(gemma));
    }

    [Fact]
    public void Weights_are_bf16_with_the_tied_head_counted_once()
    {
        // Per layer: 2 norms of 2048 + q 2048² + k, v 512·2048 + o 2048² + gate, up, down 8192·2048 = 60,821,504 values;
        // 16 layers + embedding 128256·2048 (tied head) + final norm 2048 = 1,235,814,400 values, 2 bytes each.
        Assert.Equal(2_471_628_800L, CudaModelWeights.Bytes(Llama1B));
        Assert.Equal(2_471_628_800L + 2L * 128256 * 2048, CudaModelWeights.Bytes(Llama1B with { TieWordEmbeddings = false }));
    }

    [Fact]
    public void Checkpointed_layers_keep_o_and_down_lora_hidden_values_for_64_bytes_a_token_at_rank_16()
    {
        // Both o_proj and down_proj adapted (what the device counts from the adapter's targets): r = 16 bf16 values each.
        var ckpt = GpuMemoryPlan.For(Llama1B, 16, 7, adapterParameters: 11_272_192, batch: 4, sequenceLength: 2048, gradientCheckpointing: true, residualLoraTargets: 2);
        Assert.True(ckpt.KeepsLoraHiddens);
        Assert.Equal(64, GpuMemoryPlan.LoraHiddenBytes(16, 2));
        Assert.Equal((72040L - 14528) * 8192 + 14528L * 8192 * 16, ckpt.Activations);
        // Only down_proj adapted: half of it. Rebuilt by the recompute (the A/B): the plan of before.
        var downOnly = GpuMemoryPlan.For(Llama1B, 16, 5, adapterParameters: 9_000_000, batch: 4, sequenceLength: 2048, gradientCheckpointing: true, residualLoraTargets: 1);
        Assert.Equal(32L * 8192 * 15, downOnly.Activations - GpuMemoryPlan.For(Llama1B, 16, 5, 9_000_000, 4, 2048, gradientCheckpointing: true).Activations);
        var rebuilt = GpuMemoryPlan.For(Llama1B, 16, 7, 11_272_192, 4, 2048, gradientCheckpointing: true, residualLoraTargets: 2, keepLoraHiddens: false);
        Assert.False(rebuilt.KeepsLoraHiddens);
        Assert.Equal(64L * 8192 * 15, ckpt.Total - rebuilt.Total);
        // Nothing is kept without selective checkpointing, and the settings derived from a plan keep counting them.
        Assert.False(GpuMemoryPlan.For(Llama1B, 16, 7, 11_272_192, 4, 2048, gradientCheckpointing: false, residualLoraTargets: 2).KeepsLoraHiddens);
        Assert.False(GpuMemoryPlan.For(Llama1B, 16, 7, 11_272_192, 4, 2048, gradientCheckpointing: true, offloadCheckpoints: true, residualLoraTargets: 2).KeepsLoraHiddens);
        Assert.True(ckpt.With(Llama1B, 16, 7, 11_272_192, batch: 2).KeepsLoraHiddens);
        var lean = ckpt.KeepingWhatFits(Llama1B, 16, 7, 11_272_192, free: ckpt.Total - 1);
        Assert.True(lean.KeepsAttention && !lean.KeepsQkv && lean.KeepsLoraHiddens);
    }

    [Fact]
    public void Checkpointing_keeps_one_layer_of_activations_every_residual_and_each_layers_attention_output()
    {
        var full = GpuMemoryPlan.For(Llama1B, 16, 7, adapterParameters: 11_272_192, batch: 4, sequenceLength: 2048, gradientCheckpointing: false);
        var ckpt = GpuMemoryPlan.For(Llama1B, 16, 7, adapterParameters: 11_272_192, batch: 4, sequenceLength: 2048, gradientCheckpointing: true);
        // Without checkpointing the layers share one buffer for SwiGLU's output (8192 bf16 a token), refilled in the backward pass.
        Assert.True(full.SharesGluOutput);
        Assert.Equal((72040L - 2 * 8192) * 8192 * 16 + 2L * 8192 * 8192, full.Activations);
        var ownH = GpuMemoryPlan.For(Llama1B, 16, 7, adapterParameters: 11_272_192, batch: 4, sequenceLength: 2048, gradientCheckpointing: false, shareGluOutput: false);
        Assert.Equal(72040L * 8192 * 16, ownH.Activations);
        Assert.Equal(15L * 8192 * 8192 * 2, ownH.Total - full.Total);
        // Each layer keeps attention out (2048) and x1 (2048) bf16 and lse (32 heads) fp32: 8320 bytes a token,
        // and q (2048), k and v (512 each) bf16: 6144 more.
        Assert.Equal(8320, GpuMemoryPlan.KeptBytes(Llama1B, qkv: false));
        Assert.Equal(8320 + 6144, GpuMemoryPlan.KeptBytes(Llama1B));
        Assert.Equal((72040L - 14464) * 8192 + 14464L * 8192 * 16, ckpt.Activations);
        Assert.True(ckpt.KeepsAttention);
        Assert.True(ckpt.KeepsQkv);
        Assert.False(ckpt.SharesGluOutput);
        // Keeping only attention out, lse and x1 (the benchmark's :attnonly): q/k/v are one shared set, recomputed.
        var attentionOnly = GpuMemoryPlan.For(Llama1B, 16, 7, adapterParameters: 11_272_192, batch: 4, sequenceLength: 2048, gradientCheckpointing: true, keepQkv: false);
        Assert.False(attentionOnly.KeepsQkv);
        Assert.Equal((72040L - 8320) * 8192 + 8320L * 8192 * 16, attentionOnly.Activations);
        Assert.Equal(6144L * 8192 * 15, ckpt.Total - attentionOnly.Total);
        // Without the kept tensors (the benchmark's A/B): one layer's activations, recomputed whole.
        var plain = GpuMemoryPlan.For(Llama1B, 16, 7, adapterParameters: 11_272_192, batch: 4, sequenceLength: 2048, gradientCheckpointing: true, keepAttention: false);
        Assert.Equal(72040L * 8192, plain.Activations);
        Assert.False(plain.KeepsQkv);
        // The residual stream at the 17 layer boundaries, bf16: 17 x 8192 x 2048 x 2.
        Assert.Equal(570_425_344L, full.Residuals);
        Assert.Equal(full.Residuals, ckpt.Residuals);
        // fp32 values, gradients, two moments + a bf16 copy: 18 bytes per trainable value.
        Assert.Equal(11_272_192L * 18, full.Adapter);
        Assert.Equal(full.Weights + full.Adapter + full.Activations + full.Residuals + full.Workspace + GpuMemoryPlan.FixedBytes, full.Total);
    }

    /// <summary>
    /// The kept tensors buy speed, never the run: a checkpointed run that does not fit keeping them recomputes q/k/v,
    /// then the attention output too, before it fails; the suggestion of checkpointing counts that.
    /// </summary>
    [Fact]
    public void A_checkpointed_run_short_of_memory_keeps_less_before_it_fails()
    {
        const long adapter = 11_272_192;
        var ckpt = GpuMemoryPlan.For(Llama1B, 16, 7, adapter, 4, 2048, gradientCheckpointing: true);
        var attentionOnly = GpuMemoryPlan.For(Llama1B, 16, 7, adapter, 4, 2048, gradientCheckpointing: true, keepQkv: false);
        var recomputeAll = GpuMemoryPlan.For(Llama1B, 16, 7, adapter, 4, 2048, gradientCheckpointing: true, keepAttention: false);
        Assert.True(recomputeAll.Total < attentionOnly.Total && attentionOnly.Total < ckpt.Total);
        Assert.Same(ckpt, ckpt.KeepingWhatFits(Llama1B, 16, 7, adapter, ckpt.Total));
        var lean = ckpt.KeepingWhatFits(Llama1B, 16, 7, adapter, ckpt.Total - 1);
        Assert.True(lean.KeepsAttention);
        Assert.False(lean.KeepsQkv);
        Assert.Equal(attentionOnly.Total, lean.Total);
        var leaner = ckpt.KeepingWhatFits(Llama1B, 16, 7, adapter, attentionOnly.Total - 1);
        Assert.False(leaner.KeepsAttention);
        Assert.Equal(recomputeAll.Total, leaner.Total);
        // Nothing fits: the least the run needs, which the error message names.
        Assert.Equal(recomputeAll.Total, ckpt.KeepingWhatFits(Llama1B, 16, 7, adapter, recomputeAll.Total - 1).Total);
        // A run without checkpointing is told to turn it on wherever it fits recomputing everything.
        var plain = GpuMemoryPlan.For(Llama1B, 16, 7, adapter, 4, 2048, gradientCheckpointing: false);
        Assert.Equal("gradient_checkpointing: true", plain.Suggest(Llama1B, 16, 7, adapter, recomputeAll.Total));
        Assert.NotEqual("gradient_checkpointing: true", plain.Suggest(Llama1B, 16, 7, adapter, recomputeAll.Total - 1));
        // Plans that keep nothing for speed are what they are.
        var qlora = GpuMemoryPlan.For(Llama1B, 16, 7, adapter, 4, 2048, gradientCheckpointing: true, QLoRA);
        Assert.Same(qlora, qlora.KeepingWhatFits(Llama1B, 16, 7, adapter, 1));
    }

    /// <summary>
    /// A gpu_memory_limit above what checkpointing needs keeps as many layers whole (not recomputed) as it has room for, the last
    /// ones; each adds its activations less the kept tensors it already holds and h, which it shares.
    /// </summary>
    [Fact]
    public void A_memory_limit_keeps_the_layers_it_has_room_for_whole()
    {
        const long adapter = 11_272_192;
        var ckpt = GpuMemoryPlan.For(Llama1B, 16, 7, adapter, 4, 2048, gradientCheckpointing: true, residualLoraTargets: 2);
        // norm1 2048 + norm2 2048 + gate 8192 + up 8192 + q/k/v/gate/up's LoRA hidden values 5 x 16, bf16, and rstd1, rstd2 fp32:
        // 2 x 20560 + 8 = 41128 bytes a token.
        Assert.Equal(41128L * 8192, ckpt.WholeLayerBytes);
        var six = ckpt.KeepingWholeLayers(16, ckpt.Total + 6 * ckpt.WholeLayerBytes + ckpt.WholeLayerBytes / 2);
        Assert.Equal(6, six.WholeLayers);
        Assert.Equal(ckpt.Activations + 6 * 41128L * 8192, six.Activations);
        Assert.Equal(ckpt.Total + 6 * 41128L * 8192, six.Total);
        Assert.True(six.Recomputes(9, 16));
        Assert.False(six.Recomputes(10, 16));
        Assert.False(six.Recomputes(15, 16));
        Assert.Contains("gradient checkpointing on, the last 6 layers kept whole)", six.Describe("H200", 139L << 30, 8L << 30));
        Assert.Contains("of the 8.00 GiB gpu_memory_limit (139.00 GiB free)", six.Describe("H200", 139L << 30, 8L << 30));
        // Exactly room for six: six; a byte short of the first: none; more than every layer needs: all sixteen.
        Assert.Equal(6, ckpt.KeepingWholeLayers(16, ckpt.Total + 6 * ckpt.WholeLayerBytes).WholeLayers);
        Assert.Same(ckpt, ckpt.KeepingWholeLayers(16, ckpt.Total + ckpt.WholeLayerBytes - 1));
        Assert.Same(ckpt, ckpt.KeepingWholeLayers(16, ckpt.Total - 1));
        Assert.Equal(16, ckpt.KeepingWholeLayers(16, 1L << 40).WholeLayers);
        Assert.False(ckpt.KeepingWholeLayers(16, 1L << 40).Recomputes(0, 16));
        // Plans chosen for memory, or without checkpointing, are what they are.
        var offload = GpuMemoryPlan.For(Llama1B, 16, 7, adapter, 4, 2048, gradientCheckpointing: true, offloadCheckpoints: true);
        Assert.Same(offload, offload.KeepingWholeLayers(16, 1L << 40));
        var qlora = GpuMemoryPlan.For(Llama1B, 16, 7, adapter, 4, 2048, gradientCheckpointing: true, QLoRA);
        Assert.Same(qlora, qlora.KeepingWholeLayers(16, 1L << 40));
        var plain = GpuMemoryPlan.For(Llama1B, 16, 7, adapter, 4, 2048, gradientCheckpointing: false);
        Assert.Same(plain, plain.KeepingWholeLayers(16, 1L << 40));
        Assert.False(plain.Recomputes(0, 16));
        Assert.True(ckpt.Recomputes(15, 16));
    }

    /// <summary>A checkpointed run without a limit hears which gpu_memory_limit would use the GPU's room, a tenth of it spare.</summary>
    [Fact]
    public void A_checkpointed_run_with_room_to_spare_hears_which_limit_keeps_layers_whole()
    {
        var ckpt = GpuMemoryPlan.For(Llama1B, 16, 7, 11_272_192, 4, 2048, gradientCheckpointing: true, residualLoraTargets: 2);
        // A 24 GiB card: 21.6 GiB usable; 21.6 GiB keeps every layer whole (6.26 + 16 x 0.31 GiB = 11.3 GiB planned).
        var hint = ckpt.WholeLayersHint(16, 24L << 30);
        Assert.Equal($"The GPU has room to recompute fewer layers: gpu_memory_limit: 21.6 in lora.yaml keeps 16 of 16 layers whole ({GpuMemoryPlan.Gib(ckpt.Total + 16 * ckpt.WholeLayerBytes)} planned instead of {GpuMemoryPlan.Gib(ckpt.Total)}), the same training, faster.", hint);
        // 8 GiB free: 7.2 usable, rounded down to a tenth of a GiB, room for three.
        var usable = (long)(7.2 * (1L << 30));
        Assert.True(ckpt.Total + 3 * ckpt.WholeLayerBytes <= usable && ckpt.Total + 4 * ckpt.WholeLayerBytes > usable);
        Assert.Contains("gpu_memory_limit: 7.2 in lora.yaml keeps 3 of 16 layers whole", ckpt.WholeLayersHint(16, 8L << 30));
        // No room for one layer once a tenth is spare: nothing to say; nor once layers are kept whole, nor without checkpointing.
        Assert.Null(ckpt.WholeLayersHint(16, ckpt.Total + ckpt.WholeLayerBytes));
        Assert.Null(ckpt.KeepingWholeLayers(16, 1L << 40).WholeLayersHint(16, 24L << 30));
        Assert.Null(GpuMemoryPlan.For(Llama1B, 16, 7, 11_272_192, 4, 2048, gradientCheckpointing: false).WholeLayersHint(16, 24L << 30));
    }

    [Fact]
    public void A_checkpointed_run_that_fits_without_checkpointing_says_so()
    {
        var ckpt = GpuMemoryPlan.For(Llama1B, 16, 7, adapterParameters: 11_272_192, batch: 4, sequenceLength: 2048, gradientCheckpointing: true);
        var plain = GpuMemoryPlan.For(Llama1B, 16, 7, adapterParameters: 11_272_192, batch: 4, sequenceLength: 2048, gradientCheckpointing: false);
        var hint = ckpt.FasterFit(Llama1B, 16, 7, 11_272_192, free: 139L << 30);
        Assert.NotNull(hint);
        Assert.Contains("gradient_checkpointing: false", hint);
        Assert.Contains(GpuMemoryPlan.Gib(plain.Total), hint);
        // A tenth of the free memory stays spare: just enough for the plain run is not enough for the hint.
        Assert.Null(ckpt.FasterFit(Llama1B, 16, 7, 11_272_192, free: plain.Total + plain.Total / 20));
        Assert.NotNull(ckpt.FasterFit(Llama1B, 16, 7, 11_272_192, free: plain.Total + plain.Total / 8));
        // Nothing to say when checkpointing is already off.
        Assert.Null(plain.FasterFit(Llama1B, 16, 7, 11_272_192, free: 139L << 30));
    }

    [Fact]
    public void Workspace_includes_the_chunked_head_not_full_logits()
    {
        var plan = GpuMemoryPlan.For(Llama1B, 16, 7, 11_272_192, 4, 2048, gradientCheckpointing: false);
        // The head's workspace: 8192-wide chunk of fp32 logits + bf16 exponentials (6 bytes), an fp32 [rows, hidden] accumulator, 3 fp32 per row.
        const long head = 8192L * 8192 * 6 + 8192L * 2048 * 4 + 8192L * 12;
        Assert.Equal(GpuMemoryPlan.WorkspaceBytesPerToken(Llama1B, 16) * 8192 + head, plan.Workspace);
        Assert.True(plan.Workspace < 8192L * 128256 * 4, "less than the full fp32 logits alone");
    }

    [Fact]
    public void Suggests_checkpointing_then_offload_then_smaller_batches_then_4bit_then_shorter_sequences()
    {
        const long adapter = 11_272_192;
        var plan = GpuMemoryPlan.For(Llama1B, 16, 7, adapter, 4, 2048, gradientCheckpointing: false);
        var ckpt = plan.With(Llama1B, 16, 7, adapter, gradientCheckpointing: true);
        Assert.Equal("gradient_checkpointing: true", plan.Suggest(Llama1B, 16, 7, adapter, ckpt.Total));
        // At 16 layers the offloaded checkpoints (the same batch) take less than half the batch keeping every layer's tensors.
        var half = plan.With(Llama1B, 16, 7, adapter, batch: 2, gradientCheckpointing: true);
        var offload = GpuMemoryPlan.For(Llama1B, 16, 7, adapter, 4, 2048, gradientCheckpointing: true, offloadCheckpoints: true);
        Assert.True(offload.Total < half.Total);
        Assert.Equal("gradient_checkpointing: offload", plan.Suggest(Llama1B, 16, 7, adapter, half.Total));
        // At 4 layers offloading saves less than halving the batch: the smaller batch comes first.
        var shallow = Llama1B with { NumLayers = 4 };
        var shallowPlan = GpuMemoryPlan.For(shallow, 16, 7, adapter, 4, 2048, gradientCheckpointing: false);
        var shallowHalf = shallowPlan.With(shallow, 16, 7, adapter, batch: 2, gradientCheckpointing: true);
        Assert.StartsWith("gradient_checkpointing: true, per_device_train_batch_size: 2", shallowPlan.Suggest(shallow, 16, 7, adapter, shallowHalf.Total));
        // Where one short bf16 sequence fits, 4-bit weights at the whole batch fit too: they save more.
        var shortSeq = plan.With(Llama1B, 16, 7, adapter, batch: 1, sequenceLength: 512, gradientCheckpointing: true);
        Assert.Equal("gradient_checkpointing: true, load_in_4bit: true", plan.Suggest(Llama1B, 16, 7, adapter, shortSeq.Total));
        var fourBitHalf = plan.With(Llama1B, 16, 7, adapter, batch: 2, gradientCheckpointing: true, fourBit: QLoRA);
        Assert.StartsWith("gradient_checkpointing: true, load_in_4bit: true, per_device_train_batch_size: 2", plan.Suggest(Llama1B, 16, 7, adapter, fourBitHalf.Total));
        var fourBitShort = plan.With(Llama1B, 16, 7, adapter, batch: 1, sequenceLength: 512, gradientCheckpointing: true, fourBit: QLoRA);
        Assert.Equal("gradient_checkpointing: true, load_in_4bit: true, per_device_train_batch_size: 1, max_seq_length: 512", plan.Suggest(Llama1B, 16, 7, adapter, fourBitShort.Total));
    }

    private static ModelConfig Llama8B => new()
    {
        ModelType = "llama", VocabSize = 128256, HiddenSize = 4096, IntermediateSize = 14336, NumLayers = 32,
        NumHeads = 32, NumKvHeads = 8, HeadDim = 128, TieWordEmbeddings = false,
    };

    /// <summary>Llama-3.1-8B on a 16 GiB card: its bf16 weights alone do not fit, so QLoRA is what the message says.</summary>
    [Fact]
    public void Suggests_load_in_4bit_when_only_4bit_weights_fit()
    {
        const long adapter = 41_943_040;
        var plan = GpuMemoryPlan.For(Llama8B, 16, 7, adapter, 2, 2048, gradientCheckpointing: false);
        var qlora = plan.With(Llama8B, 16, 7, adapter, gradientCheckpointing: true, fourBit: QLoRA);
        var bf16 = plan.With(Llama8B, 16, 7, adapter, gradientCheckpointing: true);
        // 4-bit runs recompute attention rather than keep each layer's output (KeepsAttention): 2 GiB at this shape.
        Assert.False(qlora.KeepsAttention);
        // 8B keeps 16,512 bytes a token a layer for attention and 12,288 for q/k/v (4096 + 2 x 1024 bf16).
        Assert.False(qlora.KeepsQkv);
        Assert.Equal(bf16.Activations - (16_512L + 12_288) * 4096 * 31, qlora.Activations);
        Assert.True(qlora.Total < bf16.Total / 2, $"the 4-bit plan ({GpuMemoryPlan.Gib(qlora.Total)}) is under half the bf16 one ({GpuMemoryPlan.Gib(bf16.Total)})");
        Assert.True(plan.Weights > 14L << 30, "bf16 weights alone are ~15 GiB");
        Assert.Equal("gradient_checkpointing: true, load_in_4bit: true", plan.Suggest(Llama8B, 16, 7, adapter, 16L << 30));
        Assert.Equal("gradient_checkpointing: true, load_in_4bit: true", plan.Suggest(Llama8B, 16, 7, adapter, qlora.Total));
        var qloraHalf = plan.With(Llama8B, 16, 7, adapter, batch: 1, gradientCheckpointing: true, fourBit: QLoRA);
        Assert.StartsWith("gradient_checkpointing: true, load_in_4bit: true, per_device_train_batch_size: 1", plan.Suggest(Llama8B, 16, 7, adapter, qloraHalf.Total));
        var shortSeq = plan.With(Llama8B, 16, 7, adapter, batch: 1, sequenceLength: 512, gradientCheckpointing: true, fourBit: QLoRA);
        Assert.Equal("gradient_checkpointing: true, load_in_4bit: true, per_device_train_batch_size: 1, max_seq_length: 512", plan.Suggest(Llama8B, 16, 7, adapter, shortSeq.Total));
        // A run already in 4-bit is not told to set it again.
        var fourBit = GpuMemoryPlan.For(Llama8B, 16, 7, adapter, 2, 2048, gradientCheckpointing: true, QLoRA);
        Assert.Equal("per_device_train_batch_size: 1, max_seq_length: 512", fourBit.Suggest(Llama8B, 16, 7, adapter, shortSeq.Total));
        Assert.Null(plan.Suggest(Llama8B, 16, 7, adapter, qlora.Weights));
        Assert.Contains("(projections 4-bit nf4, double quantization, bf16 compute; input embedding 0.98 GiB in host memory)", qlora.Describe("H200", 1L << 40));
    }

    private static readonly FourBitSettings QLoRA = new(FourBitType.Nf4, DoubleQuant: true);

    /// <summary>
    /// gradient_checkpointing: offload on a bf16 Llama-3.1-8B at 2 x 2048 tokens: the untied embedding and 30 of the
    /// 33 checkpoints in pinned host memory, no kept attention tensors; what is left on the GPU is the bf16 weights
    /// without the embedding, LoRA + AdamW, one layer's activations, four checkpoint slots and the workspace.
    /// </summary>
    [Fact]
    public void Offloaded_checkpointing_keeps_a_bf16_runs_untied_embedding_and_checkpoints_in_host_memory()
    {
        const long adapter = 41_943_040;
        var plan = GpuMemoryPlan.For(Llama8B, 16, 7, adapter, 2, 2048, gradientCheckpointing: true, offloadCheckpoints: true);
        var onGpu = GpuMemoryPlan.For(Llama8B, 16, 7, adapter, 2, 2048, gradientCheckpointing: true);
        Assert.True(plan.OffloadCheckpoints);
        Assert.False(plan.KeepsAttention);
        Assert.True(onGpu.KeepsAttention);
        Assert.Equal(2L * 128256 * 4096, plan.HostEmbedding);
        Assert.Equal(onGpu.Weights - 2L * 128256 * 4096, plan.Weights);
        Assert.Equal(CudaModelWeights.Bytes(Llama8B with { TieWordEmbeddings = true }), plan.Weights);
        Assert.Equal(30L * 4096 * 4096 * 2, plan.HostCheckpoints);
        Assert.Equal(4L * 4096 * 4096 * 2, plan.Residuals);
        Assert.Equal(GpuMemoryPlan.LayerBytes(Llama8B, 16, 7) * 4096, plan.Activations);
        Assert.Equal(plan.Weights + plan.Adapter + plan.Activations + plan.Residuals + plan.Workspace + GpuMemoryPlan.FixedBytes, plan.Total);
        Assert.Contains("(input embedding 0.98 GiB in host memory)", plan.Describe("H200", 1L << 40));
        Assert.Contains("(checkpoints 0.94 GiB in host memory)", plan.Describe("H200", 1L << 40));
        // Less than the default by the embedding, 30 checkpoints less 3 slots, and the kept attention tensors.
        Assert.Equal(onGpu.Total - plan.Total,
            2L * 128256 * 4096 + (33L - 4) * 4096 * 4096 * 2 + GpuMemoryPlan.KeptBytes(Llama8B) * 4096 * 32 - GpuMemoryPlan.KeptBytes(Llama8B) * 4096);
        // A bf16 run that fits only this way is told so, before a smaller batch or 4-bit weights.
        var off = GpuMemoryPlan.For(Llama8B, 16, 7, adapter, 2, 2048, gradientCheckpointing: false);
        Assert.Equal("gradient_checkpointing: offload", off.Suggest(Llama8B, 16, 7, adapter, 17L << 30));
        Assert.Equal("gradient_checkpointing: offload", onGpu.Suggest(Llama8B, 16, 7, adapter, plan.Total));
        // Just under it even one sequence in bf16 does not fit (the weights are 14 GiB): 4-bit is next.
        Assert.Equal("gradient_checkpointing: true, load_in_4bit: true", off.Suggest(Llama8B, 16, 7, adapter, plan.Total - 1));
        // Without checkpointing nothing is offloaded; a tied embedding (the head) stays on the GPU.
        Assert.False(GpuMemoryPlan.For(Llama8B, 16, 7, adapter, 2, 2048, gradientCheckpointing: false, offloadCheckpoints: true).OffloadCheckpoints);
        Assert.Equal(0, GpuMemoryPlan.For(Llama1B, 16, 7, 11_272_192, 4, 2048, gradientCheckpointing: true, offloadCheckpoints: true).HostEmbedding);
    }

    /// <summary>
    /// Llama-3.1-8B in QLoRA at 2 x 2048 tokens with checkpointing: the frozen untied embedding and all but the
    /// last two residual checkpoints are in pinned host memory, so the GPU plan is under 8 GiB.
    /// </summary>
    [Fact]
    public void Four_bit_keeps_an_untied_embedding_and_the_checkpoints_in_host_memory()
    {
        const long adapter = 41_943_040;
        var plan = GpuMemoryPlan.For(Llama8B, 16, 7, adapter, 2, 2048, gradientCheckpointing: true, QLoRA);
        // The embedding, 128256 x 4096 bf16, leaves the GPU; the head (the same size) stays: the weights are the tied model's.
        Assert.Equal(2L * 128256 * 4096, plan.HostEmbedding);
        Assert.Equal(CudaModelWeights.Bytes(Llama8B with { TieWordEmbeddings = true }, QLoRA), plan.Weights);
        // 33 boundaries of 4096 tokens x 4096 bf16: 30 in host memory; the GPU holds two alternating slots, a recomputation slot and the last layer's output.
        Assert.True(plan.OffloadCheckpoints);
        Assert.Equal(30L * 4096 * 4096 * 2, plan.HostCheckpoints);
        Assert.Equal(4L * 4096 * 4096 * 2, plan.Residuals);
        Assert.Equal(plan.Weights + plan.Dequantized + plan.Adapter + plan.Activations + plan.Residuals + plan.Workspace + GpuMemoryPlan.FixedBytes, plan.Total);
        Assert.True(plan.Total < 8L << 30, $"the plan is {GpuMemoryPlan.Gib(plan.Total)}");
        Assert.Contains("input embedding 0.98 GiB in host memory", plan.Describe("H200", 1L << 40));
        Assert.Contains("residuals 0.13 GiB (checkpoints 0.94 GiB in host memory)", plan.Describe("H200", 1L << 40));
        // Without checkpointing every layer's activations are on the GPU anyway: the residuals stay there too.
        var full = GpuMemoryPlan.For(Llama8B, 16, 7, adapter, 2, 2048, gradientCheckpointing: false, QLoRA);
        Assert.False(full.OffloadCheckpoints);
        Assert.Equal(33L * 4096 * 4096 * 2, full.Residuals);
        // A tied embedding is the head too: it stays on the GPU. bf16 runs keep everything there.
        Assert.Equal(0, GpuMemoryPlan.For(Llama1B, 16, 7, 11_272_192, 4, 2048, gradientCheckpointing: true, QLoRA).HostEmbedding);
        var bf16 = GpuMemoryPlan.For(Llama8B, 16, 7, adapter, 2, 2048, gradientCheckpointing: true);
        Assert.Equal((0L, 0L, false), (bf16.HostEmbedding, bf16.HostCheckpoints, bf16.OffloadCheckpoints));
    }

    [Fact]
    public void Four_bit_weights_are_counted_by_hand()
    {
        // Per layer, each projection: count/2 code bytes + count/64 absmax codes + 4 bytes per 256 of those:
        // q, o (2048²): 2,097,152 + 65,536 + 1,024; k, v (512·2048): 524,288 + 16,384 + 256;
        // gate, up, down (8192·2048): 8,388,608 + 262,144 + 4,096; together 31,373,824 bytes, x16 layers.
        // Norms, the embedding (tied head) and the final norm stay bf16: 2 x (16·4096 + 128256·2048 + 2048).
        Assert.Equal(16L * 31_373_824 + 2L * (16 * 4096 + 128256L * 2048 + 2048), CudaModelWeights.Bytes(Llama1B, QLoRA));
        // Without double quantization the absmax values are float32: 4 bytes per 64 values.
        var plain = new FourBitSettings(FourBitType.Fp4, DoubleQuant: false);
        Assert.Equal(16L * (2 * (2_097_152 + 4 * 65_536) + 2 * (524_288 + 4 * 16_384) + 3 * (8_388_608 + 4 * 262_144)) + 2L * (16 * 4096 + 128256L * 2048 + 2048),
            CudaModelWeights.Bytes(Llama1B, plain));
        // The plan adds the one bf16 buffer projections are dequantized into: the largest, 8192·2048.
        var plan = GpuMemoryPlan.For(Llama1B, 16, 7, 11_272_192, 4, 2048, gradientCheckpointing: true, QLoRA);
        Assert.Equal(2L * 8192 * 2048, plan.Dequantized);
        Assert.Equal(plan.Weights + plan.Dequantized + plan.Adapter + plan.Activations + plan.Residuals + plan.Workspace + GpuMemoryPlan.FixedBytes, plan.Total);
        Assert.Equal(0, GpuMemoryPlan.For(Llama1B, 16, 7, 11_272_192, 4, 2048, gradientCheckpointing: true).Dequantized);
    }
}
