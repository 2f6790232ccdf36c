using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using VlaCloud.Api.Hosting;
using VlaCloud.Registry;

namespace VlaCloud.Api.Idempotency;

/// <summary>Marks an endpoint whose POST body is a stream that must not be buffered for idempotency.</summary>
public sealed class SkipIdempotencyAttribute : Attribute;

/// <summary>
/// What a retry with the same <c>Idempotency-Key</c> gets instead of the response, when the response carries a secret
/// that must not be stored (a new API key): the handler sets it on the request's features.
/// </summary>
/// <param name="Status">The replay's status.</param>
/// <param name="Problem">The replay's problem details (written as <c>application/problem+json</c>).</param>
public sealed record IdempotentReplay(int Status, object Problem);

/// <summary>
/// <c>Idempotency-Key</c> on POSTs, with Stripe's rules: at most 255 characters; the first response (status,
/// content type, body) is stored per tenant and key and replayed for a retry; the same key with another
/// method, path or body is a 422 problem; a retry while the first is still running is a 409 problem; keys
/// are kept for <see cref="VlaCloudOptions.IdempotencyKeyLifetime"/> (24 h by default). Server errors are
/// not stored, so a retry after a 5xx runs again.
/// </summary>
/// <remarks>
/// The "running" marker lives <see cref="VlaCloudOptions.IdempotencyPendingLease"/> (30 s) and is renewed while the
/// request runs, so a process that dies mid-request blocks retries for the lease, not for a day. A response with a
/// secret is never stored: its handler says what a replay answers instead (<see cref="IdempotentReplay"/>). Without
/// Redis the key cannot be honoured, so such a request is refused with 503 before it runs; if Redis goes away while it
/// runs, the client still gets its response.
/// </remarks>
internal sealed class IdempotencyMiddleware(
    RequestDelegate next, IConnectionMultiplexer redis, RedisKeyspace keyspace, IOptions<VlaCloudOptions> options, ILogger<IdempotencyMiddleware> logger)
{
    public const string HeaderName = "Idempotency-Key";
    public const string ReplayedHeader = "Idempotent-Replayed";
    private const int MaxKeyLength = 255;
    private const int MaxStoredBody = 1 << 20;

    // KEYS: the stored key. ARGV: the value this request wrote, lease ms. Renews only this request's own marker.
    private const string RenewScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
        return 0
        """;

    // KEYS: the stored key. ARGV: the value this request wrote. Drops only this request's own marker.
    private const string ReleaseScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """;

    public async Task InvokeAsync(HttpContext context)
    {
        if (!HttpMethods.IsPost(context.Request.Method) || !context.Request.Headers.TryGetValue(HeaderName, out var values) ||
            context.GetEndpoint()?.Metadata.GetMetadata<SkipIdempotencyAttribute>() is not null ||
            Namespace(context) is not { } owner)
        {
            await next(context);
            return;
        }

        var key = values.ToString();
        if (key.Length is 0 or > MaxKeyLength)
        {
            await Results.Problem(statusCode: 400, title: "Invalid Idempotency-Key",
                detail: $"{HeaderName} must be 1 to {MaxKeyLength} characters.").ExecuteAsync(context);
            return;
        }

        context.Request.EnableBuffering();
        var fingerprint = await FingerprintAsync(context.Request);
        context.Request.Body.Position = 0;
        var storeKey = StoreKey(keyspace, owner, key);
        var db = redis.GetDatabase();
        var settings = options.Value;

        var pending = PendingMarker(fingerprint);
        if (!await db.StringSetAsync(storeKey, pending, settings.IdempotencyPendingLease, When.NotExists))
        {
            await AnswerRetryAsync(context, db, storeKey, fingerprint);
            return;
        }

        var original = context.Response.Body;
        using var capture = new MemoryStream();
        context.Response.Body = capture;
        var completed = false;
        using var running = new CancellationTokenSource();
        var renewing = RenewWhileRunningAsync(db, storeKey, pending, settings.IdempotencyPendingLease, running.Token);
        try
        {
            await next(context);
            completed = true;
        }
        finally
        {
            await running.CancelAsync();
            await renewing;
            context.Response.Body = original;
            await StoreAsync(context, db, storeKey, pending, fingerprint, capture, completed, settings.IdempotencyKeyLifetime);
            capture.Position = 0;
            await capture.CopyToAsync(original);
        }
    }

    /// <summary>Where the request with <paramref name="idempotencyKey"/> of <paramref name="owner"/> (a tenant id, or <c>platform</c>) is kept.</summary>
    internal static RedisKey StoreKey(RedisKeyspace keyspace, string owner, string idempotencyKey) =>
        keyspace.Key($"idem:{owner}:{Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(idempotencyKey)))}");

    /// <summary>
    /// The "running" marker of a request with <paramref name="fingerprint"/>. It carries a random token, so renewing and
    /// releasing touch this request's marker only.
    /// </summary>
    internal static string PendingMarker(string fingerprint) =>
        JsonSerializer.Serialize(new StoredResponse(fingerprint, 0, null, null, Convert.ToHexString(RandomNumberGenerator.GetBytes(8))));

    /// <summary>A request's fingerprint so far: its method, path and query; the body is appended to it.</summary>
    internal static IncrementalHash StartFingerprint(string method, string pathAndQuery)
    {
        var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(System.Text.Encoding.UTF8.GetBytes($"{method} {pathAndQuery}\n"));
        return hash;
    }

    /// <summary>The tenant the key is scoped to, or the platform for an administrator's key; null for an anonymous request.</summary>
    private static string? Namespace(HttpContext context) =>
        context.User.FindFirst(Auth.ApiKeyAuthenticationHandler.TenantIdClaim)?.Value
        ?? (context.User.HasClaim(c => c.Type == Auth.ApiKeyAuthenticationHandler.KeyIdClaim) ? "platform" : null);

    private static async Task AnswerRetryAsync(HttpContext context, IDatabase db, RedisKey storeKey, string fingerprint)
    {
        var stored = await db.StringGetAsync(storeKey);
        var previous = stored.HasValue ? JsonSerializer.Deserialize<StoredResponse>(stored.ToString()) : null;
        if (previous is null)
        {
            await Results.Problem(statusCode: 409, title: "Idempotency key expired meanwhile", detail: "Retry the request.").ExecuteAsync(context);
        }
        else if (previous.Fingerprint != fingerprint)
        {
            await Results.Problem(statusCode: 422, title: "Idempotency key reused", type: ProblemTypes.IdempotencyKeyReused,
                detail: $"This {HeaderName} was used for a different request (method, path or body). Use a new key.").ExecuteAsync(context);
        }
        else if (previous.Status == 0)
        {
            await Results.Problem(statusCode: 409, title: "Request in progress", type: ProblemTypes.IdempotencyInProgress,
                detail: $"A request with this {HeaderName} is still running; retry when it has finished.").ExecuteAsync(context);
        }
        else
        {
            context.Response.StatusCode = previous.Status;
            if (previous.ContentType is not null) context.Response.ContentType = previous.ContentType;
            context.Response.Headers[ReplayedHeader] = "true";
            if (previous.Body is { Length: > 0 } body) await context.Response.Body.WriteAsync(body, context.RequestAborted);
        }
    }

    private async Task RenewWhileRunningAsync(IDatabase db, RedisKey storeKey, string pending, TimeSpan lease, CancellationToken running)
    {
        var interval = lease / 3;
        try
        {
            while (true)
            {
                await Task.Delay(interval, running);
                try
                {
                    await db.ScriptEvaluateAsync(RenewScript, [storeKey], [pending, (long)lease.TotalMilliseconds]);
                }
                catch (Exception e) when (DependencyFailure.IsUnavailable(e))
                {
                    logger.LogWarning("Could not renew an idempotency marker: {Reason}", e.Message);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The request is done.
        }
    }

    private async Task StoreAsync(
        HttpContext context, IDatabase db, RedisKey storeKey, string pending, string fingerprint, MemoryStream capture, bool completed, TimeSpan lifetime)
    {
        var status = context.Response.StatusCode;
        try
        {
            if (completed && status < 500 && status != StatusCodes.Status429TooManyRequests && capture.Length <= MaxStoredBody)
            {
                var replay = context.Features.Get<IdempotentReplay>() is { } instead
                    ? new StoredResponse(fingerprint, instead.Status, "application/problem+json", JsonSerializer.SerializeToUtf8Bytes(instead.Problem), null)
                    : new StoredResponse(fingerprint, status, context.Response.ContentType, capture.ToArray(), null);
                await db.StringSetAsync(storeKey, JsonSerializer.Serialize(replay), lifetime);
            }
            else
            {
                await db.ScriptEvaluateAsync(ReleaseScript, [storeKey], [pending]);
            }
        }
        catch (Exception e) when (DependencyFailure.IsUnavailable(e))
        {
            // The request ran; its client gets the answer. A retry within the lease gets 409, after it runs again.
            logger.LogWarning("Could not store the response for an idempotency key: {Reason}", e.Message);
        }
    }

    private static async Task<string> FingerprintAsync(HttpRequest request)
    {
        using var hash = StartFingerprint(request.Method, $"{request.Path}{request.QueryString}");
        var buffer = new byte[81920];
        int read;
        while ((read = await request.Body.ReadAsync(buffer, request.HttpContext.RequestAborted)) > 0) hash.AppendData(buffer, 0, read);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private sealed record StoredResponse(string Fingerprint, int Status, string? ContentType, byte[]? Body, string? Token);
}
