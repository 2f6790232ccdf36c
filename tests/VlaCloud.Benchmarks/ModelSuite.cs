using System.Diagnostics;
using VlaCloud.Policy;
using VlaCloud.Testing;
using static TorchSharp.torch;
using VlaCloud.Actions;

namespace VlaCloud.Benchmarks;

/// <summary>
/// The tiny ST4VLA policy on this machine: size, SampleActions latency per batch size, training step time; with
/// <c>--family qwen2.5-vl</c>, the full-size Qwen2.5-VL-3B System 2 instead (<see cref="QwenModelBenchmark"/>).
/// </summary>
internal sealed class ModelSuite : IBenchmarkSuite
{
    public string Name => "model";

    public string Description => "tiny ST4VLA policy: parameters, SampleActions latency at batch 1/8/32, batch32_gain, point guidance's cost, training step; --family qwen2.5-vl: the 3B System 2 in fp32 and bf16; --family internvla-m1: the 4.18 B InternVLA-M1 (act seconds fp32/bf16) and the tiny M1 config's batch 1/32";

    public Task RunAsync(Report report, string[] args, CancellationToken cancellationToken)
    {
        var family = Array.IndexOf(args, "--family") is var at and >= 0 && at + 1 < args.Length ? args[at + 1] : null;
        return family switch
        {
            null => RunTinyPolicy(report, cancellationToken),
            "qwen2.5-vl" => QwenModelBenchmark.RunAsync(report, args, cancellationToken),
            PolicyConfig.InternVlaM1Family => InternVlaM1ModelBenchmark.RunAsync(report, args, cancellationToken),
            _ => throw new ArgumentException($"--family {family}: the families are qwen2.5-vl and internvla-m1 (or none, for the tiny policy)"),
        };
    }

    private static Task RunTinyPolicy(Report report, CancellationToken cancellationToken)
    {
        var config = PolicyConfig.Tiny;
        var stats = new Dictionary<string, NormalizationStats>
        {
            ["arm"] = TestPolicies.IdentityStats(7, 8, binaryActionDims: [6]),
        };
        using var policy = VlaPolicy.Create(config, stats, seed: 1);
        report.Add("config", config.Name);
        report.Add("parameters", policy.ParameterCount);
        var counts = config.EstimateParameters();
        report.Add("parameters_vision", counts.Vision);
        report.Add("parameters_language", counts.Language);
        report.Add("parameters_bridge", counts.Bridge);
        report.Add("parameters_action_expert", counts.ActionExpert);
        report.Add("base_parameters", PolicyConfig.Base.EstimateParameters().Total);
        report.Add("torch_threads", get_num_threads());
        report.Add("euler_steps", config.InferenceSteps);

        var random = new Random(7);
        Observation MakeObservation(int i)
        {
            var rgb = new byte[config.ImageSize * config.ImageSize * 3];
            random.NextBytes(rgb);
            return new Observation([new CameraImage(rgb, config.ImageSize, config.ImageSize)],
                "pick the red cube and place it in the blue bowl", Enumerable.Range(0, 8).Select(d => (float)Math.Sin(i + d)).ToArray(), "arm");
        }

        var perSample = new Dictionary<int, double>();
        foreach (var batch in new[] { 1, 8, 32 })
        {
            var observations = Enumerable.Range(0, batch).Select(MakeObservation).ToArray();
            var seeds = Enumerable.Range(0, batch).Select(i => (long)i).ToArray();
            policy.SampleActions(observations, seeds); // warm-up
            var repeats = batch == 32 ? 5 : batch == 8 ? 9 : 21;
            var times = new List<double>();
            for (var r = 0; r < repeats && !cancellationToken.IsCancellationRequested; r++)
            {
                var watch = Stopwatch.StartNew();
                policy.SampleActions(observations, seeds);
                times.Add(watch.Elapsed.TotalMilliseconds);
            }
            var median = times.Order().ElementAt(times.Count / 2);
            perSample[batch] = median / batch;
            report.Add($"sample_actions_batch{batch}_ms", median);
            report.Add($"sample_actions_batch{batch}_per_sample_ms", median / batch);
        }
        report.Add("batch32_gain", perSample[1] / perSample[32]);

        // Point guidance asks System 2 the point and placement questions before System 1 acts: its price per call.
        // The two policies take turns call by call, so drift in the machine's load hits both alike.
        using (var guided = VlaPolicy.Create(config with { PointGuidance = true }, stats, seed: 1))
        {
            foreach (var batch in new[] { 1, 8 })
            {
                var observations = Enumerable.Range(0, batch).Select(MakeObservation).ToArray();
                var seeds = Enumerable.Range(0, batch).Select(i => (long)i).ToArray();
                guided.SampleActions(observations, seeds); // warm-up
                var (plain, withPoints) = (new List<double>(), new List<double>());
                for (var r = 0; r < 21 && !cancellationToken.IsCancellationRequested; r++)
                {
                    var watch = Stopwatch.StartNew();
                    policy.SampleActions(observations, seeds);
                    plain.Add(watch.Elapsed.TotalMilliseconds);
                    watch.Restart();
                    guided.SampleActions(observations, seeds);
                    withPoints.Add(watch.Elapsed.TotalMilliseconds);
                }
                var (plainMedian, guidedMedian) = (plain.Order().ElementAt(plain.Count / 2), withPoints.Order().ElementAt(withPoints.Count / 2));
                report.Add($"sample_actions_point_guided_batch{batch}_ms", guidedMedian);
                report.Add($"point_guided_cost_batch{batch}", guidedMedian / plainMedian);
            }
        }

        var trainBatch = new TrainingBatch(
            Enumerable.Range(0, 8).Select(i => new ActionSample(MakeObservation(i), new ActionChunk(config.ChunkLength, 7, new float[config.ChunkLength * 7]))).ToList(),
            Enumerable.Range(0, 8).Select(i => new SpatialSample(MakeObservation(i).Images, SpatialPrompts.Question(SpatialKind.Box, "pick the red cube"), SpatialKind.Box, [10, 10, 30, 30])).ToList());
        using var optimizer = policy.CreateOptimizer();
        var stepTimes = new List<double>();
        for (var step = 0; step < 11 && !cancellationToken.IsCancellationRequested; step++)
        {
            var watch = Stopwatch.StartNew();
            using (var scope = NewDisposeScope())
            {
                optimizer.zero_grad();
                policy.ComputeLoss(trainBatch).Total.backward();
                optimizer.step();
            }
            if (step > 0) stepTimes.Add(watch.Elapsed.TotalMilliseconds); // step 0 is warm-up
        }
        report.Add("train_step_batch_8_actions_8_spatial_ms", stepTimes.Order().ElementAt(stepTimes.Count / 2));
        return Task.CompletedTask;
    }

}
