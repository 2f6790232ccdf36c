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
/// <c>Idempotency-Key</c> on POSTs, with Stripe's rules: at most 255 characters; the first response (status,
/// content type, body) is stored per tenant and key and replayed for a retry; the same key with another
/// method, path or body is a 422 problem; a retry while the first is still running is a 409 problem; keys
/// are kept for <see cref="VlaCloudOptions.IdempotencyKeyLifetime"/> (24 h by default). Server errors are
/// not stored, so a retry after a 5xx runs again.
/// </summary>
internal sealed class IdempotencyMiddleware(
    RequestDelegate next, IConnectionMultiplexer redis, RedisKeyspace keyspace, IOptions<VlaCloudOptions> options)
{
    public const string HeaderName = "Idempotency-Key";
    public const string ReplayedHeader = "Idempotent-Replayed";
    private const int MaxKeyLength = 255;
    private const int MaxStoredBody = 1 << 20;

    public async Task InvokeAsync(HttpContext context)
    {
        if (!HttpMethods.IsPost(context.Request.Method) || !context.Request.Headers.TryGetValue(HeaderName, out var values) ||
            context.GetEndpoint()?.Metadata.GetMetadata<SkipIdempotencyAttribute>() is not null ||
            context.User.FindFirst(Auth.ApiKeyAuthenticationHandler.TenantIdClaim)?.Value is not { } tenant)
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
        var storeKey = keyspace.Key($"idem:{tenant}:{Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(key)))}");
        var db = redis.GetDatabase();
        var lifetime = options.Value.IdempotencyKeyLifetime;

        var pending = JsonSerializer.Serialize(new StoredResponse(fingerprint, 0, null, null));
        if (!await db.StringSetAsync(storeKey, pending, lifetime, When.NotExists))
        {
            var stored = await db.StringGetAsync(storeKey);
            var previous = stored.HasValue ? JsonSerializer.Deserialize<StoredResponse>(stored.ToString()) : null;
            if (previous is null)
            {
                await Results.Problem(statusCode: 409, title: "Idempotency key expired meanwhile", detail: "Retry the request.").ExecuteAsync(context);
            }
            else if (previous.Fingerprint != fingerprint)
            {
                await Results.Problem(statusCode: 422, title: "Idempotency key reused",
                    detail: $"This {HeaderName} was used for a different request (method, path or body). Use a new key.").ExecuteAsync(context);
            }
            else if (previous.Status == 0)
            {
                await Results.Problem(statusCode: 409, title: "Request in progress",
                    detail: $"A request with this {HeaderName} is still running; retry when it has finished.").ExecuteAsync(context);
            }
            else
            {
                context.Response.StatusCode = previous.Status;
                if (previous.ContentType is not null) context.Response.ContentType = previous.ContentType;
                context.Response.Headers[ReplayedHeader] = "true";
                if (previous.Body is { Length: > 0 } body) await context.Response.Body.WriteAsync(body, context.RequestAborted);
            }
            return;
        }

        var original = context.Response.Body;
        using var capture = new MemoryStream();
        context.Response.Body = capture;
        var completed = false;
        try
        {
            await next(context);
            completed = true;
        }
        finally
        {
            context.Response.Body = original;
            var status = context.Response.StatusCode;
            if (completed && status < 500 && status != StatusCodes.Status429TooManyRequests && capture.Length <= MaxStoredBody)
            {
                var stored = new StoredResponse(fingerprint, status, context.Response.ContentType, capture.ToArray());
                await db.StringSetAsync(storeKey, JsonSerializer.Serialize(stored), lifetime);
            }
            else
            {
                await db.KeyDeleteAsync(storeKey);
            }
            capture.Position = 0;
            await capture.CopyToAsync(original);
        }
    }

    private static async Task<string> FingerprintAsync(HttpRequest request)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(System.Text.Encoding.UTF8.GetBytes($"{request.Method} {request.Path}{request.QueryString}\n"));
        var buffer = new byte[81920];
        int read;
        while ((read = await request.Body.ReadAsync(buffer, request.HttpContext.RequestAborted)) > 0) hash.AppendData(buffer, 0, read);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private sealed record StoredResponse(string Fingerprint, int Status, string? ContentType, byte[]? Body);
}
