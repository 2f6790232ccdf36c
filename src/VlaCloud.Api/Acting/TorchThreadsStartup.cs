using Microsoft.Extensions.Options;
using VlaCloud.Inference;

namespace VlaCloud.Api.Acting;

/// <summary>
/// Applies <see cref="InferenceOptions.TorchThreads"/> in <see cref="StartingAsync"/>, which runs before every hosted
/// service's start (the job server's training included) and before the server takes requests, so no model is built
/// and no worker computes yet when the process-wide thread count is set.
/// </summary>
public sealed class TorchThreadsStartup(IOptions<InferenceOptions> options, ILogger<TorchThreadsStartup> logger) : IHostedLifecycleService
{
    /// <inheritdoc/>
    public Task StartingAsync(CancellationToken cancellationToken)
    {
        var configured = options.Value.TorchThreads;
        var threads = TorchThreads.Apply(configured);
        logger.LogInformation("libtorch runs {Threads} intra-op threads ({Source})", threads, configured is null ? "libtorch's default" : InferenceOptions.Section + ":TorchThreads");
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    /// <inheritdoc/>
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    /// <inheritdoc/>
    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    /// <inheritdoc/>
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    /// <inheritdoc/>
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
