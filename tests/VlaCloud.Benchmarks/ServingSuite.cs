using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using VlaCloud.Contracts;
using VlaCloud.Contracts.Wire;
using VlaCloud.Policy;
using VlaCloud.Testing;

namespace VlaCloud.Benchmarks;

/// <summary>
/// The serving path end to end: starts the real host on a loopback port (on the local Postgres and Redis of
/// <c>.ci/services</c>, in a database of its own), registers a tiny policy, and drives <c>/v1/act</c> with
/// 1, 8 and 32 concurrent clients, with batching on and off, and one WebSocket control loop; in the same run it
/// measures the raw batched <c>SampleActions</c> throughput of the same model, so the ratios compare like with like.
/// </summary>
internal sealed class ServingSuite : IBenchmarkSuite
{
    internal const string Embodiment = "bench-arm";
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(8);

    public string Name => "serving";

    public string Description => "host over HTTP/WebSocket at 1/8/32 clients vs raw batched SampleActions (served_over_raw, overhead), the openpi route against a WebSocket echo of the same payload (openpi_over_echo); `serving cpu` only the CPU-time figures; `serving profile [SECONDS] [CLIENTS]` only serves, for a profiler";

    public async Task RunAsync(Report report, string[] args, CancellationToken cancellationToken)
    {
        await using var environment = await BenchmarkEnvironment.CreateAsync();
        if (args.Length > 0 && args[0] == "profile")
        {
            await ServeForProfilerAsync(environment, report, args[1..], cancellationToken);
            return;
        }
        // The host applies VlaCloud:Inference:TorchThreads at its start; the raw loop runs in this process too, so the
        // setting (from the environment, VlaCloud__Inference__TorchThreads) is applied first and both sides share it.
        // Unset, the suite runs libtorch on 1 thread: on these 2 shared cores a second intra-op thread made the batch-1
        // forward's CPU per sample larger and far less steady (Session 35: 15.4 against 8.1–10.0 ms per served request,
        // the control loops' CPU per step about twice), and the product's default (one per core) is for a machine of its own.
        var threads = Environment.GetEnvironmentVariable("VlaCloud__Inference__TorchThreads");
        report.Add("torch_threads", VlaCloud.Inference.TorchThreads.Apply(string.IsNullOrEmpty(threads) ? 1 : int.Parse(threads, System.Globalization.CultureInfo.InvariantCulture)));
        var stats = new Dictionary<string, NormalizationStats> { [Embodiment] = Stats() };
        using var policy = VlaPolicy.Create(PolicyConfig.Tiny, stats, seed: 3);
        if (args.Length > 0 && args[0] == "cpu")
        {
            // Only the CPU-time section (a few minutes shorter), for trying runtime settings one at a time.
            await MeasureCpuAsync(environment, policy, report, cancellationToken);
            return;
        }

        // The raw model is measured before and after the host runs, and the two averaged, so a machine
        // whose load drifts during the run biases neither side of the ratios.
        var before = MeasureRaw(policy, report, "raw_before_", cancellationToken);
        report.Note("batching on (max batch 32)");
        var served = await MeasureHostAsync(environment, null, policy, report, "", [1, 8, 32], withStream: true, cancellationToken);
        report.Note("batching off (max batch 1)");
        var unbatched = await MeasureHostAsync(environment, new Dictionary<string, string?> { ["VlaCloud:Inference:MaxBatchSize"] = "1" },
            policy, report, "nobatch_", [32], withStream: false, cancellationToken);
        var after = MeasureRaw(policy, report, "raw_after_", cancellationToken);
        var raw = ((before.Batch1Median + after.Batch1Median) / 2, (before.Batch32Throughput + after.Batch32Throughput) / 2);
        report.Add("raw_batch1_p50_ms", raw.Item1);
        report.Add("raw_batch32_samples_per_s", raw.Item2);

        report.Add("served_over_raw", served[32].Throughput / raw.Item2);
        report.Add("batching_gain_32_clients", served[32].Throughput / unbatched[32].Throughput);
        report.Add("overhead_p50_ms", served[1].P50 - raw.Item1);

        report.Note($"CPU time of this process (the host; clients run in a child process), raw and served interleaved over {CpuRounds} rounds, medians");
        await MeasureCpuAsync(environment, policy, report, cancellationToken);
    }

    private const int CpuRounds = 5;

    /// <summary>
    /// The figures a shared machine cannot skew: CPU seconds this process spends per sample, raw (SampleActions in a
    /// loop) against served (the host answering a load generator that runs in a child process, so its CPU is not
    /// counted). Raw and served alternate within each round so a drift in the machine's load affects both alike.
    /// </summary>
    private static async Task MeasureCpuAsync(BenchmarkEnvironment environment, VlaPolicy policy, Report report, CancellationToken cancellationToken)
    {
        await using var host = await environment.StartHostAsync(null, cancellationToken);
        var key = await host.CreateTenantAsync();
        using var http = host.CreateClient(key);
        var model = await RegisterAsync(http, policy);
        var bodyFile = Path.Combine(environment.Root, "act.json");
        var body = JsonSerializer.SerializeToUtf8Bytes(new ActRequest($"{model}@v1", Input(0), new ActOptions(Seed: 1)));
        await File.WriteAllBytesAsync(bodyFile, body, cancellationToken);
        (await PostAsync(http, body)).Dispose();
        var streamFile = Path.Combine(environment.Root, "stream.json");
        await File.WriteAllBytesAsync(streamFile, StreamObservation(), cancellationToken);
        var openpiFile = Path.Combine(environment.Root, "openpi.msgpack");
        await File.WriteAllBytesAsync(openpiFile, OpenPiObservation(), cancellationToken);
        var streamRoute = new Uri($"ws://{host.Address.Authority}/v1/stream?checkpoint={model}@v1");
        var openpiRoute = new Uri($"ws://{host.Address.Authority}/v1/openpi/{model}@v1");

        var one = new[] { Observation(0) };
        var many = Enumerable.Range(0, 32).Select(Observation).ToArray();
        var seeds = Enumerable.Range(0, 32).Select(i => (long)i).ToArray();
        // The inference worker's threads: the device workers themselves and the OpenMP threads libtorch starts for them,
        // which inherit the worker's thread name (Linux copies it to threads a thread creates). Everything else in this
        // process while the host serves (Kestrel, the thread pool, Redis, Npgsql, the runtime) is the host's overhead.
        var workerIds = host.Services.GetRequiredService<VlaCloud.Inference.InferenceEngine>().WorkerOsThreadIds.ToHashSet();
        var workerNames = ThreadCpu.Available ? ThreadCpu.ReadAll().Where(t => workerIds.Contains(t.Tid)).Select(t => t.Name).ToHashSet() : [];
        bool Inference(ThreadCpu.Sample thread) => workerIds.Contains(thread.Tid) || workerNames.Contains(thread.Name);
        if (workerIds.Count == 0 || workerNames.Count == 0)
            throw new InvalidOperationException("the inference worker's thread ids are not known (not Linux?): the CPU outside the forward cannot be measured");

        var engine = host.Services.GetRequiredService<VlaCloud.Inference.InferenceEngine>();
        List<double> rawSame = [], raw32 = [], served32 = [], raw1 = [], served1 = [], outside1 = [], outside32 = [], forward1 = [], wakeups1 = [], inferenceWakeups1 = [];
        List<SpanBreakdown> breakdowns1 = [];
        // Warm-up, not measured: a fresh host tiers its code up over its first seconds of load (the JIT was most of the CPU
        // outside the forward in the first ~10 s of a profile), and `serving cpu` has no earlier hosts to do it. Repeated
        // until one pass of every load compiles less than 20 ms (the JIT's own clock, System.Runtime.JitInfo), at most 4
        // passes: on the loaded 2-core machine it never got that quiet within 8 (still ~0.7 s of JIT over the rounds).
        var warmup = Stopwatch.StartNew();
        for (var pass = 0; pass < 4; pass++)
        {
            var jitBefore = System.Runtime.JitInfo.GetCompilationTime();
            await LoadGeneratorSuite.RunChildAsync(host.Address, key, 32, TimeSpan.FromSeconds(3), bodyFile, cancellationToken);
            await LoadGeneratorSuite.RunChildAsync(host.Address, key, 1, TimeSpan.FromSeconds(2), bodyFile, cancellationToken);
            await StreamLoadGeneratorSuite.RunChildAsync(streamRoute, $"Bearer {key}", TimeSpan.FromSeconds(1), streamFile, binary: false, cancellationToken);
            await StreamLoadGeneratorSuite.RunChildAsync(openpiRoute, $"Api-Key {key}", TimeSpan.FromSeconds(1), openpiFile, binary: true, cancellationToken);
            if (System.Runtime.JitInfo.GetCompilationTime() - jitBefore < TimeSpan.FromMilliseconds(20)) break;
        }
        report.Add("cpu_warmup_seconds", warmup.Elapsed.TotalSeconds);
        var jitAtStart = System.Runtime.JitInfo.GetCompilationTime();

        List<LoopCpu> stream = [], openpi = [];
        var formedTotal = new long[engine.BatchesBySize.Count];
        double rps32 = 0;
        for (var round = 0; round < CpuRounds && !cancellationToken.IsCancellationRequested; round++)
        {
            var batchesBefore = engine.BatchesBySize;
            var (cpu32, outsideMs32, load32, _, _, _) = await ServedCpuMsPerRequestAsync(host.Address, key, 32, bodyFile, Inference, cancellationToken);
            var formed = engine.BatchesBySize.Select((count, size) => count - batchesBefore[size]).ToArray();
            for (var size = 0; size < formed.Length; size++) formedTotal[size] += formed[size];
            served32.Add(cpu32);
            outside32.Add(outsideMs32);
            rps32 += load32.Requests / load32.Seconds / CpuRounds;
            // The raw loop at the batch sizes the worker has just formed, so the ratio compares the host's overhead and
            // not the batching policy (a 32-client load does not always form batches of 32).
            rawSame.Add(RawCpuMsPerSampleAtSizes(policy, formed));
            raw32.Add(RawCpuMsPerSample(() => policy.SampleActions(many, seeds), many.Length, TimeSpan.FromSeconds(2)));
            raw1.Add(RawCpuMsPerSample(() => policy.SampleActions(one, [1]), 1, TimeSpan.FromSeconds(1.5)));
            var (cpu1, outsideMs1, _, outsideWakeups1, forwardWakeups1, breakdown1) = await ServedCpuMsPerRequestAsync(host.Address, key, 1, bodyFile, Inference, cancellationToken);
            breakdowns1.Add(breakdown1);
            wakeups1.Add(outsideWakeups1);
            inferenceWakeups1.Add(forwardWakeups1);
            served1.Add(cpu1);
            outside1.Add(outsideMs1);
            forward1.Add(cpu1 - outsideMs1);
            stream.Add(await ControlLoopCpuAsync(host, streamRoute, $"Bearer {key}", streamFile, binary: false, Inference, cancellationToken));
            openpi.Add(await ControlLoopCpuAsync(host, openpiRoute, $"Api-Key {key}", openpiFile, binary: true, Inference, cancellationToken));
        }
        // JIT time inside the measured rounds (host and raw loop alike); large, it would land in the host's overhead.
        report.Add("jit_ms_during_cpu_rounds", (System.Runtime.JitInfo.GetCompilationTime() - jitAtStart).TotalMilliseconds);
        var batches = formedTotal.Sum();
        var samples = formedTotal.Select((count, size) => count * size).Sum();
        report.Note("batch sizes formed at 32 clients (size×batches): " + string.Join(", ",
            formedTotal.Select((count, size) => (count, size)).Where(p => p.count > 0).OrderByDescending(p => p.count).Take(8).Select(p => $"{p.size}×{p.count}")));
        report.Add("inference_threads", ThreadCpu.ReadAll().Count(Inference));
        report.Add("loadgen_32_clients_rps", rps32);
        report.Add("served_mean_batch_size_32_clients", batches == 0 ? double.NaN : (double)samples / batches);
        report.Add("raw_cpu_ms_per_sample_batch32", Median(raw32));
        report.Add("raw_cpu_ms_per_sample_served_batch_sizes", Median(rawSame));
        report.Add("served_cpu_ms_per_sample_32_clients", Median(served32));
        report.Add("overhead_cpu_ms_per_request_32_clients", Median(outside32));
        report.Add("raw_cpu_ms_per_sample_batch1", Median(raw1));
        report.Add("served_cpu_ms_per_request_1_client", Median(served1));
        report.Add("served_inference_threads_cpu_ms_per_request_1_client", Median(forward1));
        // Wake-ups per request at 1 client (a thread that blocked and was woken: voluntary context switches), outside the
        // inference worker's threads and on them. Each hop of a request from one thread to another costs one, and the
        // hops are most of what is left of the overhead (Session 35's profile): this counts the cause, the CPU its cost.
        report.Add("host_wakeups_per_request_1_client", Median(wakeups1));
        report.Add("inference_wakeups_per_request_1_client", Median(inferenceWakeups1));
        // Which threads those wake-ups and that CPU are (medians over the rounds, per request at 1 client), and how many
        // work items the thread pool ran per request: each is a hop that can wake a pool thread.
        report.Add("threadpool_work_items_per_request_1_client", Median(breakdowns1.Select(b => b.PoolWorkItems).ToList()));
        foreach (var name in breakdowns1.SelectMany(b => b.Groups.Keys).Distinct()
                     .OrderByDescending(n => Median(breakdowns1.Select(b => b.Groups.GetValueOrDefault(n).Wakeups).ToList())))
        {
            var wakeups = Median(breakdowns1.Select(b => b.Groups.GetValueOrDefault(name).Wakeups).ToList());
            var cpuMs = Median(breakdowns1.Select(b => b.Groups.GetValueOrDefault(name).CpuMs).ToList());
            if (wakeups < 0.05 && cpuMs < 0.005) continue;
            report.Note($"1 client, per request, {name} ({breakdowns1.Max(b => b.Groups.GetValueOrDefault(name).Threads)} threads): {wakeups:F2} wake-ups, {cpuMs:F3} ms CPU");
        }
        // The control loops (one WebSocket client in the child process, the same observation every step): the host's CPU
        // per step, forward included, and the rate one core could sustain at that cost, next to the wall-clock rate.
        foreach (var (name, loops) in new[] { ("websocket", stream), ("openpi", openpi) })
        {
            report.Add($"{name}_control_loop_prefix_hit_rate", Median(loops.Select(l => l.PrefixHitRate).ToList()));
            report.Add($"{name}_control_loop_hz_wall_child", Median(loops.Select(l => l.Hz).ToList()));
            report.Add($"{name}_control_loop_cpu_ms_per_step", Median(loops.Select(l => l.CpuMsPerStep).ToList()));
            report.Add($"{name}_control_loop_overhead_cpu_ms_per_step", Median(loops.Select(l => l.OutsideCpuMsPerStep).ToList()));
            report.Add($"{name}_control_loop_hz_cpu_bound", 1000 / Median(loops.Select(l => l.CpuMsPerStep).ToList()));
        }
        // The old figure: served CPU minus the raw loop's, two measurements taken at different moments, so the machine's
        // drift between them lands in it (it went negative on a loaded machine).
        report.Add("overhead_vs_raw_cpu_ms_per_request", Median(served1) - Median(raw1));
        // Against the raw loop at batch 32 whatever batches the served load formed (the figure printed before Session 35).
        report.Add("served_over_raw_batch32_cpu", Median(raw32) / Median(served32));
        // Against the raw loop at the batch sizes the served load formed, round by round: the definition.
        report.Add("served_over_raw_cpu", Median(rawSame) / Median(served32));
        // The host's CPU outside the inference worker's threads, per request, at 1 client: what VlaCloud adds to the forward.
        report.Add("overhead_cpu_ms_per_request", Median(outside1));
    }

    /// <summary>
    /// CPU ms per sample of <c>SampleActions</c> run once at every batch in <paramref name="batchesBySize"/> (element n:
    /// how many batches of n), the sizes interleaved; each size is warmed up first, outside the measurement, as the
    /// served side's have been.
    /// </summary>
    private static double RawCpuMsPerSampleAtSizes(VlaPolicy policy, long[] batchesBySize)
    {
        var inputs = new Dictionary<int, (Observation[] Observations, long[] Seeds)>();
        foreach (var size in Enumerable.Range(1, batchesBySize.Length - 1).Where(size => batchesBySize[size] > 0))
        {
            inputs[size] = (Enumerable.Range(0, size).Select(Observation).ToArray(), Enumerable.Range(0, size).Select(i => (long)i).ToArray());
            policy.SampleActions(inputs[size].Observations, inputs[size].Seeds);
        }
        // Round robin over the sizes so a drift during the loop touches every size alike.
        var left = (long[])batchesBySize.Clone();
        var cpu = CpuNow();
        long samples = 0;
        for (var any = true; any;)
        {
            any = false;
            foreach (var (size, input) in inputs)
            {
                if (left[size] == 0) continue;
                policy.SampleActions(input.Observations, input.Seeds);
                left[size]--;
                samples += size;
                any = true;
            }
        }
        return samples == 0 ? double.NaN : (CpuNow() - cpu).TotalMilliseconds / samples;
    }

    /// <summary>
    /// Serves <c>/v1/act</c> to the child load generator (1 client unless told) for SECONDS (60 unless told) and nothing
    /// else, so a profiler attached to this process (its id is printed as <c>host_pid</c>, then <c>serving_started</c>
    /// when the load starts) sees only the serving path; the CPU figure is printed at the end as in the full suite.
    /// </summary>
    private static async Task ServeForProfilerAsync(BenchmarkEnvironment environment, Report report, string[] args, CancellationToken cancellationToken)
    {
        var seconds = args.Length > 0 ? double.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 60;
        var clients = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 1;
        var stats = new Dictionary<string, NormalizationStats> { [Embodiment] = Stats() };
        using var policy = VlaPolicy.Create(PolicyConfig.Tiny, stats, seed: 3);
        await using var host = await environment.StartHostAsync(null, cancellationToken);
        var key = await host.CreateTenantAsync();
        using var http = host.CreateClient(key);
        var model = await RegisterAsync(http, policy);
        var bodyFile = Path.Combine(environment.Root, "act.json");
        var body = JsonSerializer.SerializeToUtf8Bytes(new ActRequest($"{model}@v1", Input(0), new ActOptions(Seed: 1)));
        await File.WriteAllBytesAsync(bodyFile, body, cancellationToken);
        // A short load first, so JIT and first-use costs are over before a profiler looks.
        await ServedCpuMsPerRequestAsync(host.Address, key, clients, bodyFile, cancellationToken);
        report.Add("host_pid", Environment.ProcessId);
        report.Add("serving_started", DateTimeOffset.UtcNow.ToString("HH:mm:ss.fff", System.Globalization.CultureInfo.InvariantCulture));
        var (cpu, load) = await ServedCpuMsPerRequestAsync(host.Address, key, clients, bodyFile, cancellationToken, TimeSpan.FromSeconds(seconds));
        report.Add("served_requests", load.Requests);
        report.Add("served_p50_ms", load.P50);
        report.Add($"served_cpu_ms_per_request_{clients}_clients", cpu);
    }

    private static double RawCpuMsPerSample(Action step, int samplesPerStep, TimeSpan duration)
    {
        step();
        var cpu = CpuNow();
        var watch = Stopwatch.StartNew();
        var samples = 0;
        while (watch.Elapsed < duration)
        {
            step();
            samples += samplesPerStep;
        }
        return (CpuNow() - cpu).TotalMilliseconds / samples;
    }

    private static async Task<(double CpuMs, LoadGeneratorSuite.Result Load)> ServedCpuMsPerRequestAsync(
        Uri address, string key, int clients, string bodyFile, CancellationToken cancellationToken, TimeSpan? duration = null)
    {
        var cpu = CpuNow();
        var load = await LoadGeneratorSuite.RunChildAsync(address, key, clients, duration ?? TimeSpan.FromSeconds(3), bodyFile, cancellationToken);
        if (load.Errors > 0 || load.Requests == 0) throw new InvalidOperationException($"load generator: {load.Errors} errors, {load.Requests} answers");
        return ((CpuNow() - cpu).TotalMilliseconds / load.Requests, load);
    }

    /// <summary>
    /// As above, and also the CPU of the threads <paramref name="inference"/> does not pick (the host outside the
    /// forward) per request, and the wake-ups per request outside those threads and on them, from the same span.
    /// </summary>
    private static async Task<(double CpuMs, double OutsideCpuMs, LoadGeneratorSuite.Result Load, double OutsideWakeups, double InferenceWakeups, SpanBreakdown Breakdown)> ServedCpuMsPerRequestAsync(
        Uri address, string key, int clients, string bodyFile, Func<ThreadCpu.Sample, bool> inference, CancellationToken cancellationToken)
    {
        var threads = ThreadCpu.ReadAll();
        var workItems = ThreadPool.CompletedWorkItemCount;
        var cpu = CpuNow();
        var load = await LoadGeneratorSuite.RunChildAsync(address, key, clients, TimeSpan.FromSeconds(3), bodyFile, cancellationToken);
        var total = CpuNow() - cpu;
        var completed = ThreadPool.CompletedWorkItemCount - workItems;
        // One read of every thread after the span serves all the figures below (and the per-group breakdown).
        var after = ThreadCpu.ReadAll();
        var groups = ThreadCpu.ByGroup(threads, after);
        var onInference = ThreadCpu.ByGroup(threads, [.. after.Where(inference)]);
        var forward = onInference.Values.Aggregate(TimeSpan.Zero, (sum, g) => sum + g.Cpu);
        var inferenceWakeups = onInference.Values.Sum(g => g.Wakeups);
        var outsideWakeups = groups.Values.Sum(g => g.Wakeups) - inferenceWakeups;
        if (load.Errors > 0 || load.Requests == 0) throw new InvalidOperationException($"load generator: {load.Errors} errors, {load.Requests} answers");
        var breakdown = new SpanBreakdown((double)completed / load.Requests,
            groups.ToDictionary(g => g.Key, g => (g.Value.Cpu.TotalMilliseconds / load.Requests, (double)g.Value.Wakeups / load.Requests, g.Value.Threads)));
        return (total.TotalMilliseconds / load.Requests, (total - forward).TotalMilliseconds / load.Requests, load,
            (double)outsideWakeups / load.Requests, (double)inferenceWakeups / load.Requests, breakdown);
    }

    /// <summary>
    /// Where one served span went, per request: the thread pool's completed work items (hops through the pool, the
    /// benchmark's own few included), and per thread group (see <see cref="ThreadCpu.ByGroup"/>) CPU ms, wake-ups and
    /// thread count.
    /// </summary>
    private sealed record SpanBreakdown(double PoolWorkItems, Dictionary<string, (double CpuMs, double Wakeups, int Threads)> Groups);

    private static TimeSpan CpuNow() => ThreadCpu.ProcessNow();

    private static (double Batch1Median, double Batch32Throughput) MeasureRaw(VlaPolicy policy, Report report, string prefix, CancellationToken cancellationToken)
    {
        var one = new[] { Observation(0) };
        var many = Enumerable.Range(0, 32).Select(Observation).ToArray();
        var seeds = Enumerable.Range(0, 32).Select(i => (long)i).ToArray();
        policy.SampleActions(one, [1]);
        policy.SampleActions(many, seeds);
        var single = new List<double>();
        for (var i = 0; i < 30 && !cancellationToken.IsCancellationRequested; i++)
        {
            var watch = Stopwatch.StartNew();
            policy.SampleActions(one, [i]);
            single.Add(watch.Elapsed.TotalMilliseconds);
        }
        var total = Stopwatch.StartNew();
        var samples = 0;
        while (total.Elapsed < Window && !cancellationToken.IsCancellationRequested)
        {
            policy.SampleActions(many, seeds);
            samples += many.Length;
        }
        var batch1 = Median(single);
        var throughput = samples / total.Elapsed.TotalSeconds;
        report.Add($"{prefix}batch1_p50_ms", batch1);
        report.Add($"{prefix}batch32_samples_per_s", throughput);
        return (batch1, throughput);
    }

    private sealed record Load(double Throughput, double P50, double P99);

    private static async Task<Dictionary<int, Load>> MeasureHostAsync(
        BenchmarkEnvironment environment, IReadOnlyDictionary<string, string?>? overrides, VlaPolicy policy, Report report, string prefix, int[] clientCounts, bool withStream, CancellationToken cancellationToken)
    {
        await using var host = await environment.StartHostAsync(overrides, cancellationToken);
        var address = host.Address;
        var key = await host.CreateTenantAsync();
        using var http = host.CreateClient(key);
        var model = await RegisterAsync(http, policy);

        var body = JsonSerializer.SerializeToUtf8Bytes(new ActRequest($"{model}@v1", Input(0), new ActOptions(Seed: 1)));
        (await PostAsync(http, body)).Dispose(); // loads and warms the model
        var results = new Dictionary<int, Load>();
        foreach (var clients in clientCounts)
        {
            var latencies = new List<double>[clients];
            var watch = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, clients).Select(async c =>
            {
                latencies[c] = [];
                while (watch.Elapsed < Window && !cancellationToken.IsCancellationRequested)
                {
                    var started = Stopwatch.GetTimestamp();
                    using var response = await PostAsync(http, body);
                    response.EnsureSuccessStatusCode();
                    latencies[c].Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                }
            }));
            var all = latencies.SelectMany(l => l).Order().ToList();
            var load = new Load(all.Count / watch.Elapsed.TotalSeconds, all[all.Count / 2], all[Math.Min(all.Count - 1, (int)(all.Count * 0.99))]);
            results[clients] = load;
            report.Add($"{prefix}http_{clients}_clients_rps", load.Throughput);
            report.Add($"{prefix}http_{clients}_clients_p50_ms", load.P50);
            report.Add($"{prefix}http_{clients}_clients_p99_ms", load.P99);
        }

        if (withStream)
        {
            using var socket = new ClientWebSocket();
            socket.Options.SetRequestHeader("Authorization", $"Bearer {key}");
            await socket.ConnectAsync(new Uri($"ws://{address.Authority}/v1/stream?checkpoint={model}@v1"), cancellationToken);
            var buffer = new byte[1 << 20];
            await socket.ReceiveAsync(buffer, cancellationToken);
            var message = StreamObservation();
            var engine = host.Services.GetRequiredService<VlaCloud.Inference.InferenceEngine>();
            var hitsBefore = engine.CacheStats.Sum(c => c.PrefixHits);
            var watch = Stopwatch.StartNew();
            var messages = 0;
            while (watch.Elapsed < Window && !cancellationToken.IsCancellationRequested)
            {
                await socket.SendAsync(message, WebSocketMessageType.Text, true, cancellationToken);
                WebSocketReceiveResult result;
                do result = await socket.ReceiveAsync(buffer, cancellationToken); while (!result.EndOfMessage);
                messages++;
            }
            report.Add("websocket_control_loop_hz", messages / watch.Elapsed.TotalSeconds);
            // The loop resends one observation, so after its first step every step should reuse the session's prefix.
            report.Add("websocket_control_loop_prefix_hit_rate", (engine.CacheStats.Sum(c => c.PrefixHits) - hitsBefore) / (double)messages);
            await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cancellationToken);
            await MeasureOpenPiAgainstEchoAsync(address, key, model, report, cancellationToken);
        }
        return results;
    }

    /// <summary>
    /// The openpi route's per-call time against its floor: a minimal WebSocket echo server (Kestrel, in this process, on
    /// loopback) answering the same msgpack-numpy observation with the same bytes. Rounds alternate openpi and echo so
    /// drift hits both; the medians, their ratio and the openpi loop's rate are printed. The openpi call includes the
    /// model's forward, so the ratio is the served loop over the transport alone (the model's own batch-1 time is
    /// <c>raw_batch1_p50_ms</c>).
    /// </summary>
    private static async Task MeasureOpenPiAgainstEchoAsync(Uri address, string key, string model, Report report, CancellationToken cancellationToken)
    {
        var observation = OpenPiObservation();
        var builder = Microsoft.AspNetCore.Builder.WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        await using var echo = builder.Build();
        echo.UseWebSockets();
        echo.Map("/echo", async (HttpContext context) =>
        {
            using var server = await context.WebSockets.AcceptWebSocketAsync();
            var buffer = new byte[1 << 20];
            while (true)
            {
                var total = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    result = await server.ReceiveAsync(buffer.AsMemory(total), CancellationToken.None);
                    total += result.Count;
                } while (!result.EndOfMessage);
                if (result.MessageType == WebSocketMessageType.Close) break;
                await server.SendAsync(buffer.AsMemory(0, total), WebSocketMessageType.Binary, true, CancellationToken.None);
            }
            await server.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
        });
        await echo.StartAsync(cancellationToken);
        var echoAddress = echo.Urls.First().Replace("http://", "ws://", StringComparison.Ordinal);

        using var openpi = new ClientWebSocket();
        openpi.Options.SetRequestHeader("Authorization", $"Api-Key {key}");
        await openpi.ConnectAsync(new Uri($"ws://{address.Authority}/v1/openpi/{model}@v1"), cancellationToken);
        var buffer = new byte[1 << 20];
        await ReceiveWholeAsync(openpi, buffer, cancellationToken); // metadata
        using var floor = new ClientWebSocket();
        await floor.ConnectAsync(new Uri($"{echoAddress}/echo"), cancellationToken);

        async Task<double> CallMsAsync(ClientWebSocket socket)
        {
            var started = Stopwatch.GetTimestamp();
            await socket.SendAsync(observation, WebSocketMessageType.Binary, true, cancellationToken);
            var type = await ReceiveWholeAsync(socket, buffer, cancellationToken);
            if (type != WebSocketMessageType.Binary) throw new InvalidOperationException("the openpi route answered with an error frame");
            return Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        }

        for (var i = 0; i < 20; i++) { await CallMsAsync(openpi); await CallMsAsync(floor); } // warm-up
        List<double> openpiMs = [], echoMs = [];
        var openpiTotal = TimeSpan.Zero;
        var openpiCalls = 0;
        for (var round = 0; round < 5 && !cancellationToken.IsCancellationRequested; round++)
        {
            var watch = Stopwatch.StartNew();
            while (watch.Elapsed < TimeSpan.FromSeconds(1.5)) { openpiMs.Add(await CallMsAsync(openpi)); openpiCalls++; }
            openpiTotal += watch.Elapsed;
            watch.Restart();
            while (watch.Elapsed < TimeSpan.FromSeconds(0.5)) echoMs.Add(await CallMsAsync(floor));
        }
        report.Add("openpi_payload_bytes", observation.Length);
        report.Add("openpi_call_p50_ms", Median(openpiMs));
        report.Add("websocket_echo_call_p50_ms", Median(echoMs));
        report.Add("openpi_over_echo", Median(openpiMs) / Median(echoMs));
        report.Add("openpi_control_loop_hz", openpiCalls / openpiTotal.TotalSeconds);
        await openpi.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cancellationToken);
        await floor.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cancellationToken);
        await echo.StopAsync(cancellationToken);
    }

    /// <summary>The <c>/v1/stream</c> observation message of the control loops.</summary>
    private static byte[] StreamObservation() => JsonSerializer.SerializeToUtf8Bytes(new
    {
        type = "observation",
        images = new { main = new { format = "raw", shape = new[] { 64, 64, 3 }, data = Convert.ToBase64String(Pixels(1)) } },
        state = new[] { 0.1f, 0.2f, 1f },
        instruction = "pick the red cube and place it in the blue bowl",
    });

    /// <summary>The openpi route's msgpack-numpy observation of the control loops.</summary>
    private static byte[] OpenPiObservation() => MsgPack.Serialize(NumpyArray.ToWireTree(new Dictionary<string, object?>
    {
        ["observation/main"] = NumpyArray.FromBytes(Pixels(1), 64, 64, 3),
        ["observation/state"] = NumpyArray.FromFloats([0.1f, 0.2f, 1f], 3),
        ["prompt"] = "pick the red cube and place it in the blue bowl",
    }));

    private sealed record LoopCpu(double CpuMsPerStep, double OutsideCpuMsPerStep, double Hz, double PrefixHitRate);

    /// <summary>
    /// One control loop from the child <c>loadgen-ws</c> for 2 s against <paramref name="route"/>: this process's CPU per
    /// step (all of it, and outside the inference threads), the loop's rate, and the share of steps that reused the
    /// session's prefix (the engine's <see cref="VlaCloud.Inference.ModelCacheStats.PrefixHits"/> over the span).
    /// </summary>
    private static async Task<LoopCpu> ControlLoopCpuAsync(BenchmarkHost host, Uri route, string authorization, string bodyFile, bool binary,
        Func<ThreadCpu.Sample, bool> inference, CancellationToken cancellationToken)
    {
        var engine = host.Services.GetRequiredService<VlaCloud.Inference.InferenceEngine>();
        var hits = engine.CacheStats.Sum(c => c.PrefixHits);
        var threads = ThreadCpu.ReadAll();
        var cpu = CpuNow();
        var loop = await StreamLoadGeneratorSuite.RunChildAsync(route, authorization, TimeSpan.FromSeconds(2), bodyFile, binary, cancellationToken);
        var total = CpuNow() - cpu;
        var forward = ThreadCpu.Since(threads, inference);
        if (loop.Errors > 0 || loop.Requests == 0) throw new InvalidOperationException($"control loop {route}: {loop.Errors} errors, {loop.Requests} answers");
        return new LoopCpu(total.TotalMilliseconds / loop.Requests, (total - forward).TotalMilliseconds / loop.Requests, loop.Requests / loop.Seconds,
            (engine.CacheStats.Sum(c => c.PrefixHits) - hits) / (double)loop.Requests);
    }

    /// <summary>Reads one whole WebSocket message into <paramref name="buffer"/> and says its type.</summary>
    internal static async Task<WebSocketMessageType> ReceiveWholeAsync(ClientWebSocket socket, byte[] buffer, CancellationToken cancellationToken)
    {
        var total = 0;
        WebSocketReceiveResult result;
        do
        {
            result = await socket.ReceiveAsync(new ArraySegment<byte>(buffer, total, buffer.Length - total), cancellationToken);
            total += result.Count;
        } while (!result.EndOfMessage);
        return result.MessageType;
    }

    private static Task<HttpResponseMessage> PostAsync(HttpClient http, byte[] body)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return http.PostAsync("/v1/act", content);
    }

    internal static async Task<string> RegisterAsync(HttpClient http, VlaPolicy policy)
    {
        (await http.PostAsJsonAsync("/v1/embodiments", new
        {
            name = Embodiment, action_dim = 3, state_dim = 3, action_space = "delta_xy+gripper",
            cameras = new[] { new { name = "main", width = 64, height = 64 } }, control_hz = 10, chunk_length = PolicyConfig.Tiny.ChunkLength,
        })).EnsureSuccessStatusCode();
        await BenchmarkHost.RegisterCheckpointAsync(http, policy, "bench", Embodiment);
        return "bench";
    }

    internal static ObservationInput Input(int variant) =>
        new(new Dictionary<string, ImageInput> { ["main"] = new("raw", Pixels(variant), [64, 64, 3]) }, [0.1f, 0.2f, 1f], "pick the red cube and place it in the blue bowl");

    private static Observation Observation(int variant) =>
        new([new CameraImage(Pixels(variant), 64, 64)], "pick the red cube and place it in the blue bowl", [0.1f, 0.2f, 1f], Embodiment);

    private static byte[] Pixels(int variant)
    {
        var pixels = new byte[64 * 64 * 3];
        for (var i = 0; i < pixels.Length; i++) pixels[i] = (byte)((i * (variant + 3)) % 251);
        return pixels;
    }

    internal static NormalizationStats Stats() => TestPolicies.IdentityStats(3, 3, binaryActionDims: [2]);

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
}
