using FineTune.Engine.Backends.Cuda.Verification;

namespace FineTune.Engine.Tests.Cuda;

/// <summary>
/// CUDA training end to end through the shared Trainer (see <see cref="TrainingChecks"/>): GPU vs CPU
/// per-step losses on tiny llama / qwen2 / qwen3 / gemma3_text models, DPO and ORPO losses and rewards, byte-identical adapters over two GPU runs,
/// and resumption from a checkpoint. Skipped, with the reason, where there is no GPU.
/// </summary>
public sealed class CudaTrainingTests
{
    private static readonly Lazy<TrainingChecks> Checks = new(TrainingChecks.Open);

    [CudaFact]
    public void Bias_kernel_matches_cpu() => AssertPasses("kernel_add_bias");

    [CudaFact]
    public void Dropout_kernels_draw_the_cpu_graphs_mask() => AssertPasses("kernel_dropout");

    [CudaFact]
    public void Strided_copy_puts_lora_b_into_a_weights_spare_columns_only() => AssertPasses("kernel_copy_columns");

    [CudaFact]
    public void Llama_with_dropout_matches_cpu_losses_and_is_byte_identical() => AssertPasses("train_parity_llama");

    [CudaFact]
    public void Llama_with_gradient_checkpointing_matches_cpu_losses() => AssertPasses("train_parity_llama_checkpointing");

    [CudaFact]
    public void Llama_at_head_dim_64_matches_cpu_losses_and_is_byte_identical() => AssertPasses("train_parity_llama_head_dim_64");

    [CudaFact]
    public void Qwen3_at_head_dim_128_matches_cpu_losses_and_is_byte_identical() => AssertPasses("train_parity_qwen3_head_dim_128");

    [CudaFact]
    public void Qwen2_biases_match_cpu_losses() => AssertPasses("train_parity_qwen2_bias");

    [CudaFact]
    public void Qwen3_qk_norm_matches_cpu_losses() => AssertPasses("train_parity_qwen3_qk_norm");

    [CudaFact]
    public void Gemma3_with_dropout_matches_cpu_losses_and_is_byte_identical() => AssertPasses("train_parity_gemma3");

    [CudaFact]
    public void Gemma3_with_gradient_checkpointing_matches_cpu_losses() => AssertPasses("train_parity_gemma3_checkpointing");

    [CudaFact]
    public void Resumed_run_equals_uninterrupted_run() => AssertPasses("train_resume");

    [CudaFact]
    public void Gemma3_resumed_run_equals_uninterrupted_run() => AssertPasses("train_resume_gemma3");

    [CudaFact]
    public void Memory_plan_matches_the_peak_and_refuses_what_does_not_fit() => AssertPasses("memory_plan");

    [CudaFact]
    public void Memory_plan_with_selective_checkpointing_matches_the_peak() => AssertPasses("memory_plan_checkpointing");

    [CudaFact]
    public void Gemma3_memory_plan_matches_the_peak() => AssertPasses("memory_plan_gemma3");

    [CudaFact]
    public void Weights_streamed_from_f32_equal_the_float32_upload() => AssertPasses("weights_stream_f32");

    [CudaFact]
    public void Weights_streamed_from_f16_equal_the_float32_upload() => AssertPasses("weights_stream_f16");

    [CudaFact]
    public void Weights_streamed_from_bf16_equal_the_float32_upload() => AssertPasses("weights_stream_bf16");

    [CudaFact]
    public void Nf4_kernels_with_double_quantization_equal_the_reference_bytes() => AssertPasses("kernel_fourbit_nf4_dq");

    [CudaFact]
    public void Nf4_kernels_equal_the_reference_bytes() => AssertPasses("kernel_fourbit_nf4");

    [CudaFact]
    public void Fp4_kernels_with_double_quantization_equal_the_reference_bytes() => AssertPasses("kernel_fourbit_fp4_dq");

    [CudaFact]
    public void Fused_4bit_product_of_few_rows_matches_float64_and_the_dequantize_then_cublas_path() => AssertPasses("kernel_fourbit_gemm_skinny_nf4_dq");

    [CudaFact]
    public void Fused_fp4_product_without_double_quantization_matches_float64() => AssertPasses("kernel_fourbit_gemm_skinny_fp4");

    [CudaFact]
    public void Weights_streamed_in_4bit_dequantize_to_the_cpus_4bit_copy() => AssertPasses("weights_stream_4bit");

    [CudaFact]
    public void Llama_in_4bit_matches_cpu_4bit_losses_and_is_byte_identical() => AssertPasses("train_parity_llama_4bit");

    [CudaFact]
    public void Four_bit_run_tracks_the_bf16_run_on_the_gpu() => AssertPasses("train_4bit_tracks_bf16");

    [CudaFact]
    public void Dpo_sigmoid_matches_cpu_losses_and_rewards_and_is_byte_identical() => AssertPasses("train_parity_dpo_sigmoid");

    [CudaFact]
    public void Dpo_ipo_from_a_start_adapter_matches_cpu_losses_and_rewards() => AssertPasses("train_parity_dpo_ipo_start_adapter");

    [CudaFact]
    public void Dpo_hinge_in_4bit_matches_cpu_4bit_losses_and_rewards() => AssertPasses("train_parity_dpo_hinge_4bit");

    [CudaFact]
    public void Orpo_matches_cpu_losses_and_rewards_and_is_byte_identical() => AssertPasses("train_parity_orpo");

    [CudaFact]
    public void Memory_plan_of_a_4bit_run_matches_the_peak() => AssertPasses("memory_plan_4bit");

    [CudaFact]
    public void Llama_in_4bit_with_checkpoints_in_host_memory_matches_cpu_4bit_losses() => AssertPasses("train_parity_llama_4bit_offload");

    [CudaFact]
    public void Gemma3_in_4bit_with_checkpoints_in_host_memory_matches_cpu_4bit_losses() => AssertPasses("train_parity_gemma3_4bit");

    [CudaFact]
    public void Memory_plan_with_checkpoints_in_host_memory_matches_the_peak() => AssertPasses("memory_plan_4bit_offload");

    [CudaFact]
    public void Bf16_llama_with_offloaded_checkpoints_and_embedding_matches_cpu_losses_and_is_byte_identical() => AssertPasses("train_parity_llama_offload");

    [CudaFact]
    public void Memory_plan_of_gradient_checkpointing_offload_matches_the_peak() => AssertPasses("memory_plan_offload");

    [CudaFact]
    public void One_attention_launch_per_batch_trains_the_same_adapter_as_one_per_run() => AssertPasses("train_single_attention_launch_equals_per_run");

    [CudaFact]
    public void One_attention_launch_per_batch_with_sliding_windows_trains_the_same_adapter_as_one_per_run() => AssertPasses("train_single_attention_launch_equals_per_run_gemma3");

    [CudaFact]
    public void Steps_replayed_from_cuda_graphs_train_the_same_bytes_as_eager_launches() => AssertPasses("train_graph_replay_equals_eager");

    [CudaFact]
    public void Checkpointed_steps_replayed_from_cuda_graphs_train_the_same_bytes_as_eager_launches() => AssertPasses("train_graph_replay_equals_eager_checkpointing");

    [CudaFact]
    public void Layers_sharing_one_swiglu_output_train_the_same_bytes_as_layers_keeping_their_own() => AssertPasses("train_shared_glu_output_equals_kept");

    [CudaFact]
    public void Layers_sharing_one_swiglu_output_refilled_by_the_forward_kernel_train_the_same_bytes() => AssertPasses("train_shared_glu_output_equals_kept_dropout_setting");

    [CudaFact]
    public void Gemma3_layers_sharing_one_geglu_output_train_the_same_bytes_as_layers_keeping_their_own() => AssertPasses("train_shared_glu_output_equals_kept_gemma3");

    [CudaFact]
    public void Checkpointed_layers_keeping_q_k_v_train_the_same_bytes_as_layers_recomputing_them() => AssertPasses("train_kept_qkv_equals_recomputed");

    [CudaFact]
    public void Checkpointed_layers_keeping_q_k_v_redraw_the_same_dropout_masks_for_the_lora_hidden_values() => AssertPasses("train_kept_qkv_equals_recomputed_dropout");

    [CudaFact]
    public void Gemma3_checkpointed_layers_keeping_q_k_v_and_their_norm_inputs_train_the_same_bytes() => AssertPasses("train_kept_qkv_equals_recomputed_gemma3");

    [CudaFact]
    public void Checkpointed_layers_leaving_the_swiglu_output_to_its_backward_kernel_train_the_same_bytes() => AssertPasses("train_recompute_skipping_glu_equals_running_it");

    [CudaFact]
    public void Checkpointed_layers_leaving_the_swiglu_output_to_its_backward_kernel_redraw_down_projs_dropout_mask() => AssertPasses("train_recompute_skipping_glu_equals_running_it_dropout");

    [CudaFact]
    public void Checkpointed_layers_keeping_o_and_down_lora_hidden_values_train_the_same_bytes_as_layers_rebuilding_them() => AssertPasses("train_kept_lora_hiddens_equal_recomputed");

    [CudaFact]
    public void Kept_o_and_down_lora_hidden_values_carry_the_forward_pass_dropout_masks() => AssertPasses("train_kept_lora_hiddens_equal_recomputed_dropout");

    [CudaFact]
    public void Gemma3_checkpointed_layers_keeping_o_and_down_lora_hidden_values_train_the_same_bytes() => AssertPasses("train_kept_lora_hiddens_equal_recomputed_gemma3");

    [CudaFact]
    public void A_gpu_memory_limit_keeping_checkpointed_layers_whole_trains_the_same_bytes_as_recomputing_them() => AssertPasses("train_whole_layers_equal_recomputed");

    [CudaFact]
    public void Layers_kept_whole_under_a_gpu_memory_limit_carry_the_forward_pass_dropout_masks() => AssertPasses("train_whole_layers_equal_recomputed_dropout");

    [CudaFact]
    public void Gemma3_layers_kept_whole_under_a_gpu_memory_limit_train_the_same_bytes() => AssertPasses("train_whole_layers_equal_recomputed_gemma3");

    [CudaFact]
    public void Memory_plan_with_layers_kept_whole_under_a_gpu_memory_limit_matches_the_peak() => AssertPasses("memory_plan_whole_layers");

    [CudaFact]
    public void Gemma3_4bit_steps_replayed_from_cuda_graphs_train_the_same_bytes_as_eager_launches() => AssertPasses("train_graph_replay_equals_eager_gemma3_4bit");

    [CudaFact]
    public void LoRA_up_projections_inside_the_base_products_and_one_gate_up_and_one_qkv_input_gradient_product_give_the_gradients_of_separate_products() => AssertPasses("train_spare_columns_match_separate_products");

    [CudaFact]
    public void Variable_length_batches_sharing_bucketed_cublas_plans_rerun_byte_identically() => AssertPasses("train_varlen_bucketed_plans_rerun_identical");

    private static void AssertPasses(string name)
    {
        var result = Checks.Value.Run(name);
        Assert.True(result.Passed, result.ToString());
    }
}
