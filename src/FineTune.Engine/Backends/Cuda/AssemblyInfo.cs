using System.Runtime.CompilerServices;

// The CUDA backend's library discovery is internal; its tests exercise it directly.
[assembly: InternalsVisibleTo("FineTune.Engine.Tests")]
