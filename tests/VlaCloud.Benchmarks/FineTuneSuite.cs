using System.Diagnostics;
using System.Formats.Tar;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using VlaCloud.Contracts;
using VlaCloud.Policy;
using VlaCloud.Registry;
using VlaCloud.Sim;
using VlaCloud.Testing;
using VlaCloud.Training;
using VlaCloud.Training.Jobs;

namespace VlaCloud.Benchmarks;

/// <summary>
/// Fine-tuning end to end: starts the real host with the trainer role (the Hangfire <c>finetune</c> worker runs in
/// this process), uploads a generated simulator dataset in parts, waits for its validation, registers a tiny base
/// checkpoint and runs one fine-tuning job; in the same run it trains the same base on the same data with the same
/// options through <see cref="CoTrainer.Train"/> directly, so <c>job_over_raw</c> is what the job machinery (events,
/// state uploads, Hangfire, the database) costs the training loop.
/// </summary>
internal sealed class FineTuneSuite : IBenchmarkSuite
{
    private const int Episodes = 6;
    private const int Parts = 4;
    private static readonly SimEmbodiment Sim = SimEmbodiment.Tabletop;
    private static readonly TimeSpan WaitLimit = TimeSpan.FromMinutes(15);

    // Tiny but long enough that the loop, not start-up, dominates; the job saves (and uploads) a resumable
    // state at step 40 and at the end, and the raw runs save the same states to a folder.
    private static readonly RequestedTrainingOptions Requested = new()
    {
        Steps = 80, BatchSize = 8, LearningRate = 1e-3, WarmupSteps = 8, CheckpointInterval = 40, Seed = 5,
    };

    // The same options as the REST request sends them.
    private static readonly FineTuningHyperparameters Hyperparameters = new()
    {
        Steps = Requested.Steps, BatchSize = Requested.BatchSize, LearningRate = Requested.LearningRate, WarmupSteps = Requested.WarmupSteps,
        CheckpointInterval = Requested.CheckpointInterval, Seed = Requested.Seed,
    };

    public string Name => "finetune";

    public string Description => "fine-tuning job steps/s (in-process trainer) vs the raw CoTrainer loop on the same data and options (job_over_raw), and CPU per step (job_over_raw_cpu)";

    public async Task RunAsync(Report report, string[] args, CancellationToken cancellationToken)
    {
        // What the job trains with: the API stores the hyperparameters with defaults filled in and the job reads
        // them back, so the raw runs take the same round trip.
        var options = FineTuningJobSpec.FromJson(FineTuningJobSpec.Resolve(Requested, out var errors).ToJson()).ToOptions();
        if (errors.Count > 0) throw new InvalidOperationException(string.Join("; ", errors.SelectMany(e => e.Value)));
        report.Note($"config tiny, steps {options.Steps}, batch {options.BatchSize}, checkpoint_interval {options.CheckpointInterval}, mode {options.Mode}");

        await using var environment = await BenchmarkEnvironment.CreateAsync();
        var datasetFolder = Path.Combine(environment.Root, "dataset");
        var watch = Stopwatch.StartNew();
        var summary = await DatasetGenerator.GenerateAsync(datasetFolder, new DatasetOptions(Episodes, SimSplits.Train, [TaskKind.PickPlace, TaskKind.Push], 64), cancellationToken: cancellationToken);
        report.Add("dataset_generation_s", watch.Elapsed.TotalSeconds);
        byte[] tar;
        using (var stream = new MemoryStream())
        {
            await TarFile.CreateFromDirectoryAsync(datasetFolder, stream, includeBaseDirectory: false, cancellationToken);
            tar = stream.ToArray();
        }
        report.Add("dataset_episodes", summary.Episodes);
        report.Add("dataset_frames", summary.Frames);
        report.Add("dataset_tar_bytes", tar.Length);

        var baseTar = Path.Combine(environment.Root, "base.tar");
        using (var basePolicy = VlaPolicy.Create(PolicyConfig.Tiny, BaseStats(), seed: 3))
        await using (var file = File.Create(baseTar))
            basePolicy.SaveTar(file);

        await using var host = await environment.StartHostAsync(new Dictionary<string, string?>
        {
            ["VlaCloud:Roles"] = "api,trainer",
            ["VlaCloud:FineTuning:WorkPath"] = Path.Combine(environment.Root, "work"),
            // Hangfire's default poll (15 s) would be most of a tiny job's queue wait.
            ["VlaCloud:Jobs:QueuePollInterval"] = "00:00:00.500",
        }, cancellationToken);
        using var http = host.CreateClient(await host.CreateTenantAsync());
        var model = await RegisterBaseAsync(http, baseTar);
        var dataset = await UploadDatasetAsync(http, tar, report, cancellationToken);

        TrainingData data;
        using (var scope = host.Services.CreateScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<RegistryDbContext>();
            var embodiment = await db.Embodiments.IgnoreQueryFilters().AsNoTracking().SingleAsync(e => e.Id == dataset.EmbodimentId, cancellationToken);
            watch.Restart();
            data = await TrainingData.LoadAsync(datasetFolder, [], FineTuneJob.DataOptionsFor(embodiment), cancellationToken);
            report.Add("raw_data_load_s", watch.Elapsed.TotalSeconds);
        }

        // First-use costs (native libraries, allocator, JIT of the loop) would otherwise fall on raw_before only.
        Train(baseTar, data, options with { Steps = 3, CheckpointInterval = 0 }, null, cancellationToken).Dispose();

        // Raw is measured before and after the job, and the two averaged, so a machine whose load drifts
        // during the run biases neither side of the ratios.
        // Two torch threads on a shared two-core machine slow down many times over when the load average is
        // high (the team's threads wait on each other), so each phase records the load it ran under.
        report.Add("torch_threads", TorchSharp.torch.get_num_threads());
        report.Add("raw_before_load_average", LoadAverage());
        var before = MeasureRaw(baseTar, data, options, environment.Root, report, "raw_before_", cancellationToken);
        report.Add("job_load_average", LoadAverage());
        var job = await MeasureJobAsync(http, host, model, dataset.Id, options, report, cancellationToken);
        report.Add("raw_after_load_average", LoadAverage());
        var after = MeasureRaw(baseTar, data, options, environment.Root, report, "raw_after_", cancellationToken);
        report.Add("end_load_average", LoadAverage());

        var raw = new LoopRate((before.StepsPerSecond + after.StepsPerSecond) / 2, (before.SteadyStepsPerSecond + after.SteadyStepsPerSecond) / 2);
        report.Add("raw_steps_per_s", raw.StepsPerSecond);
        report.Add("raw_steady_steps_per_s", raw.SteadyStepsPerSecond);
        report.Add("job_steps_per_s", job.Loop.StepsPerSecond);
        report.Add("job_steady_steps_per_s", job.Loop.SteadyStepsPerSecond);
        report.Add("job_end_to_end_steps_per_s", job.EndToEndStepsPerSecond);
        report.Add("job_over_raw", job.Loop.StepsPerSecond / raw.StepsPerSecond);
        report.Add("job_steady_over_raw", job.Loop.SteadyStepsPerSecond / raw.SteadyStepsPerSecond);
        report.Add("job_end_to_end_over_raw", job.EndToEndStepsPerSecond / raw.StepsPerSecond);

        report.Note($"CPU time of this process (host and trainer) from a loop's first step to its last, raw and job interleaved over {CpuRounds} rounds, medians");
        List<CpuSplit> rawCpu = [], jobCpu = [];
        for (var round = 0; round < CpuRounds && !cancellationToken.IsCancellationRequested; round++)
        {
            rawCpu.Add(RawCpuMsPerStep(baseTar, data, options, environment.Root, cancellationToken));
            jobCpu.Add(await JobCpuMsPerStepAsync(http, model, dataset.Id, options, cancellationToken));
        }
        if (ThreadCpu.Available)
        {
            // Where the CPU went, per step (medians of the rounds): the training thread itself, the threads that carry its
            // name (its OpenMP workers; Linux names a thread after its creator), and every other thread of the process
            // (the host: the job's event writer and uploader, Hangfire, Kestrel, the runtime; idle during the raw loop).
            report.Note("per-thread split of the CPU per step (medians): training thread, its same-named (OpenMP) threads, the rest of the process");
            foreach (var (side, splits) in new[] { ("raw", rawCpu), ("job", jobCpu) })
            {
                report.Add($"{side}_training_thread_cpu_ms_per_step", Median([.. splits.Select(c => c.TrainingThread)]));
                report.Add($"{side}_openmp_threads_cpu_ms_per_step", Median([.. splits.Select(c => c.SameName)]));
                report.Add($"{side}_other_threads_cpu_ms_per_step", Median([.. splits.Select(c => c.Other)]));
                report.Add($"{side}_gc_pause_ms_per_step", Median([.. splits.Select(c => c.GcPause)]));
                report.Add($"{side}_gc_count_per_100_steps", Median([.. splits.Select(c => c.Collections)]));
                report.Add($"{side}_allocated_kb_per_step", Median([.. splits.Select(c => c.AllocatedKb)]));
                // Methods the JIT compiled (any tier, any thread) during the loop, and its compile time, per round.
                report.Add($"{side}_jit_methods_per_round", Median([.. splits.Select(c => c.JitMethods)]));
                report.Add($"{side}_jit_ms_per_round", Median([.. splits.Select(c => c.JitMs)]));
                report.Note($"{side} jit methods by round: {string.Join(", ", splits.Select(c => c.JitMethods))}");
                // The rest by thread name (Linux's 15-character comm), the largest first.
                var names = splits.SelectMany(c => c.OtherByName.Keys).Distinct()
                    .Select(n => (Name: n, Ms: Median([.. splits.Select(c => c.OtherByName.GetValueOrDefault(n))])))
                    .Where(n => n.Ms > 0).OrderByDescending(n => n.Ms).Take(8);
                report.Note($"{side} other threads, ms per step: " + string.Join(", ", names.Select(n => $"'{n.Name}' {n.Ms:F2}")));
            }
        }
        report.Add("raw_cpu_ms_per_step", Median([.. rawCpu.Select(c => c.Process)]));
        report.Add("job_cpu_ms_per_step", Median([.. jobCpu.Select(c => c.Process)]));
        // Raw CPU per step over the job's: 1 is the raw loop's cost, below 1 what the job machinery adds.
        report.Add("job_over_raw_cpu", Median([.. rawCpu.Select(c => c.Process)]) / Median([.. jobCpu.Select(c => c.Process)]));
    }

    /// <summary>CPU milliseconds per step of one loop: the whole process, and split by thread (0 where /proc is not there).</summary>
    private sealed record CpuSplit(double Process, double TrainingThread, double SameName, double Other,
        double GcPause, double Collections, double AllocatedKb, IReadOnlyDictionary<string, double> OtherByName, double JitMethods, double JitMs);

    private const int CpuRounds = 5;

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static TimeSpan CpuNow() => ThreadCpu.ProcessNow();

    /// <summary>This process's CPU milliseconds per step of the raw loop, from its first step's report to its last one's.</summary>
    private static CpuSplit RawCpuMsPerStep(string baseTar, TrainingData data, CoTrainingOptions options, string root, CancellationToken cancellationToken)
    {
        var states = Path.Combine(root, "raw_cpu_states");
        var steps = new CpuAtSteps(options.Steps);
        var thread = new Thread(() => Train(baseTar, data, options, states, cancellationToken, steps).Dispose()) { Name = "raw training" };
        thread.Start();
        thread.Join();
        Directory.Delete(states, recursive: true);
        return steps.Split;
    }

    /// <summary>
    /// This process's CPU milliseconds per step of a fine-tuning job's loop, from its first step to its last, as the job's
    /// per-step <c>vlacloud.training.steps</c> counter reports them on the training thread. Nothing polls the job meanwhile.
    /// </summary>
    private static async Task<CpuSplit> JobCpuMsPerStepAsync(HttpClient http, string model, Guid dataset, CoTrainingOptions options, CancellationToken cancellationToken)
    {
        var steps = new CpuAtSteps(options.Steps);
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "vlacloud.training.steps") l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) =>
        {
            for (var i = 0; i < value; i++) steps.Step();
        });
        listener.Start();
        var created = await http.PostAsJsonAsync("/v1/fine_tuning/jobs", new { @base = $"{model}@v1", dataset, model, hyperparameters = Hyperparameters }, cancellationToken);
        await EnsureAsync(created);
        var id = (await created.Content.ReadFromJsonAsync<FineTuningJobResponse>(cancellationToken))!.Id;
        await steps.Done.WaitAsync(WaitLimit, cancellationToken);
        listener.Dispose();
        FineTuningJobResponse? job = null;
        await WaitUntilAsync(async () =>
        {
            job = await http.GetFromJsonAsync<FineTuningJobResponse>($"/v1/fine_tuning/jobs/{id}", cancellationToken);
            return job!.IsFinished;
        }, $"job {id}", cancellationToken);
        if (job!.Status != "succeeded") throw new InvalidOperationException($"job {id} {job.Status}: {job.Error}");
        return steps.Split;
    }

    /// <summary>
    /// Records this process's CPU time at the first and the last of <c>total</c> steps, on the thread that reports them (the
    /// training thread), and every thread's, so the span's CPU can be split by thread.
    /// </summary>
    private sealed class CpuAtSteps(int total) : IProgress<TrainingProgress>
    {
        private int seen;
        private TimeSpan first;
        private TimeSpan last;
        private int trainingTid;
        private string trainingName = "";
        private List<ThreadCpu.Sample>? threadsAtFirst;
        private TimeSpan trainingThread, sameName, other;
        private Dictionary<string, double> otherByName = [];
        private (TimeSpan Pause, int Collections, long Allocated) gcAtFirst, gcAtLast;

        private (long Methods, TimeSpan Time) jitAtFirst, jitAtLast;

        private static (TimeSpan Pause, int Collections, long Allocated) Gc() =>
            (GC.GetTotalPauseDuration(), GC.CollectionCount(0), GC.GetTotalAllocatedBytes());

        private static (long Methods, TimeSpan Time) Jit() =>
            (System.Runtime.JitInfo.GetCompiledMethodCount(), System.Runtime.JitInfo.GetCompilationTime());
        private readonly TaskCompletionSource done = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Done => done.Task;

        private double PerStep(TimeSpan cpu) => cpu.TotalMilliseconds / (total - 1);

        public CpuSplit Split => new(PerStep(last - first), PerStep(trainingThread), PerStep(sameName), PerStep(other),
            PerStep(gcAtLast.Pause - gcAtFirst.Pause), 100.0 * (gcAtLast.Collections - gcAtFirst.Collections) / (total - 1),
            (gcAtLast.Allocated - gcAtFirst.Allocated) / 1024.0 / (total - 1), otherByName,
            jitAtLast.Methods - jitAtFirst.Methods, (jitAtLast.Time - jitAtFirst.Time).TotalMilliseconds);

        public void Report(TrainingProgress value) => Step();

        public void Step()
        {
            var n = Interlocked.Increment(ref seen);
            if (n == 1)
            {
                if (ThreadCpu.Available && CurrentTid() is var tid and > 0 && ThreadCpu.Read(tid) is { } self)
                {
                    (trainingTid, trainingName) = (tid, self.Name);
                    threadsAtFirst = ThreadCpu.ReadAll();
                }
                gcAtFirst = Gc();
                jitAtFirst = Jit();
                first = CpuNow();
            }
            if (n == total)
            {
                last = CpuNow();
                gcAtLast = Gc();
                jitAtLast = Jit();
                if (threadsAtFirst is { } before)
                {
                    var then = before.ToDictionary(t => t.Tid, t => t.Cpu);
                    otherByName = ThreadCpu.ReadAll().Where(t => t.Tid != trainingTid && t.Name != trainingName)
                        .GroupBy(t => t.Name)
                        .ToDictionary(g => g.Key, g => PerStep(g.Aggregate(TimeSpan.Zero, (sum, t) => sum + (t.Cpu - then.GetValueOrDefault(t.Tid)))));
                    trainingThread = ThreadCpu.Since(before, t => t.Tid == trainingTid);
                    sameName = ThreadCpu.Since(before, t => t.Tid != trainingTid && t.Name == trainingName);
                    other = ThreadCpu.Since(before, t => t.Tid != trainingTid && t.Name != trainingName);
                }
                done.TrySetResult();
            }
        }

        /// <summary>The calling thread's Linux thread id (from <c>/proc/thread-self</c>), 0 when it cannot be read.</summary>
        private static int CurrentTid()
        {
            try
            {
                var link = new FileInfo("/proc/thread-self").LinkTarget;
                return link is not null && int.TryParse(Path.GetFileName(link), out var tid) ? tid : 0;
            }
            catch (IOException)
            {
                return 0;
            }
        }
    }

    /// <summary>
    /// Training-loop rates measured the same way for the raw runs and the job: <see cref="StepsPerSecond"/> is the
    /// loop's own figure at its last step (steps over the time since the loop started, first step included);
    /// <see cref="SteadyStepsPerSecond"/> counts from the first step's report to the last one's.
    /// </summary>
    private sealed record LoopRate(double StepsPerSecond, double SteadyStepsPerSecond);

    private sealed record JobRates(LoopRate Loop, double EndToEndStepsPerSecond);

    private static LoopRate MeasureRaw(string baseTar, TrainingData data, CoTrainingOptions options, string root, Report report, string prefix, CancellationToken cancellationToken)
    {
        var states = Path.Combine(root, $"{prefix}states");
        var steps = new StepTimes();
        var watch = Stopwatch.StartNew();
        // On a dedicated thread, as the job trains, so both sides schedule alike.
        var thread = new Thread(() => Train(baseTar, data, options, states, cancellationToken, steps).Dispose()) { Name = "raw training" };
        thread.Start();
        thread.Join();
        var wall = watch.Elapsed.TotalSeconds;
        Directory.Delete(states, recursive: true);
        var rate = new LoopRate(steps.Last!.StepsPerSecond, (steps.Last.Step - steps.First!.Step) / (steps.LastAt - steps.FirstAt).TotalSeconds);
        report.Add($"{prefix}steps_per_s", rate.StepsPerSecond);
        report.Add($"{prefix}steady_steps_per_s", rate.SteadyStepsPerSecond);
        // Load of the base checkpoint and the final save: the parts of a run outside the loop's own clock.
        report.Add($"{prefix}outside_loop_s", wall - steps.Last.Elapsed.TotalSeconds);
        return rate;
    }

    /// <summary>Trains a fresh copy of the base checkpoint (the loop may train its initial policy in place); the caller disposes the result.</summary>
    private static VlaPolicy Train(string baseTar, TrainingData data, CoTrainingOptions options, string? states, CancellationToken cancellationToken, IProgress<TrainingProgress>? progress = null)
    {
        var initial = VlaPolicy.Load(baseTar);
        try
        {
            var run = CoTrainer.Train(initial, data, options, states, progress, cancellationToken);
            if (!ReferenceEquals(run.Policy, initial)) initial.Dispose();
            return run.Policy;
        }
        catch
        {
            initial.Dispose();
            throw;
        }
    }

    private static async Task<JobRates> MeasureJobAsync(
        HttpClient http, BenchmarkHost host, string model, Guid dataset, CoTrainingOptions options, Report report, CancellationToken cancellationToken)
    {
        var created = await http.PostAsJsonAsync("/v1/fine_tuning/jobs", new { @base = $"{model}@v1", dataset, model, hyperparameters = Hyperparameters }, cancellationToken);
        await EnsureAsync(created);
        var id = (await created.Content.ReadFromJsonAsync<FineTuningJobResponse>(cancellationToken))!.Id;
        await EnsureSameOptionsAsync(host, id, options, cancellationToken);

        FineTuningJobResponse? job = null;
        await WaitUntilAsync(async () =>
        {
            job = await http.GetFromJsonAsync<FineTuningJobResponse>($"/v1/fine_tuning/jobs/{id}", cancellationToken);
            return job!.IsFinished;
        }, $"job {id}", cancellationToken);
        if (job!.Status != "succeeded") throw new InvalidOperationException($"job {id} {job.Status}: {job.Error}");

        var events = await EventsAsync(http, id, cancellationToken);
        var metrics = events.Where(e => e.Type == "metrics").ToList();
        if (metrics.Count != options.Steps) throw new InvalidOperationException($"job {id} reported {metrics.Count} steps of {options.Steps}");
        var (first, last) = (metrics[0], metrics[^1]);
        var loopSeconds = last.Data.GetProperty("step").GetInt32() / last.Data.GetProperty("steps_per_second").GetDouble();
        var loop = new LoopRate(last.Data.GetProperty("steps_per_second").GetDouble(),
            (last.Data.GetProperty("step").GetInt32() - first.Data.GetProperty("step").GetInt32()) / (last.CreatedAt - first.CreatedAt).TotalSeconds);
        var running = (job.FinishedAt!.Value - job.StartedAt!.Value).TotalSeconds;
        var loaded = events.First(e => e.Message.StartsWith("Loaded ", StringComparison.Ordinal)).CreatedAt;

        report.Add("job_queue_wait_s", (job.StartedAt.Value - job.CreatedAt).TotalSeconds);
        report.Add("job_data_load_s", (loaded - job.StartedAt.Value).TotalSeconds);
        // The loop's clock starts after the base checkpoint is loaded; what is left of the time to the first step.
        report.Add("job_before_loop_s", (last.CreatedAt - job.StartedAt.Value).TotalSeconds - loopSeconds);
        report.Add("job_loop_s", loopSeconds);
        report.Add("job_after_loop_s", (job.FinishedAt.Value - last.CreatedAt).TotalSeconds);
        report.Add("job_running_s", running);
        report.Add("job_events", events.Count);
        return new JobRates(loop, options.Steps / running);
    }

    /// <summary>Fails unless the job stored the options the raw runs train with (a default changing on one side only would skew the ratio).</summary>
    private static async Task EnsureSameOptionsAsync(BenchmarkHost host, Guid job, CoTrainingOptions options, CancellationToken cancellationToken)
    {
        using var scope = host.Services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<RegistryDbContext>();
        var stored = await db.FineTuningJobs.IgnoreQueryFilters().Where(j => j.Id == job).Select(j => j.Hyperparameters).SingleAsync(cancellationToken);
        var theirs = FineTuningJobSpec.FromJson(stored).ToOptions();
        if (theirs.ToJson() != options.ToJson())
            throw new InvalidOperationException($"the job trains with {theirs.ToJson()}, the raw runs with {options.ToJson()}");
    }

    private static async Task<string> RegisterBaseAsync(HttpClient http, string baseTar)
    {
        await EnsureAsync(await http.PostAsJsonAsync("/v1/embodiments", new CreateEmbodimentRequest(
            Sim.Name, Sim.ActionDim, Sim.StateDim, "delta_eef+gripper", [.. Sim.Cameras.Select(c => new CameraDto(c.Name, c.Width, c.Height))],
            Sim.ControlHz, PolicyConfig.Tiny.ChunkLength, [.. Sim.ActionNames], [.. Sim.StateNames], Simulator: SimEnvironments.Tabletop)));
        using var policy = VlaPolicy.Load(baseTar);
        const string model = "bench-ft";
        await BenchmarkHost.RegisterCheckpointAsync(http, policy, model, Sim.Name);
        return model;
    }

    /// <summary>Uploads <paramref name="tar"/> in parts, completes it and waits until its dataset is ready.</summary>
    private static async Task<DatasetResponse> UploadDatasetAsync(HttpClient http, byte[] tar, Report report, CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        var created = await http.PostAsJsonAsync("/v1/uploads",
            new CreateUploadRequest("sim.tar", tar.Length, Convert.ToHexStringLower(SHA256.HashData(tar)), "dataset", "application/x-tar", Sim.Name), cancellationToken);
        await EnsureAsync(created);
        var upload = (await created.Content.ReadFromJsonAsync<UploadResponse>(cancellationToken))!;
        var size = (tar.Length + Parts - 1) / Parts;
        for (var n = 1; n <= Parts; n++)
        {
            using var content = new ByteArrayContent(tar, (n - 1) * size, Math.Min(size, tar.Length - (n - 1) * size));
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            await EnsureAsync(await http.PutAsync($"/v1/uploads/{upload.Id}/parts/{n}", content, cancellationToken));
        }
        var completed = await http.PostAsJsonAsync($"/v1/uploads/{upload.Id}/complete", new CompleteUploadRequest(), cancellationToken);
        await EnsureAsync(completed);
        var datasetId = (await completed.Content.ReadFromJsonAsync<UploadResponse>(cancellationToken))!.DatasetId!.Value;
        report.Add("upload_s", watch.Elapsed.TotalSeconds);

        watch.Restart();
        DatasetResponse? dataset = null;
        await WaitUntilAsync(async () =>
        {
            dataset = await http.GetFromJsonAsync<DatasetResponse>($"/v1/datasets/{datasetId}", cancellationToken);
            return dataset!.Status != "validating";
        }, $"dataset {datasetId}", cancellationToken);
        if (dataset!.Status != "ready")
            throw new InvalidOperationException($"dataset {datasetId} {dataset.Status}: {string.Join("; ", dataset.Issues.Select(i => $"{i.File}: {i.Message}"))}");
        report.Add("dataset_ready_wait_s", watch.Elapsed.TotalSeconds);
        report.Add("dataset_validation_s", (dataset.ValidatedAt!.Value - dataset.CreatedAt).TotalSeconds);
        return dataset;
    }

    private static async Task<List<JobEventResponse>> EventsAsync(HttpClient http, Guid job, CancellationToken cancellationToken)
    {
        var all = new List<JobEventResponse>();
        long after = 0;
        while (true)
        {
            var page = (await http.GetFromJsonAsync<ListPage<JobEventResponse>>($"/v1/fine_tuning/jobs/{job}/events?after={after}&limit=100", cancellationToken))!;
            all.AddRange(page.Data);
            if (!page.HasMore) return all;
            after = page.Data[^1].Id;
        }
    }

    // Polled often: the wait is part of what dataset_ready_wait_s reports, and a request every 100 ms is noise.
    private static async Task WaitUntilAsync(Func<Task<bool>> done, string what, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        while (!await done())
        {
            if (deadline.Elapsed > WaitLimit) throw new TimeoutException($"{what} not done after {WaitLimit}");
            await Task.Delay(100, cancellationToken);
        }
    }

    private static async Task EnsureAsync(HttpResponseMessage response)
    {
        if (!response.IsSuccessStatusCode)
            throw new HttpRequestException($"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri?.AbsolutePath}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
    }

    /// <summary>The machine's one-minute load average (Linux), NaN elsewhere.</summary>
    private static double LoadAverage() =>
        File.Exists("/proc/loadavg") && double.TryParse(File.ReadAllText("/proc/loadavg").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture, out var load)
            ? load : double.NaN;

    private static Dictionary<string, NormalizationStats> BaseStats() =>
        new() { [Sim.Name] = TestPolicies.IdentityStats(Sim.ActionDim, Sim.StateDim, binaryActionDims: [2]) };

    /// <summary>Records the first and last step's report and when they came, on the training thread.</summary>
    private sealed class StepTimes : IProgress<TrainingProgress>
    {
        public TrainingProgress? First { get; private set; }
        public TrainingProgress? Last { get; private set; }
        public TimeSpan FirstAt { get; private set; }
        public TimeSpan LastAt { get; private set; }
        private readonly Stopwatch clock = Stopwatch.StartNew();

        public void Report(TrainingProgress value)
        {
            if (First is null) (First, FirstAt) = (value, clock.Elapsed);
            (Last, LastAt) = (value, clock.Elapsed);
        }
    }
}
