using VlaCloud.Parity;
using VlaCloud.Policy;
using static TorchSharp.torch;

namespace VlaCloud.Benchmarks;

/// <summary>
/// The GPU section of issue 23: on every CUDA device, <c>SampleActions</c> of the tiny ST4VLA and InternVLA-M1 policies
/// in fp32, bf16 and fp16 at batch 1 and 32 (wall ms per call, samples/s and this process's CPU ms per call, since the
/// host's share is what batching and the upload path change), and the upload of a batch of 32 camera images through
/// the page-locked path against a plain pageable copy. Arms take turns within each round (≥ 5 rounds, medians). Without
/// a CUDA device it prints <c>gpu_devices: 0</c> and measures nothing; the <c>serving</c> suite then runs on the CPU.
/// Options: <c>--rounds N</c> (5), <c>--seconds S</c> per arm and round (1).
/// </summary>
internal sealed class GpuSuite : IBenchmarkSuite
{
    public string Name => "gpu";

    public string Description => "on CUDA devices: SampleActions per family × fp32/bf16/fp16 × batch 1/32, and pinned vs pageable batch upload (prints gpu_devices: 0 without CUDA)";

    public Task RunAsync(Report report, string[] args, CancellationToken cancellationToken)
    {
        var devices = cuda.is_available() ? cuda.device_count() : 0;
        report.Add("gpu_devices", devices);
        if (devices == 0)
        {
            report.Note("no CUDA device here: nothing measured (build with TorchSharp-cuda-linux and run on a GPU machine)");
            return Task.CompletedTask;
        }
        var rounds = int.Parse(QwenModelBenchmark.Option(args, "--rounds") ?? "5", System.Globalization.CultureInfo.InvariantCulture);
        var seconds = double.Parse(QwenModelBenchmark.Option(args, "--seconds") ?? "1", System.Globalization.CultureInfo.InvariantCulture);
        for (var index = 0; index < devices && !cancellationToken.IsCancellationRequested; index++)
        {
            var device = $"cuda:{index}";
            report.Note($"{device}");
            Forward(report, device, rounds, seconds, cancellationToken);
            Upload(report, device, rounds, seconds, cancellationToken);
        }
        return Task.CompletedTask;
    }

    private static void Forward(Report report, string device, int rounds, double seconds, CancellationToken cancellationToken)
    {
        var arms = new List<(string Name, VlaPolicy Policy, Observation Observation)>();
        try
        {
            foreach (var dtype in new[] { "fp32", "bf16", "fp16" })
            {
                arms.Add(($"st4vla_{dtype}", ForwardSuite.St4Vla(device, dtype), ForwardSuite.St4VlaObservation()));
                arms.Add(($"internvla_m1_{dtype}", VlaPolicy.Create(TinyInternVlaM1.PolicyConfig(), new Dictionary<string, NormalizationStats>
                {
                    ["arm"] = new(VlaCloud.Testing.TestPolicies.IdentityFeature(7), BinaryActionDims: [6]),
                }, seed: 1, device: device, dtype: dtype, tokenizerJson: TinyInternVlaM1.TokenizerJson()), ForwardSuite.M1Observation()));
            }
            var batches = new[] { 1, 32 };
            var wall = new Dictionary<(string, int), List<double>>();
            var cpu = new Dictionary<(string, int), List<double>>();
            foreach (var (_, policy, observation) in arms)
                foreach (var b in batches) for (var i = 0; i < 3; i++) Call(policy, observation, b);
            for (var round = 0; round < rounds && !cancellationToken.IsCancellationRequested; round++)
                foreach (var (name, policy, observation) in arms)
                    foreach (var b in batches)
                    {
                        var (cpuMs, wallMs) = ForwardSuite.Measure(() => Call(policy, observation, b), TimeSpan.FromSeconds(seconds));
                        ForwardSuite.Add(cpu, (name, b), cpuMs);
                        ForwardSuite.Add(wall, (name, b), wallMs);
                    }
            var key = device.Replace(':', '_');
            foreach (var (name, _, _) in arms)
            {
                foreach (var b in batches)
                {
                    var wallMs = ForwardSuite.Median(wall[(name, b)]);
                    report.Add($"{key}_{name}_batch{b}_wall_ms", wallMs);
                    report.Add($"{key}_{name}_batch{b}_host_cpu_ms", ForwardSuite.Median(cpu[(name, b)]));
                    report.Add($"{key}_{name}_batch{b}_samples_per_s", b * 1000 / wallMs);
                }
                report.Add($"{key}_{name}_batching_gain", 32 * ForwardSuite.Median(wall[(name, 1)]) / ForwardSuite.Median(wall[(name, 32)]));
            }
        }
        finally
        {
            foreach (var (_, policy, _) in arms) policy.Dispose();
        }
    }

    /// <summary>A batch of 32 samples × 2 cameras × 3 × 224 × 224 floats (the released model's image input) to the device.</summary>
    private static void Upload(Report report, string device, int rounds, double seconds, CancellationToken cancellationToken)
    {
        var target = TorchSharp.torch.device(device);
        using var host = rand([32, 2, 3, 224, 224]);
        var (pageable, pinned) = (new List<double>(), new List<double>());
        void Pageable() { using var on = host.to(bfloat16).to(target); cuda.synchronize(); }
        void Pinned() { using var on = HostUpload.ToDevice(host, target, bfloat16); cuda.synchronize(); }
        for (var i = 0; i < 3; i++) { Pageable(); Pinned(); }
        for (var round = 0; round < rounds && !cancellationToken.IsCancellationRequested; round++)
        {
            pageable.Add(ForwardSuite.Measure(Pageable, TimeSpan.FromSeconds(seconds / 2)).WallMs);
            pinned.Add(ForwardSuite.Measure(Pinned, TimeSpan.FromSeconds(seconds / 2)).WallMs);
        }
        var key = device.Replace(':', '_');
        report.Add($"{key}_upload_batch32_pageable_wall_ms", ForwardSuite.Median(pageable));
        report.Add($"{key}_upload_batch32_pinned_wall_ms", ForwardSuite.Median(pinned));
        report.Add($"{key}_upload_pageable_over_pinned", ForwardSuite.Median(pageable) / ForwardSuite.Median(pinned));
    }

    private static void Call(VlaPolicy policy, Observation observation, int batch) =>
        policy.SampleActions([.. Enumerable.Repeat(observation, batch)], [.. Enumerable.Range(0, batch).Select(i => (long)i)]);
}
