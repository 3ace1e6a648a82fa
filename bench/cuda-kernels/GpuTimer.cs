using FineTune.Engine.Backends.Cuda;

namespace FineTune.Bench.KernelBench;

/// <summary>Times GPU work with CUDA events: warm-up runs first, then the median of many timed runs.</summary>
internal sealed class GpuTimer(CudaDevice device) : IDisposable
{
    private readonly CudaEvent _start = new(device);
    private readonly CudaEvent _end = new(device);

    /// <summary>Median milliseconds of <paramref name="work"/>; <paramref name="work"/> gets the run index (to rotate inputs).</summary>
    public double MedianMs(Action<int> work, int warmup = 3, int iterations = 25)
    {
        for (var i = 0; i < warmup; i++)
            work(i);
        device.Synchronize();
        var times = new double[iterations];
        for (var i = 0; i < iterations; i++)
        {
            _start.Record(device.Stream);
            work(warmup + i);
            _end.Record(device.Stream);
            _end.Synchronize();
            times[i] = _end.ElapsedSince(_start);
        }
        Array.Sort(times);
        return iterations % 2 == 1 ? times[iterations / 2] : (times[iterations / 2 - 1] + times[iterations / 2]) / 2;
    }

    public void Dispose()
    {
        _start.Dispose();
        _end.Dispose();
    }
}
