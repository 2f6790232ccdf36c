using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using VlaCloud.Actions;
using VlaCloud.Api.Auth;
using VlaCloud.Contracts;
using VlaCloud.Inference;
using VlaCloud.Policy;
using VlaCloud.Registry;
using VlaCloud.Registry.Checkpoints;
using VlaCloud.Registry.Entities;
using VlaCloud.Api.Limits;
using VlaCloud.Api.Usage;
using Microsoft.Extensions.Options;
using VlaCloud.Api.Hosting;

namespace VlaCloud.Api.Acting;

/// <summary>A checkpoint resolved for a caller, with what inference needs to know about it.</summary>
/// <param name="Checkpoint">The registry row.</param>
/// <param name="Embodiment">Its embodiment.</param>
/// <param name="NormalizationKey">Which of the checkpoint's normalisation statistics serve this embodiment.</param>
public sealed record BoundCheckpoint(Checkpoint Checkpoint, Embodiment Embodiment, string NormalizationKey)
{
    /// <summary>The wire description of the checkpoint.</summary>
    public ResolvedCheckpoint Describe() => new(Checkpoint.Id, Checkpoint.ModelName, Checkpoint.Version, Embodiment.Name);
}

/// <summary>How an action request ended, for each surface to answer in its own way.</summary>
public abstract record ActOutcome
{
    private ActOutcome() { }

    /// <summary>
    /// Actions computed: the chunk as the engine returned it, and the rest of the answer in its wire types. Each surface
    /// maps the chunk to its own wire shape (<see cref="ToResponse"/> for JSON, <see cref="ActionChunkWire.ToNumpy"/> for
    /// openpi); a stream's broker takes the chunk itself.
    /// </summary>
    /// <param name="Checkpoint">The checkpoint that computed it.</param>
    /// <param name="Actions">The action chunk in the embodiment's units.</param>
    /// <param name="Spatial">The spatial answer, when one was asked for.</param>
    /// <param name="Seed">The seed of the noise.</param>
    /// <param name="Timing">Queue, compute and total time, and the batch size.</param>
    /// <param name="Guide">The points a point-guided checkpoint's actions were conditioned on.</param>
    public sealed record Success(ResolvedCheckpoint Checkpoint, ActionChunk Actions, SpatialOutput? Spatial, long Seed, ActTiming Timing, GuideOutput? Guide) : ActOutcome
    {
        /// <summary>The REST answer (<c>/v1/act</c>): the chunk's rows become the JSON's <c>float[][]</c>.</summary>
        public ActResponse ToResponse() => new(Checkpoint, ActionChunkWire.ToRows(Actions), Spatial, Seed, Timing, Guide);
    }

    /// <summary>The input does not fit the checkpoint's embodiment (400).</summary>
    public sealed record Invalid(Dictionary<string, string[]> Errors) : ActOutcome;

    /// <summary>The queue is full (503 + Retry-After, or a <c>busy</c> stream message).</summary>
    public sealed record Busy(TimeSpan RetryAfter) : ActOutcome;

    /// <summary>
    /// The tenant holds more than its share of the inference queue (429 <c>inference_share_exceeded</c> + Retry-After): only
    /// this tenant waits, other tenants are served.
    /// </summary>
    public sealed record ShareExceeded(string Detail, TimeSpan RetryAfter) : ActOutcome;

    /// <summary>A stream message over the tenant's or key's request rate (429 + Retry-After; REST requests are refused by the filter).</summary>
    public sealed record RateLimited(LimitDecision Decision) : ActOutcome;

    /// <summary>The deadline passed before compute (504).</summary>
    public sealed record DeadlineExceeded(string Detail) : ActOutcome;

    /// <summary>The tenant's monthly compute quota is used up (429).</summary>
    public sealed record QuotaExceeded(LimitDecision Decision) : ActOutcome;

    /// <summary>
    /// The request cannot be served now, for a reason that may pass (503 + Retry-After): the checkpoint's artifact is
    /// missing, or a dependency the quota check needs does not answer.
    /// </summary>
    public sealed record Unavailable(string Detail, TimeSpan RetryAfter) : ActOutcome;

    /// <summary>The checkpoint can never be served: its artifact is corrupt, not a policy, or too large for a device (422).</summary>
    public sealed record Unservable(string Detail) : ActOutcome;
}

/// <summary>
/// The one path from an observation to actions, shared by REST, the WebSocket streams and the openpi
/// endpoint: resolve the checkpoint for the caller's tenant, validate, check the compute quota, run it
/// through the batching engine, meter it.
/// </summary>
public sealed class ActionService(
    IServiceProvider services,
    InferenceEngine engine,
    IUsageMeter usage,
    UsageBuffer buffer,
    CurrentTenant tenant,
    IOptions<InferenceOptions> options,
    IOptions<VlaCloudOptions> dependencyRetryAfter,
    RequestRateLimiter limiter,
    IOptions<LimitsOptions> limitsOptions,
    ResolutionCache resolutions,
    ComputeCounterPrefetch prefetched)
{
    /// <summary>
    /// Takes one token of the caller's tenant and key rate limits for a stream message (an observation over a WebSocket
    /// costs what a REST request costs). Null when allowed; otherwise the refusal to send. As for REST, Redis being away
    /// refuses (503) unless <see cref="LimitsOptions.RateLimitFailOpen"/>. The same Redis call reads the tenant's compute counter for
    /// the next <see cref="ActAsync"/>'s quota check.
    /// </summary>
    public async Task<ActOutcome?> TakeStreamTokenAsync()
    {
        if (tenant.Identity is not { } identity) return null;
        try
        {
            if (identity.TenantId is not { } tenantId)
            {
                var platform = await limiter.TryAcquireAsync(Guid.Empty, identity.KeyId, tenant.Limits);
                return platform.Allowed ? null : new ActOutcome.RateLimited(platform);
            }
            var probe = usage.ComputeCounter(tenantId);
            var (decision, counter) = await limiter.TryAcquireAsync(tenantId, identity.KeyId, tenant.Limits, probe.Key);
            if (!decision.Allowed) return new ActOutcome.RateLimited(decision);
            prefetched.Set(new ComputeCounterRead(probe, counter));
            return null;
        }
        catch (Exception e) when (DependencyFailure.Of(e) is { } dependency)
        {
            return limitsOptions.Value.RateLimitFailOpen
                ? null
                : new ActOutcome.Unavailable($"The rate limit cannot be checked: {dependency} does not answer; retry later.", dependencyRetryAfter.Value.DependencyRetryAfter);
        }
    }

    /// <summary>Resolves <paramref name="reference"/> for the caller (from memory when it was resolved before; see <see cref="ResolutionCache"/>).</summary>
    /// <exception cref="RegistryException">Not a reference, or no such checkpoint visible to the caller.</exception>
    public Task<BoundCheckpoint> ResolveAsync(string reference, string? embodiment, CancellationToken cancellationToken) =>
        resolutions.GetOrResolveAsync(tenant.TenantId, reference, embodiment, () => ResolveFromRegistryAsync(reference, embodiment, cancellationToken));

    private async Task<BoundCheckpoint> ResolveFromRegistryAsync(string reference, string? embodiment, CancellationToken cancellationToken)
    {
        // Taken from the request's scope only here: the resolution cache answers most requests, and a registry (with
        // its DbContext) made for every request that never queries cost a measurable share of a request's CPU.
        var registry = services.GetRequiredService<CheckpointRegistry>();
        var checkpoint = await registry.ResolveAsync(reference, embodiment, cancellationToken);
        var target = checkpoint.Embodiment ?? await registry.FindEmbodimentAsync(checkpoint.EmbodimentId.ToString(), cancellationToken)
                     ?? throw new InvalidOperationException($"Checkpoint {checkpoint.Id} has no embodiment.");
        using var stats = JsonDocument.Parse(checkpoint.NormalizationStats);
        var keys = stats.RootElement.ValueKind == JsonValueKind.Object ? stats.RootElement.EnumerateObject().Select(p => p.Name).ToList() : [];
        var key = keys.Contains(target.Name) ? target.Name : keys.Count == 1 ? keys[0] : target.Name;
        return new BoundCheckpoint(checkpoint, target, key);
    }

    /// <summary>
    /// Computes one action chunk. <paramref name="session"/> names the connection a streaming route serves (null for REST):
    /// its last prefix is reused while the observation is unchanged (<see cref="InferenceOptions.SessionPrefixes"/>). It is
    /// scoped to the caller's tenant here, so two tenants' sessions never share an entry.
    /// </summary>
    public async Task<ActOutcome> ActAsync(BoundCheckpoint bound, ObservationInput? input, ActOptions? actOptions, CancellationToken cancellationToken, string? session = null)
    {
        var started = Stopwatch.GetTimestamp();
        // Taken first, so a value read for this computation never serves a later one.
        var counter = tenant.TenantId is { } caller ? prefetched.Take(caller) : null;
        var errors = new Dictionary<string, string[]>();
        var spatial = ObservationBinder.BindOptions(actOptions, errors);
        var observation = ObservationBinder.Bind(input, bound.Embodiment, bound.NormalizationKey, errors, actOptions?.Resize);
        if (observation is null || errors.Count > 0) return new ActOutcome.Invalid(errors);

        var tenantId = tenant.TenantId ?? throw new InvalidOperationException("Acting needs a tenant's key.");
        LimitDecision quota;
        try
        {
            // Read by the rate limiter's script when it ran for this computation (one Redis round trip), else read now.
            quota = counter is not null
                ? await usage.CheckComputeQuotaAsync(counter, tenant.Limits, cancellationToken)
                : await usage.CheckComputeQuotaAsync(tenantId, tenant.Limits, cancellationToken);
        }
        catch (Exception e) when (DependencyFailure.Of(e) is { } dependency)
        {
            // The quota fails closed: compute that cannot be counted against it is not given.
            return new ActOutcome.Unavailable($"The compute quota cannot be checked: {dependency} does not answer; retry later.", dependencyRetryAfter.Value.DependencyRetryAfter);
        }
        if (!quota.Allowed) return new ActOutcome.QuotaExceeded(quota);

        var seed = actOptions?.Seed ?? RandomNumberGenerator.GetInt32(int.MaxValue);
        var timeout = actOptions?.TimeoutMs is { } ms ? TimeSpan.FromMilliseconds(ms) : options.Value.DefaultTimeout;
        var request = new InferenceRequest(bound.Checkpoint.Id.ToString(), observation, seed, actOptions?.Steps, spatial, DateTimeOffset.UtcNow + timeout,
            actOptions?.CfgScale,
            Tenant: tenantId.ToString("N"), Weight: tenant.Limits.InferenceWeight, Session: session is null ? null : $"{tenantId:N}/{session}");
        InferenceResult result;
        try
        {
            result = await engine.RunAsync(request, cancellationToken);
        }
        catch (EngineBusyException busy)
        {
            return new ActOutcome.Busy(busy.RetryAfter);
        }
        catch (TenantShareExceededException share)
        {
            return new ActOutcome.ShareExceeded(share.Message, share.RetryAfter);
        }
        catch (DeadlineExceededException e)
        {
            return new ActOutcome.DeadlineExceeded(e.Message);
        }
        catch (ModelLoadException e)
        {
            return e.Unservable ? new ActOutcome.Unservable(e.Message) : new ActOutcome.Unavailable(e.Message, e.RetryAfter);
        }

        buffer.Add(new UsageRecord(tenantId, bound.Checkpoint.Id, 1, result.Actions.Horizon, (long)Math.Ceiling(result.ComputeTime.TotalMilliseconds / result.BatchSize)));
        // The chunk goes on as it is; only the surface that answers maps it to its wire shape (one copy, or none for a broker).
        return new ActOutcome.Success(
            bound.Describe(),
            result.Actions,
            result.Spatial is { } answer ? new SpatialOutput(SpatialPrompts.WireName(answer.Kind), answer.Points().Select(p => new[] { p.X, p.Y }).ToArray(), answer.Text) : null,
            seed,
            new ActTiming(result.QueueTime.TotalMilliseconds, result.ComputeTime.TotalMilliseconds, Stopwatch.GetElapsedTime(started).TotalMilliseconds, result.BatchSize),
            result.Guide is { } guide ? new GuideOutput(guide.Target, guide.Destination) : null);
    }
}
