using System.Diagnostics;
using System.Text.Json.Nodes;
using VlaCloud.Parity;
using VlaCloud.Policy;
using VlaCloud.Policy.InternVla;
using VlaCloud.Policy.InternVla.Text;
using VlaCloud.Testing;
using static TorchSharp.torch;

namespace VlaCloud.Benchmarks;

/// <summary>
/// <c>model --family internvla-m1</c>: the released InternVLA-M1 built from <c>keys.json</c>'s Qwen2.5-VL-3B config and the
/// release's framework section (<c>internvla_cotrain_oxe.yaml</c>: DINOv2 ViT-S/14, a one-block Q-Former over hidden state
/// 36, DiT-B over 16 × 7) with random weights on the CPU, one dtype at a time: parameter count (with the tied
/// <c>lm_head</c> counted as the state dict lists it, it must equal <c>keys.json</c>'s), resident memory, and the seconds of
/// one act call (one 224×224 camera, the CoT prompt, DDIM 10 steps with CFG 1.5); then the tiny M1 test config's
/// <c>SampleActions</c> at batch 1 and 32. Options: <c>--keys PATH</c>, <c>--dtype fp32|bf16|both</c>, <c>--tiny-only</c>.
/// </summary>
internal static class InternVlaM1ModelBenchmark
{
    /// <summary>The release's <c>framework</c> section (the values of <c>InternVLA/config/training/internvla_cotrain_oxe.yaml</c>).</summary>
    public static JsonObject ReleasedFramework() => new()
    {
        ["dino"] = new JsonObject { ["dino_backbone"] = "dinov2_vits14" },
        ["layer_qformer"] = new JsonObject { ["qformer_start_layer"] = 36, ["qformer_end_layer"] = 37, ["num_query_tokens"] = 64, ["input_dim"] = 2048, ["ouptput_dim"] = 768, ["grad_scale"] = 0.5 },
        ["action_model"] = new JsonObject { ["action_model_type"] = "DiT-B", ["action_dim"] = 7, ["future_action_window_size"] = 15, ["past_action_window_size"] = 0 },
    };

    public static Task RunAsync(Report report, string[] args, CancellationToken cancellationToken)
    {
        report.Add("torch_threads", get_num_threads());
        report.Add("memory_total_gb", QwenModelBenchmark.MemInfoGb("MemTotal"));
        report.Add("memory_available_gb", QwenModelBenchmark.MemInfoGb("MemAvailable"));
        if (!args.Contains("--tiny-only")) RunFull(report, args, cancellationToken);
        RunTiny(report, cancellationToken);
        report.Add("peak_resident_gb", QwenModelBenchmark.ProcStatusGb("VmHWM"));
        return Task.CompletedTask;
    }

    private static void RunFull(Report report, string[] args, CancellationToken cancellationToken)
    {
        var folder = QwenModelBenchmark.Option(args, "--keys") is { } k ? Path.GetDirectoryName(Path.GetFullPath(k))! : Path.Combine(QwenModelBenchmark.RepositoryRoot(), "tests", "fixtures", "internvla-m1");
        var keys = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "keys.json")))!;
        var expected = keys["params"]!.GetValue<long>();
        var config = PolicyConfig.ForInternVlaM1(keys["qwen_config"]!.AsObject(), ReleasedFramework()).ToInternVlaM1();
        var tokenizer = Qwen2Tokenizer.Load(folder);
        var dtypes = (QwenModelBenchmark.Option(args, "--dtype") ?? "both") switch
        {
            "fp32" => new[] { float32 },
            "bf16" => new[] { bfloat16 },
            "both" => new[] { float32, bfloat16 },
            var other => throw new ArgumentException($"--dtype {other}: use fp32, bf16 or both"),
        };
        report.Add("keys_json_parameters", expected);
        var pixels = new byte[224 * 224 * 3];
        for (var i = 0; i < pixels.Length; i++) pixels[i] = (byte)(i * 7 % 251);
        var camera = new CameraImage(pixels, 224, 224);
        foreach (var dtype in dtypes)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var name = dtype == float32 ? "fp32" : "bf16";
            var before = QwenModelBenchmark.ResidentGb();
            var watch = Stopwatch.StartNew();
            using (var model = new InternVlaM1(config, tokenizer, dtype))
            {
                report.Add($"{name}_build_s", watch.Elapsed.TotalSeconds);
                var parameters = model.parameters().Sum(p => p.numel());
                var tied = config.Qwen.Text.TieWordEmbeddings ? (long)config.Qwen.Text.VocabSize * config.Qwen.Text.HiddenSize : 0;
                report.Add($"{name}_parameters", parameters);
                report.Add($"{name}_state_dict_values", parameters + tied);
                report.Add($"{name}_parameters_equal_keys_json", parameters + tied == expected);
                report.Add($"{name}_resident_model_gb", QwenModelBenchmark.ResidentGb() - before);
                model.eval();
                using var mode = inference_mode();
                for (var r = 0; r < 2 && !cancellationToken.IsCancellationRequested; r++)
                {
                    watch.Restart();
                    using (var scope = NewDisposeScope())
                    {
                        var views = model.ResizeViews([[camera]]);
                        var condition = model.Condition(views, [model.ActionPrompt("put the spoon on the towel")]);
                        using var generator = new Generator(1);
                        model.SampleActions(condition, randn([1, config.ChunkLength, config.ActionDim], generator: generator));
                    }
                    report.Add(r == 0 ? $"{name}_act_first_s" : $"{name}_act_s", watch.Elapsed.TotalSeconds);
                }
                report.Add($"{name}_resident_after_act_gb", QwenModelBenchmark.ResidentGb());
            }
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
    }

    private static void RunTiny(Report report, CancellationToken cancellationToken)
    {
        var stats = new Dictionary<string, NormalizationStats>
        {
            ["arm"] = new(TestPolicies.IdentityFeature(7), BinaryActionDims: [6]),
        };
        using var policy = VlaPolicy.Create(TinyInternVlaM1.PolicyConfig(), stats, seed: 1, tokenizerJson: TinyInternVlaM1.TokenizerJson());
        report.Add("tiny_parameters", policy.ParameterCount);
        var side = TinyInternVlaM1.ImageSize;
        var observation = new Observation([new CameraImage(new byte[side * side * 3], side, side)], "pick the red cube", null, "arm");
        foreach (var batch in new[] { 1, 32 })
        {
            cancellationToken.ThrowIfCancellationRequested();
            var observations = Enumerable.Repeat(observation, batch).ToList();
            var seeds = Enumerable.Range(0, batch).Select(i => (long)i).ToList();
            policy.SampleActions(observations, seeds); // warm-up
            var watch = Stopwatch.StartNew();
            const int runs = 3;
            for (var r = 0; r < runs; r++) policy.SampleActions(observations, seeds);
            report.Add($"tiny_batch{batch}_ms", watch.Elapsed.TotalMilliseconds / runs);
        }
    }

}
