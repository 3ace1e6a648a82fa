using System.Diagnostics;
using FineTune.Engine.Backends;

/// <summary>
/// Wraps the CPU backend and adds up the wall time of each kind of call: products by layout and
/// shape, parallel loops by the method that started them (the graph's element-wise passes). Time the
/// graph spends outside the backend is the step time minus these.
/// </summary>
sealed class ProfilingBackend(IComputeBackend inner) : IComputeBackend
{
    private readonly Dictionary<string, (double Ms, int Calls)> _sections = [];
    private int _depth;

    public string Name => inner.Name;

    /// <summary>Sections sorted by time: name, milliseconds per step, calls per step.</summary>
    public IEnumerable<(string Name, double MsPerStep, double CallsPerStep)> Report(int steps) =>
        _sections.OrderByDescending(s => s.Value.Ms).Select(s => (s.Key, Math.Round(s.Value.Ms / steps, 2), (double)s.Value.Calls / steps));

    public void Reset() => _sections.Clear();

    private List<string>? _together;

    /// <summary>Products started inside are timed together when the scope ends, as one section named by all of them.</summary>
    public IDisposable Together()
    {
        if (_together is not null) return NoScope.Instance;
        _together = [];
        return new TogetherScope(this, inner.Together());
    }

    private sealed class TogetherScope(ProfilingBackend owner, IDisposable inner) : IDisposable
    {
        public void Dispose()
        {
            var names = owner._together!;
            owner._together = null;
            owner.Time($"together: {string.Join(" | ", names)}", inner.Dispose);
        }
    }

    private void Time(string name, Action run)
    {
        if (_together is not null && _depth == 0)
        {
            // Deferred by the inner backend until the scope ends; timed there.
            _together.Add(name);
            run();
            return;
        }
        if (_depth++ > 0)
        {
            run();
            _depth--;
            return;
        }
        var start = Stopwatch.GetTimestamp();
        try { run(); }
        finally
        {
            _depth--;
            var ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            var old = _sections.GetValueOrDefault(name);
            _sections[name] = (old.Ms + ms, old.Calls + 1);
        }
    }

    private static string Caller(Delegate body)
    {
        // Lambdas compile to methods named <Enclosing>b__N inside a closure class of the enclosing type.
        var name = body.Method.Name;
        var type = body.Method.DeclaringType?.DeclaringType?.Name ?? body.Method.DeclaringType?.Name ?? "?";
        var open = name.IndexOf('<');
        var close = name.IndexOf('>');
        return $"for {type}.{(open >= 0 && close > open ? name[(open + 1)..close] : name)}";
    }

    public void MatMulTransposed(float[] a, int aOffset, float[] b, int bOffset, float[] c, int cOffset, int m, int n, int k, bool accumulate = false) =>
        Time($"A·Bᵀ {m}x{n}x{k}", () => inner.MatMulTransposed(a, aOffset, b, bOffset, c, cOffset, m, n, k, accumulate));

    public object PrepareTransposedOperand(float[] b, int n, int k) => inner.PrepareTransposedOperand(b, n, k);

    public void MatMulTransposed(float[] a, int aOffset, float[] b, object prepared, float[] c, int cOffset, int m, int n, int k, bool accumulate = false) =>
        Time($"A·Wᵀ {m}x{n}x{k}", () => inner.MatMulTransposed(a, aOffset, b, prepared, c, cOffset, m, n, k, accumulate));

    public void MatMulTransposedThen(float[] a, float[] b, object? prepared, float[] a2, float[] b2, float[] c, int m, int n, int k, int k2, bool accumulate = false) =>
        Time($"A·{(prepared is null ? "B" : "W")}ᵀ + LoRA {m}x{n}x{k}+{k2}", () => inner.MatMulTransposedThen(a, b, prepared, a2, b2, c, m, n, k, k2, accumulate));

    public object? PrepareOperand(float[] b, int k, int n) => inner.PrepareOperand(b, k, n);

    public void MatMulThen(float[] a, float[] b, float[] a2, float[] b2, float[] c, int m, int n, int k, int k2, bool accumulate = false, object? prepared = null) =>
        Time($"A·{(prepared is null ? "B" : "W")} + LoRA {m}x{n}x{k}+{k2}", () => inner.MatMulThen(a, b, a2, b2, c, m, n, k, k2, accumulate, prepared));

    public void MatMul(float[] a, int aOffset, float[] b, int bOffset, float[] c, int cOffset, int m, int n, int k, bool accumulate = false) =>
        Time($"A·B {m}x{n}x{k}", () => inner.MatMul(a, aOffset, b, bOffset, c, cOffset, m, n, k, accumulate));

    public void MatMulTransposedA(float[] a, int aOffset, float[] b, int bOffset, float[] c, int cOffset, int m, int n, int k, bool accumulate = false) =>
        Time($"Aᵀ·B {m}x{n}x{k}", () => inner.MatMulTransposedA(a, aOffset, b, bOffset, c, cOffset, m, n, k, accumulate));

    public void Transpose(float[] src, int srcOffset, float[] dst, int dstOffset, int rows, int cols) =>
        Time("transpose", () => inner.Transpose(src, srcOffset, dst, dstOffset, rows, cols));

    public void For(int count, Action<int> body) => Time(Caller(body), () => inner.For(count, body));
}
