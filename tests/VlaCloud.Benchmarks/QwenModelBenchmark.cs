using System.Diagnostics;
using System.Text.Json.Nodes;
using VlaCloud.Policy.InternVla.Qwen;
using static TorchSharp.torch;

namespace VlaCloud.Benchmarks;

/// <summary>
/// <c>model --family qwen2.5-vl</c>: the Qwen2.5-VL-3B config of <c>keys.json</c> with random weights on the CPU, one
/// dtype at a time (built, measured, freed): parameter count, resident memory, build time, and the seconds of one
/// forward pass over one 224×224 image (64 merged tokens) and a 30-token prompt.
/// Options: <c>--keys PATH</c> (default: the repository's fixture), <c>--dtype fp32|bf16|both</c>, <c>--repeats N</c>.
/// </summary>
internal static class QwenModelBenchmark
{
    public static Task RunAsync(Report report, string[] args, CancellationToken cancellationToken)
    {
        var keysPath = Option(args, "--keys") ?? Path.Combine(RepositoryRoot(), "tests", "fixtures", "internvla-m1", "keys.json");
        var keys = JsonNode.Parse(File.ReadAllText(keysPath))!;
        var config = Qwen25VlConfig.FromJson(keys["qwen_config"]!.ToJsonString());
        var hubParameters = keys["qwen2_5_vl_3b_hub_checkpoint_names"]!.AsObject()
            .Sum(p => p.Value!["shape"]!.AsArray().Aggregate(1L, (a, n) => a * (long)n!));
        var dtypes = (Option(args, "--dtype") ?? "both") switch
        {
            "fp32" => new[] { float32 },
            "bf16" => new[] { bfloat16 },
            "both" => new[] { float32, bfloat16 },
            var other => throw new ArgumentException($"--dtype {other}: use fp32, bf16 or both"),
        };
        var repeats = int.Parse(Option(args, "--repeats") ?? "1", System.Globalization.CultureInfo.InvariantCulture);
        report.Add("config", $"{keysPath} qwen_config: {config.Text.NumHiddenLayers} × {config.Text.HiddenSize} decoder, {config.Vision.Depth} × {config.Vision.HiddenSize} vision");
        report.Add("hub_checkpoint_parameters", hubParameters);
        report.Add("torch_threads", get_num_threads());
        report.Add("memory_total_gb", MemInfoGb("MemTotal"));
        report.Add("memory_available_gb", MemInfoGb("MemAvailable"));

        // One 224×224 image: a 16×16 patch grid, 64 merged tokens, between <|vision_start|> and <|vision_end|>, after 30 text tokens.
        const int side = 224, textTokens = 30;
        var patch = config.Vision.PatchSize;
        var grid = tensor(new long[] { 1, side / patch, side / patch }, [1, 3]);
        var patches = grid.prod().item<long>();
        var imageTokens = patches / config.Vision.MergeUnit;
        long[] ids = [.. Enumerable.Range(0, textTokens).Select(i => 1000L + 37 * i), config.VisionStartTokenId, .. Enumerable.Repeat(config.ImageTokenId, (int)imageTokens), config.VisionEndTokenId];
        var generator = new Generator(7);
        var inputs = new QwenInputs(tensor(ids, [1, ids.Length]), null, randn([patches, config.Vision.PatchValues], generator: generator), grid);
        report.Add("prompt_tokens", ids.Length);

        foreach (var dtype in dtypes)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var name = dtype == float32 ? "fp32" : "bf16";
            var before = ResidentGb();
            var watch = Stopwatch.StartNew();
            using (var model = Qwen25Vl.Create(config, CPU, dtype))
            {
                report.Add($"{name}_build_s", watch.Elapsed.TotalSeconds);
                report.Add($"{name}_parameters", model.ParameterCount);
                report.Add($"{name}_resident_gb", ResidentGb());
                report.Add($"{name}_resident_model_gb", ResidentGb() - before);
                using var noGrad = inference_mode();
                var times = new List<double>();
                for (var r = 0; r <= repeats && !cancellationToken.IsCancellationRequested; r++)
                {
                    watch.Restart();
                    using (var scope = NewDisposeScope()) model.Forward(inputs, new QwenForwardOptions { Logits = QwenLogits.LastToken });
                    times.Add(watch.Elapsed.TotalSeconds);
                    report.Add(r == 0 ? $"{name}_forward_first_s" : $"{name}_forward_s_run{r}", times[^1]);
                }
                if (times.Count > 1) report.Add($"{name}_forward_s", times.Skip(1).Order().ElementAt((times.Count - 1) / 2));
                report.Add($"{name}_resident_after_forward_gb", ResidentGb());
            }
            GC.Collect();
            GC.WaitForPendingFinalizers();
            report.Add($"{name}_resident_after_free_gb", ResidentGb());
        }
        report.Add("peak_resident_gb", ProcStatusGb("VmHWM"));
        return Task.CompletedTask;
    }

    internal static string? Option(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    internal static double ResidentGb() => ProcStatusGb("VmRSS");

    /// <summary>A kB field of /proc/self/status in GB (Linux; NaN elsewhere).</summary>
    internal static double ProcStatusGb(string field) => KbField("/proc/self/status", field);

    internal static double MemInfoGb(string field) => KbField("/proc/meminfo", field);

    private static double KbField(string file, string field)
    {
        if (!File.Exists(file)) return double.NaN;
        var line = File.ReadLines(file).FirstOrDefault(l => l.StartsWith(field + ":", StringComparison.Ordinal));
        return line is null ? double.NaN : long.Parse(line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) / 1e6;
    }

    internal static string RepositoryRoot()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "VlaCloud.sln"))) return dir.FullName;
        throw new InvalidOperationException("VlaCloud.sln not found; pass --keys PATH");
    }
}
