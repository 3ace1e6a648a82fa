using FineTune.Engine.Lora;

namespace FineTune.Gguf.Export;

/// <summary>Folds a LoRA adapter into a base weight: W ← W + scale · B·A, in fp32.</summary>
public static class LoraMerge
{
    /// <summary>Adds scale·B·A to <paramref name="w"/> ([rows × cols], row-major); B is [rows × r], A is [r × cols].</summary>
    public static void AddInPlace(float[] w, int rows, int cols, LoraTensor b, LoraTensor a, float scale)
    {
        if (b.Rows != rows || a.Cols != cols || b.Cols != a.Rows)
            throw new ArgumentException($"LoRA shapes B[{b.Rows}×{b.Cols}]·A[{a.Rows}×{a.Cols}] do not fit a [{rows}×{cols}] weight.");
        var r = a.Rows;
        Parallel.For(0, rows, i =>
        {
            var row = w.AsSpan(i * cols, cols);
            for (var k = 0; k < r; k++)
            {
                var coef = scale * b.Value[i * r + k];
                if (coef == 0) continue;
                var aRow = a.Value.AsSpan(k * cols, cols);
                for (var j = 0; j < cols; j++) row[j] += coef * aRow[j];
            }
        });
    }
}
