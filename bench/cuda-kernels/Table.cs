using System.Text.Json.Nodes;

namespace FineTune.Bench.KernelBench;

/// <summary>The closing human-readable summary of the JSON lines.</summary>
internal static class Table
{
    public static void Print(IReadOnlyList<JsonObject> lines)
    {
        Console.WriteLine();
        Console.WriteLine($"{"check",-26} {"ok",-4} {"det",-4} {"max rel err",12}");
        foreach (var l in lines.Where(l => (string?)l["kind"] == "check"))
            Console.WriteLine($"{(string?)l["name"],-26} {Yes(l["passed"]),-4} {Yes(l["deterministic"]),-4} {Num(l["max_rel_err"], "0.00e+0"),12}");

        Console.WriteLine();
        Console.WriteLine($"{"kernel (Llama-3.2-1B, 4x2048)",-34} {"ms",9} {"GB/s",8} {"TFLOP/s",8} {"% ceiling",9}");
        foreach (var l in lines.Where(l => (string?)l["kind"] == "timing"))
            Console.WriteLine($"{(string?)l["name"],-34} {Num(l["ms"], "0.000"),9} {Num(l["gb_per_s"], "0"),8} {Num(l["tflops"], "0.0"),8} {Num(l["pct_of_ceiling"], "0.0"),9}");

        Console.WriteLine();
        Console.WriteLine($"{"attention",-14} {"op",-15} {"variant",-9} {"ms",8} {"TFLOP/s",8}");
        foreach (var l in lines.Where(l => (string?)l["kind"] == "attention"))
            Console.WriteLine($"{(string?)l["model"],-14} {(string?)l["op"],-15} {(string?)l["variant"],-9} {Num(l["ms"], "0.000"),8} {Num(l["tflops"], "0.0"),8}");

        Console.WriteLine();
        foreach (var l in lines.Where(l => (string?)l["kind"] == "compare"))
            Console.WriteLine($"{(string?)l["model"]} {(string?)l["name"]}: ours {Num(l["ours_ms"], "0.000")} ms ({Num(l["ours_tflops"], "0")} TFLOP/s), " +
                $"SDPA {Num(l["sdpa_ms"], "0.000")} ms ({Num(l["sdpa_tflops"], "0")} TFLOP/s), SDPA/ours = {Num(l["speedup_vs_sdpa"], "0.00")}x");
    }

    private static string Yes(JsonNode? node) => node is null ? "-" : node.GetValue<bool>() ? "yes" : "NO";

    private static string Num(JsonNode? node, string format) => node is null ? "" : JsonLines.Fmt(node.GetValue<double>(), format);
}
