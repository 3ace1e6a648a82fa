using FineTune.Engine.Backends.Cuda.Verification;

namespace FineTune.Engine.Tests.Cuda;

/// <summary>Opens the GPU once for all kernel tests, and only when one of them runs.</summary>
public sealed class KernelChecksFixture : IDisposable
{
    private readonly Lazy<KernelChecks> _checks = new(KernelChecks.Open);

    /// <summary>The shared checks (opened on first use).</summary>
    public KernelChecks Checks => _checks.Value;

    public void Dispose()
    {
        if (_checks.IsValueCreated)
            _checks.Value.Dispose();
    }
}

/// <summary>
/// Every CUDA kernel against its float64 CPU reference on fresh random inputs, within bf16
/// tolerance, bit-identical over two runs (the same checks bench/cuda-kernels prints).
/// </summary>
public sealed class CudaKernelTests(KernelChecksFixture fixture) : IClassFixture<KernelChecksFixture>
{
    private void Check(string name)
    {
        var result = fixture.Checks.Run(name);
        Assert.True(result.Passed, result.ToString());
    }

    [CudaFact] public void Gemm_linear_forward_bf16() => Check("gemm_linear_forward_bf16");
    [CudaFact] public void Gemm_input_gradient_bf16() => Check("gemm_input_grad_bf16");
    [CudaFact] public void Gemm_weight_gradient_f32() => Check("gemm_weight_grad_f32");
    [CudaFact] public void Gemm_accumulates_into_f32() => Check("gemm_accumulate_f32");
    [CudaFact] public void Gemm_reads_a_lora_group_column_view_as_first_operand() => Check("gemm_strided_first_operand");
    [CudaFact] public void Gemm_reads_g_in_spare_columns_as_transposed_first_operand() => Check("gemm_strided_first_transposed");
    [CudaFact] public void Gemm_reads_a_lora_group_column_view_as_second_operand() => Check("gemm_strided_second_operand");
    [CudaFact] public void Gemm_writes_only_its_columns_of_a_lora_group_buffer() => Check("gemm_strided_output");
    [CudaFact] public void Gemm_writes_g_into_its_columns_of_a_lora_group_buffer() => Check("gemm_strided_output_g");
    [CudaFact] public void RmsNorm_forward() => Check("rmsnorm_forward");
    [CudaFact] public void RmsNorm_forward_writes_only_its_columns_of_a_strided_input() => Check("rmsnorm_forward_strided");
    [CudaFact] public void RmsNorm_backward_accumulates() => Check("rmsnorm_backward");
    [CudaFact] public void RmsNorm_backward_writes_only_its_columns_of_a_strided_gradient() => Check("rmsnorm_backward_strided");
    [CudaFact] public void RmsNorm_forward_with_gemma_offset_weights_adds_the_residual() => Check("rmsnorm_forward_gemma");
    [CudaFact] public void RmsNorm_backward_with_gemma_offset_weights() => Check("rmsnorm_backward_gemma");
    [CudaFact] public void RmsNorm_forward_a_warp_per_row_of_576() => Check("rmsnorm_forward_smollm2");
    [CudaFact] public void RmsNorm_backward_a_warp_per_row_of_576() => Check("rmsnorm_backward_smollm2");
    [CudaFact] public void RmsNorm_forward_a_block_per_row_of_4096() => Check("rmsnorm_forward_block_per_row");
    [CudaFact] public void RmsNorm_backward_a_block_per_row_of_4096() => Check("rmsnorm_backward_block_per_row");
    [CudaFact] public void Rope_with_llama3_frequencies() => Check("rope_llama3");
    [CudaFact] public void Rope_of_q_and_k_in_one_launch() => Check("rope_q_and_k");
    [CudaFact] public void Rope_of_a_head_dim_not_a_multiple_of_8() => Check("rope_q_and_k_scalar");
    [CudaFact] public void Inverse_rope_into_packed_q_k_v_rows_equals_it_in_place() => Check("rope_packed");
    [CudaFact] public void Inverse_rope_into_packed_rows_of_a_head_dim_not_a_multiple_of_8() => Check("rope_packed_scalar");
    [CudaFact] public void SwiGlu_forward() => Check("swiglu_forward");
    [CudaFact] public void SwiGlu_backward() => Check("swiglu_backward");
    [CudaFact] public void GeGlu_tanh_forward() => Check("geglu_forward");
    [CudaFact] public void GeGlu_tanh_backward() => Check("geglu_backward");
    [CudaFact] public void SwiGlu_over_one_products_gate_up_rows_forward_and_in_place_backward() => Check("swiglu_gate_up_rows");
    [CudaFact] public void GeGlu_over_one_products_gate_up_rows_forward_and_in_place_backward() => Check("geglu_gate_up_rows");
    [CudaFact] public void Attention_head_dim_64() => Check("attention_hd64");
    [CudaFact] public void Attention_head_dim_64_with_64_row_tiles() => Check("attention_hd64_rows64");
    [CudaFact] public void Attention_head_dim_128() => Check("attention_hd128");
    [CudaFact] public void Attention_head_dim_128_with_128_row_tiles() => Check("attention_hd128_rows128");
    [CudaFact] public void Attention_llama_3_2_1b_heads_odd_length() => Check("attention_llama1b_heads");
    [CudaFact] public void Attention_llama_3_1_8b_heads_odd_length() => Check("attention_llama8b_heads");
    [CudaFact] public void Attention_smollm2_135m_heads_odd_length() => Check("attention_smollm2_heads");
    [CudaFact] public void Attention_smollm2_135m_heads_with_64_row_tiles() => Check("attention_smollm2_heads_rows64");
    [CudaFact] public void Attention_head_dim_64_backward_in_separate_launches() => Check("attention_hd64_separate_launches");
    [CudaFact] public void Attention_head_dim_64_backward_in_separate_launches_with_64_row_tiles() => Check("attention_hd64_rows64_separate_launches");
    [CudaFact] public void Attention_head_dim_128_backward_in_separate_launches() => Check("attention_hd128_separate_launches");
    [CudaFact] public void Attention_short_sequences() => Check("attention_short_sequences");
    [CudaFact] public void Attention_head_dim_256_with_query_pre_attn_scale() => Check("attention_hd256");
    [CudaFact] public void Attention_head_dim_256_with_64_row_tiles() => Check("attention_hd256_rows64");
    [CudaFact] public void Attention_head_dim_256_backward_in_separate_launches() => Check("attention_hd256_separate_launches");
    [CudaFact] public void Attention_gemma_3_1b_local_layer_sliding_window() => Check("attention_gemma3_1b_local");
    [CudaFact] public void Attention_gemma_3_1b_local_layer_with_64_row_tiles_and_separate_launches() => Check("attention_gemma3_1b_local_rows64");
    [CudaFact] public void Attention_window_longer_than_the_sequence_is_causal() => Check("attention_hd256_window_longer_than_sequence");
    [CudaFact] public void Attention_head_dim_64_sliding_window() => Check("attention_hd64_window");
    [CudaFact] public void Attention_head_dim_64_sliding_window_with_64_row_tiles() => Check("attention_hd64_window_rows64");
    [CudaFact] public void Attention_head_dim_64_sliding_window_in_separate_launches() => Check("attention_hd64_window_separate_launches");
    [CudaFact] public void Attention_head_dim_128_window_shorter_than_a_tile() => Check("attention_hd128_window");
    [CudaFact] public void Attention_head_dim_128_window_with_128_row_tiles() => Check("attention_hd128_window_rows128");
    [CudaFact] public void Attention_one_launch_over_variable_length_sequences_head_dim_64() => Check("attention_varlen_hd64");
    [HopperFact] public void Attention_hopper_head_dim_64() => Check("attention_hd64_hopper");
    [HopperFact] public void Attention_hopper_llama_3_2_1b_heads_odd_length() => Check("attention_llama1b_heads_hopper");
    [HopperFact] public void Attention_hopper_smollm2_135m_heads_odd_length() => Check("attention_smollm2_heads_hopper");
    [HopperFact] public void Attention_hopper_short_sequences() => Check("attention_short_sequences_hopper");
    [HopperFact] public void Attention_hopper_sliding_window() => Check("attention_hd64_window_hopper");
    [HopperFact] public void Attention_hopper_backward_stages_in_separate_launches() => Check("attention_hd64_hopper_separate_launches");
    [HopperFact] public void Attention_hopper_one_launch_over_variable_length_sequences() => Check("attention_varlen_hd64_hopper");
    [HopperFact] public void Attention_hopper_head_dim_128() => Check("attention_hd128_hopper");
    [HopperFact] public void Attention_hopper_llama_3_1_8b_heads_odd_length() => Check("attention_llama8b_heads_hopper");
    [HopperFact] public void Attention_hopper_head_dim_128_short_sequences() => Check("attention_hd128_short_sequences_hopper");
    [HopperFact] public void Attention_hopper_head_dim_128_window_shorter_than_a_tile() => Check("attention_hd128_window_hopper");
    [HopperFact] public void Attention_hopper_head_dim_128_backward_stages_in_separate_launches() => Check("attention_hd128_hopper_separate_launches");
    [HopperFact] public void Attention_hopper_head_dim_128_one_launch_over_variable_length_sequences() => Check("attention_varlen_hd128_hopper");
    [HopperFact] public void Attention_hopper_head_dim_128_two_warpgroups_per_block_sliding_window() => Check("attention_hd128_window_hopper_rows128");
    [HopperFact] public void Attention_hopper_two_warpgroups_per_block_smollm2_135m_heads() => Check("attention_smollm2_heads_hopper_rows128");
    [HopperFact] public void Attention_hopper_two_warpgroups_per_block_sliding_window_separate_launches() => Check("attention_hd64_window_hopper_rows128");
    [HopperFact] public void Attention_hopper_two_warpgroups_per_block_variable_length_sequences() => Check("attention_varlen_hd64_hopper_rows128");
    [CudaFact] public void Attention_one_launch_over_variable_length_sequences_with_64_row_tiles() => Check("attention_varlen_hd64_rows64");
    [CudaFact] public void Attention_one_launch_over_variable_length_sequences_head_dim_128() => Check("attention_varlen_hd128");
    [CudaFact] public void Attention_one_launch_over_variable_length_sequences_head_dim_256_sliding_window() => Check("attention_varlen_hd256_window");
    [CudaFact] public void LmHead_cross_entropy() => Check("lm_head_cross_entropy");
    [CudaFact] public void AdamW_step() => Check("adamw");
    [CudaFact] public void Sum_of_squares() => Check("sum_squares");
    [CudaFact] public void Bf16_conversions_are_exact() => Check("convert_bf16_f32");
    [CudaFact] public void Embedding_lookup() => Check("embedding");
    [CudaFact] public void Embedding_lookup_scaled_by_sqrt_hidden() => Check("embedding_scaled");
    [CudaFact] public void Uniform_fill_matches_host_twin() => Check("fill_uniform");
    [CudaFact] public void Memory_pool_reuses_blocks_and_counts_bytes() => Check("memory_pool");
    [CudaFact] public void Kernel_cache_skips_recompilation() => Check("kernel_cache");

    [CudaFact]
    public void Every_check_has_a_test()
    {
        var tested = typeof(CudaKernelTests).GetMethods().Count(m => m.GetCustomAttributes(typeof(CudaFactAttribute), false).Length > 0
            || m.GetCustomAttributes(typeof(HopperFactAttribute), false).Length > 0) - 2; // this test and the compile test
        Assert.Equal(fixture.Checks.All.Count, tested);
    }

    [CudaFact]
    public void Every_kernel_file_compiles_for_this_gpu()
    {
        foreach (var headDim in new[] { 64, 128, 256 })
            foreach (var (file, ok, log) in fixture.Checks.Compiler.CompileAll($"HEAD_DIM={headDim}"))
                Assert.True(ok, $"{file} (HEAD_DIM={headDim}):\n{log}");
    }
}
