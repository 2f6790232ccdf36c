using System.Diagnostics;
using VlaCloud.Parity;
using VlaCloud.Policy;
using VlaCloud.Testing;
using static TorchSharp.torch;

namespace VlaCloud.Benchmarks;

/// <summary>
/// The batch-1 forward of each built-in small config, the cost a control loop pays per step: CPU milliseconds of this
/// process and wall milliseconds per <c>SampleActions</c> call, for the tiny ST4VLA policy and the tiny InternVLA-M1 one,
/// at 1 and at 2 libtorch threads. Families and thread counts take turns within each round (≥ 5 rounds, medians), so a
/// drift in the machine's load hits every arm alike. CPU time counts every thread of the process (libtorch's OpenMP
/// workers too), so a second thread that only spins shows up as cost.
/// Options: <c>--rounds N</c> (7), <c>--seconds S</c> per arm and round (1), <c>--threads 1,2</c>, <c>--batch B</c> (1;
/// the figures are then per call of B samples).
/// </summary>
internal sealed class ForwardSuite : IBenchmarkSuite
{
    public string Name => "forward";

    public string Description => "batch-1 SampleActions per family (st4vla tiny, internvla-m1 tiny): CPU ms and wall ms per call at 1/2 torch threads, interleaved rounds";

    public Task RunAsync(Report report, string[] args, CancellationToken cancellationToken)
    {
        var rounds = int.Parse(QwenModelBenchmark.Option(args, "--rounds") ?? "7", System.Globalization.CultureInfo.InvariantCulture);
        var seconds = double.Parse(QwenModelBenchmark.Option(args, "--seconds") ?? "1", System.Globalization.CultureInfo.InvariantCulture);
        var threads = (QwenModelBenchmark.Option(args, "--threads") ?? "1,2").Split(',').Select(int.Parse).ToArray();
        var batch = int.Parse(QwenModelBenchmark.Option(args, "--batch") ?? "1", System.Globalization.CultureInfo.InvariantCulture);
        var defaultThreads = get_num_threads();
        report.Add("torch_threads_default", defaultThreads);
        report.Add("load_average_start", LoadAverage());

        using var st4vla = St4Vla();
        using var m1 = VlaPolicy.Create(TinyInternVlaM1.PolicyConfig(), new Dictionary<string, NormalizationStats>
        {
            ["arm"] = new(TestPolicies.IdentityFeature(7), BinaryActionDims: [6]),
        }, seed: 1, tokenizerJson: TinyInternVlaM1.TokenizerJson());
        var families = new (string Name, VlaPolicy Policy, Observation Observation)[]
        {
            ("st4vla", st4vla, St4VlaObservation()),
            ("internvla_m1", m1, M1Observation()),
        };
        foreach (var (name, policy, _) in families)
        {
            report.Add($"{name}_parameters", policy.ParameterCount);
            report.Add($"{name}_steps", policy.Config.InferenceSteps);
        }

        var cpu = new Dictionary<(string, int), List<double>>();
        var wall = new Dictionary<(string, int), List<double>>();
        // Warm-up: JIT, libtorch's first-use allocations and OpenMP's pool, at every thread count.
        foreach (var t in threads)
        {
            set_num_threads(t);
            foreach (var (name, policy, observation) in families)
                for (var i = 0; i < 5; i++) policy.SampleActions(Repeat(observation, batch), Seeds(batch));
        }
        for (var round = 0; round < rounds && !cancellationToken.IsCancellationRequested; round++)
        {
            foreach (var t in threads)
            {
                set_num_threads(t);
                foreach (var (name, policy, observation) in families)
                {
                    var (observations, seeds) = (Repeat(observation, batch), Seeds(batch));
                    var (cpuMs, wallMs) = Measure(() => policy.SampleActions(observations, seeds), TimeSpan.FromSeconds(seconds));
                    Add(cpu, (name, t), cpuMs);
                    Add(wall, (name, t), wallMs);
                }
            }
        }
        // The ST4VLA denoising loop alone (the VLM pass done once before), the per-step forward against the prepared
        // steps of SampleActions, at 1 thread, interleaved: the DiT change measured in one process.
        set_num_threads(1);
        var (perStep, prepared) = (new List<double>(), new List<double>());
        using (var loop = NewDisposeScope())
        using (inference_mode())
        {
            var expert = st4vla.Model.Expert;
            st4vla.Model.eval();
            var k = st4vla.Config.InferenceSteps;
            var observation = St4VlaObservation();
            var cond = st4vla.St4Vla.Condition([observation], 1.0);
            var state = st4vla.States([observation]);
            var noise = VlaPolicy.Noise(1, st4vla.Config.ChunkLength, st4vla.Config.MaxActionDim).unsqueeze(0);
            void PerStep()
            {
                using var scope = NewDisposeScope();
                var x = noise;
                for (var i = 0; i < k; i++) x = x - expert.call(x, full(1, 1.0 - (double)i / k), state, null, cond) * (1.0 / k);
            }
            void Prepared()
            {
                using var scope = NewDisposeScope();
                var steps = expert.Prepare(tensor(Enumerable.Range(0, k).Select(i => 1.0 - (double)i / k).ToArray(), float32), state, null, cond);
                var x = noise;
                for (var i = 0; i < k; i++) x = x.add(expert.Velocity(x, i, steps), -1.0 / k);
            }
            for (var i = 0; i < 5; i++) { PerStep(); Prepared(); }
            for (var round = 0; round < rounds && !cancellationToken.IsCancellationRequested; round++)
            {
                perStep.Add(Measure(PerStep, TimeSpan.FromSeconds(seconds / 2)).CpuMs);
                prepared.Add(Measure(Prepared, TimeSpan.FromSeconds(seconds / 2)).CpuMs);
            }
        }
        set_num_threads(defaultThreads);
        report.Add("st4vla_denoise_loop_per_step_forward_cpu_ms", Median(perStep));
        report.Add("st4vla_denoise_loop_prepared_cpu_ms", Median(prepared));
        report.Add("rounds", rounds);
        report.Add("batch", batch);
        report.Add("load_average_end", LoadAverage());
        foreach (var t in threads)
        {
            foreach (var (name, _, _) in families)
            {
                // Per call, i.e. per batch of `batch` samples.
                report.Add($"{name}_batch{batch}_wall_ms_threads{t}", Median(wall[(name, t)]));
                report.Add($"{name}_batch{batch}_cpu_ms_threads{t}", Median(cpu[(name, t)]));
            }
        }
        return Task.CompletedTask;
    }

    /// <summary>CPU and wall milliseconds per call of <paramref name="step"/>, repeated for about <paramref name="duration"/>.</summary>
    internal static (double CpuMs, double WallMs) Measure(Action step, TimeSpan duration)
    {
        var cpu = CpuNow();
        var watch = Stopwatch.StartNew();
        var calls = 0;
        while (watch.Elapsed < duration || calls < 3)
        {
            step();
            calls++;
        }
        var elapsed = watch.Elapsed.TotalMilliseconds;
        return ((CpuNow() - cpu).TotalMilliseconds / calls, elapsed / calls);
    }

    private static Observation[] Repeat(Observation observation, int batch) => [.. Enumerable.Repeat(observation, batch)];

    private static long[] Seeds(int batch) => [.. Enumerable.Range(0, batch).Select(i => (long)i)];

    internal static VlaPolicy St4Vla(string device = "cpu", string dtype = "fp32")
    {
        var stats = new Dictionary<string, NormalizationStats>
        {
            ["arm"] = TestPolicies.IdentityStats(7, 8, binaryActionDims: [6]),
        };
        return VlaPolicy.Create(PolicyConfig.Tiny, stats, seed: 1, device: device, dtype: dtype);
    }

    internal static Observation St4VlaObservation()
    {
        var size = PolicyConfig.Tiny.ImageSize;
        var rgb = new byte[size * size * 3];
        new Random(7).NextBytes(rgb);
        return new Observation([new CameraImage(rgb, size, size)], "pick the red cube and place it in the blue bowl",
            [.. Enumerable.Range(0, 8).Select(d => (float)Math.Sin(d))], "arm");
    }

    internal static Observation M1Observation()
    {
        var side = TinyInternVlaM1.ImageSize;
        var rgb = new byte[side * side * 3];
        new Random(7).NextBytes(rgb);
        return new Observation([new CameraImage(rgb, side, side)], "pick the red cube", null, "arm");
    }

    private static TimeSpan CpuNow()
    {
        using var self = Process.GetCurrentProcess();
        return self.TotalProcessorTime;
    }

    internal static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    internal static void Add(Dictionary<(string, int), List<double>> figures, (string, int) key, double value)
    {
        if (!figures.TryGetValue(key, out var list)) figures[key] = list = [];
        list.Add(value);
    }

    internal static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

}
