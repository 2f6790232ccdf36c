using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using VlaCloud.Policy;

namespace VlaCloud.Inference.Tests;

/// <summary>
/// A failed load is remembered (issue 18, item 6): requests for that checkpoint are refused at once until its retry time
/// instead of each loading it again: for long when the checkpoint itself cannot be served, for a doubling delay when
/// the failure may pass.
/// </summary>
public sealed class LoadFailureTests(TinyCheckpoints checkpoints) : IClassFixture<TinyCheckpoints>, IDisposable
{
    private readonly DirectoryInfo folder = Directory.CreateTempSubdirectory("vlacloud-load-failures-");

    public void Dispose() => folder.Delete(recursive: true);

    private static InferenceEngine Engine(ICheckpointSource source, Action<InferenceOptions>? configure = null)
    {
        var options = new InferenceOptions { Devices = ["cpu"], MaxQueueDelay = TimeSpan.FromMilliseconds(5) };
        configure?.Invoke(options);
        return new InferenceEngine(Options.Create(options), source, NullLoggerFactory.Instance);
    }

    private static Task<InferenceResult> ActAsync(InferenceEngine engine, string checkpoint) =>
        engine.RunAsync(new InferenceRequest(checkpoint, TinyCheckpoints.Observation(0), 1, 2, null, DateTimeOffset.UtcNow.AddMinutes(1)), CancellationToken.None);

    [Fact]
    public void A_dtype_the_device_cannot_run_fails_the_start_rather_than_every_load()
    {
        var error = Assert.Throws<ArgumentException>(() => Engine(new DirectoryCheckpointSource(checkpoints.Root), o => o.DType = "fp16"));
        Assert.Contains("needs a CUDA device", error.Message);
    }

    [Fact]
    public async Task A_checkpoint_that_cannot_be_served_is_refused_from_memory_without_another_load()
    {
        // A consistent checkpoint whose config.json asks for 100000 decoder layers.
        var bad = Path.Combine(folder.FullName, "huge");
        CopyDirectory(Path.Combine(checkpoints.Root, "a"), bad);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(bad, PolicyCheckpoint.ConfigFile)))!.AsObject();
        config["lm_layers"] = 100_000;
        File.WriteAllText(Path.Combine(bad, PolicyCheckpoint.ConfigFile), config.ToJsonString());
        PolicyCheckpoint.WriteManifest(bad);
        using var engine = Engine(new DirectoryCheckpointSource(folder.FullName));

        var first = await Assert.ThrowsAsync<ModelLoadException>(() => ActAsync(engine, "huge"));
        Assert.True(first.Unservable);
        Assert.Equal("config.json: lm_layers must be between 1 and 256, not 100000", first.Reason);
        Assert.Equal(TimeSpan.FromHours(1), first.RetryAfter);

        for (var i = 0; i < 5; i++)
        {
            var again = await Assert.ThrowsAsync<ModelLoadException>(() => ActAsync(engine, "huge"));
            Assert.True(again.Unservable);
            Assert.Equal(first.Reason, again.Reason);
            Assert.InRange(again.RetryAfter, TimeSpan.FromMinutes(59), TimeSpan.FromHours(1));
        }
        var stats = Assert.Single(engine.CacheStats);
        Assert.Equal((1L, 1L, 5L), (stats.Misses, stats.FailedLoads, stats.Refused));
    }

    [Fact]
    public async Task A_model_past_the_devices_memory_budget_is_unservable_and_never_built()
    {
        var parameters = PolicyConfig.Tiny.EstimateParameters().Total;
        using var engine = Engine(new DirectoryCheckpointSource(checkpoints.Root), o => o.ModelMemoryBudgetBytes = parameters * 4 - 1);

        var e = await Assert.ThrowsAsync<ModelLoadException>(() => ActAsync(engine, "a"));
        Assert.True(e.Unservable);
        Assert.Contains($"more than the {parameters * 4 - 1:N0} bytes a device may hold", e.Reason);
        Assert.Equal(0, Assert.Single(engine.CacheStats).Models);
    }

    [Fact]
    public async Task A_failure_that_may_pass_is_retried_after_a_delay_that_doubles_and_forgotten_once_a_load_succeeds()
    {
        // Delays of seconds, so that a machine busy with other work cannot stretch the gap between two requests past them.
        var source = new FlakySource(checkpoints.Root, failures: 2);
        using var engine = Engine(source, o => o.FailedLoadRetryAfter = TimeSpan.FromSeconds(2));

        var first = await Assert.ThrowsAsync<ModelLoadException>(() => ActAsync(engine, "a"));
        Assert.False(first.Unservable);
        Assert.Equal(TimeSpan.FromSeconds(2), first.RetryAfter);
        var refused = await Assert.ThrowsAsync<ModelLoadException>(() => ActAsync(engine, "a"));
        Assert.InRange(refused.RetryAfter, TimeSpan.FromTicks(1), TimeSpan.FromSeconds(2));
        Assert.Equal(1, source.Calls);

        await Task.Delay(TimeSpan.FromSeconds(2.2));
        var second = await Assert.ThrowsAsync<ModelLoadException>(() => ActAsync(engine, "a"));
        Assert.Equal((2, TimeSpan.FromSeconds(4)), (source.Calls, second.RetryAfter));

        await Task.Delay(TimeSpan.FromSeconds(4.2));
        var served = await ActAsync(engine, "a");
        Assert.Equal(TinyCheckpoints.ActionDim, served.Actions.ActionDim);
        Assert.Equal(3, source.Calls);
        var stats = Assert.Single(engine.CacheStats);
        Assert.Equal((2L, 1L, 1L), (stats.FailedLoads, stats.Refused, stats.Loads));
    }

    /// <summary>A source whose first loads fail as an unreachable artifact store would.</summary>
    private sealed class FlakySource(string root, int failures) : ICheckpointSource
    {
        private int calls;

        public int Calls => Volatile.Read(ref calls);

        public Task<string> GetDirectoryAsync(string checkpoint, CancellationToken cancellationToken) =>
            Interlocked.Increment(ref calls) <= failures
                ? throw new ModelLoadException(checkpoint, "the artifact store did not answer", new IOException("connection refused"))
                : Task.FromResult(Path.Combine(root, checkpoint));
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
    }
}
