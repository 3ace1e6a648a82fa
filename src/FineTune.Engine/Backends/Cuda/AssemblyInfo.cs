using System.Runtime.CompilerServices;

// The CUDA backend's library discovery is internal; its tests exercise it directly.
[assembly: InternalsVisibleTo("FineTune.Engine.Tests")]
// The GPU-vs-CPU checks live in their own assembly (kept out of the shipped tool) and drive the
// training context's kernels directly.
[assembly: InternalsVisibleTo("FineTune.Engine.Verification")]
