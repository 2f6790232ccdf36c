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
/// the figures are then per call of B samples), <c>--stages</c> (also the CPU of each stage of a call at 1 thread: the
/// prefix, the denoising steps, the unnormalisation).
/// Each family also runs a session-hit arm (every sample's session holds its unchanged observation's prefix, as a
/// streaming client sending the same frame again), and the InternVLA-M1 DDIM loop runs alone, its per-step forward
/// against the prepared DiT passes, interleaved at 1 thread.
/// </summary>
internal sealed class ForwardSuite : IBenchmarkSuite
{
    public string Name => "forward";

    public string Description => "batch-1 SampleActions per family (st4vla tiny, internvla-m1 tiny): CPU ms and wall ms per call at 1/2 torch threads, a session-hit arm, the M1 DDIM loop old vs new, --stages; interleaved rounds";

    public Task RunAsync(Report report, string[] args, CancellationToken cancellationToken)
    {
        var rounds = int.Parse(QwenModelBenchmark.Option(args, "--rounds") ?? "7", System.Globalization.CultureInfo.InvariantCulture);
        var seconds = double.Parse(QwenModelBenchmark.Option(args, "--seconds") ?? "1", System.Globalization.CultureInfo.InvariantCulture);
        var threads = (QwenModelBenchmark.Option(args, "--threads") ?? "1,2").Split(',').Select(int.Parse).ToArray();
        var batch = int.Parse(QwenModelBenchmark.Option(args, "--batch") ?? "1", System.Globalization.CultureInfo.InvariantCulture);
        var stages = args.Contains("--stages");
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
                for (var i = 0; i < 5; i++)
                {
                    policy.SampleActions(Repeat(observation, batch), Seeds(batch));
                    policy.SampleActions(Repeat(observation, batch), Seeds(batch), sessions: Sessions(batch));
                }
        }
        var hitCpu = new Dictionary<(string, int), List<double>>();
        var hitWall = new Dictionary<(string, int), List<double>>();
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
                    // The same call with every sample's session warm: the prefix comes from the cache.
                    var sessions = Sessions(batch);
                    var (hitCpuMs, hitWallMs) = Measure(() => policy.SampleActions(observations, seeds, sessions: sessions), TimeSpan.FromSeconds(seconds));
                    Add(hitCpu, (name, t), hitCpuMs);
                    Add(hitWall, (name, t), hitWallMs);
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
        // The InternVLA-M1 DDIM loop alone (the condition computed once before), the per-step forward it replaced
        // (StartSamplingUnprepared: whole DiT forward every step, a doubled state under guidance) against the prepared
        // passes, at 1 thread, interleaved; the batch's size as above.
        var (ddimOld, ddimNew) = (new List<double>(), new List<double>());
        using (var loop = NewDisposeScope())
        using (inference_mode())
        {
            var model = m1.InternVlaM1;
            model.M1.eval();
            var action = model.M1.Heads.ActionModel;
            var condition = model.Condition(Repeat(M1Observation(), batch));
            var noise = stack([.. Enumerable.Range(0, batch).Select(i => VlaPolicy.Noise(i, model.M1.Config.ChunkLength, model.M1.Config.ActionDim))]);
            void Run(Func<Tensor, Tensor, double?, int?, VlaCloud.Policy.InternVla.Heads.DdimSampling> start)
            {
                using var scope = NewDisposeScope();
                using var sampling = start(condition, noise, null, null);
                while (!sampling.Done) sampling.Step();
                sampling.Result();
            }
            void Old() => Run(action.StartSamplingUnprepared);
            void New() => Run(action.StartSampling);
            for (var i = 0; i < 5; i++) { Old(); New(); }
            for (var round = 0; round < rounds && !cancellationToken.IsCancellationRequested; round++)
            {
                ddimOld.Add(Measure(Old, TimeSpan.FromSeconds(seconds / 2)).CpuMs);
                ddimNew.Add(Measure(New, TimeSpan.FromSeconds(seconds / 2)).CpuMs);
            }
        }
        var stageCpu = new Dictionary<(string, string), List<double>>();
        if (stages)
        {
            for (var round = 0; round < rounds && !cancellationToken.IsCancellationRequested; round++)
                foreach (var (name, policy, observation) in families)
                    foreach (var hit in new[] { false, true })
                        foreach (var (stage, ms) in MeasureStages(policy, Repeat(observation, batch), Seeds(batch), hit ? Sessions(batch) : null, TimeSpan.FromSeconds(seconds)))
                            Add(stageCpu, (name, (hit ? "session_hit_" : "") + stage), ms);
        }
        set_num_threads(defaultThreads);
        report.Add("st4vla_denoise_loop_per_step_forward_cpu_ms", Median(perStep));
        report.Add("st4vla_denoise_loop_prepared_cpu_ms", Median(prepared));
        report.Add($"internvla_m1_ddim_loop_batch{batch}_per_step_forward_cpu_ms", Median(ddimOld));
        report.Add($"internvla_m1_ddim_loop_batch{batch}_prepared_cpu_ms", Median(ddimNew));
        foreach (var ((name, stage), values) in stageCpu) report.Add($"{name}_batch{batch}_stage_{stage}_cpu_ms_threads1", Median(values));
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
                report.Add($"{name}_batch{batch}_session_hit_wall_ms_threads{t}", Median(hitWall[(name, t)]));
                report.Add($"{name}_batch{batch}_session_hit_cpu_ms_threads{t}", Median(hitCpu[(name, t)]));
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

    /// <summary>
    /// CPU milliseconds of each stage of a call (prefix: <c>StartSampling</c>; denoise: every step; finish: unnormalised
    /// chunks), summed over calls repeated for about <paramref name="duration"/>, per call. Read with
    /// <c>CLOCK_PROCESS_CPUTIME_ID</c>, whose nanoseconds resolve a millisecond stage (TotalProcessorTime counts ticks).
    /// </summary>
    private static IEnumerable<(string Stage, double CpuMs)> MeasureStages(VlaPolicy policy, Observation[] observations, long[] seeds, string?[]? sessions, TimeSpan duration)
    {
        var (prefix, denoise, finish) = (0.0, 0.0, 0.0);
        var watch = Stopwatch.StartNew();
        var calls = 0;
        while (watch.Elapsed < duration || calls < 3)
        {
            var t0 = ThreadCpu.ProcessNow().TotalMilliseconds;
            using var sampling = policy.StartSampling(observations, seeds, sessions: sessions);
            var t1 = ThreadCpu.ProcessNow().TotalMilliseconds;
            while (!sampling.Done) sampling.Step();
            var t2 = ThreadCpu.ProcessNow().TotalMilliseconds;
            sampling.Finish();
            var t3 = ThreadCpu.ProcessNow().TotalMilliseconds;
            (prefix, denoise, finish) = (prefix + t1 - t0, denoise + t2 - t1, finish + t3 - t2);
            calls++;
        }
        return [("prefix", prefix / calls), ("denoise", denoise / calls), ("finish", finish / calls)];
    }

    private static string?[] Sessions(int batch) => [.. Enumerable.Range(0, batch).Select(i => $"bench-{i}")];

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

    private static TimeSpan CpuNow() => ThreadCpu.ProcessNow();

    internal static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    internal static void Add<TKey>(Dictionary<TKey, List<double>> figures, TKey key, double value) where TKey : notnull
    {
        if (!figures.TryGetValue(key, out var list)) figures[key] = list = [];
        list.Add(value);
    }

    internal static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

}
