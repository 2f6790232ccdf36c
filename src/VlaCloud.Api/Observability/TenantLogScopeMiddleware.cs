using System.Collections;
using System.Diagnostics;
using VlaCloud.Api.Auth;
using VlaCloud.Telemetry;

namespace VlaCloud.Api.Observability;

/// <summary>
/// After authentication: every log line of the rest of the request carries the caller's <c>tenant_id</c> and
/// <c>key_id</c> (next to the request id and trace id ASP.NET Core already puts in scope), and the request's
/// span is tagged with the tenant, so one tenant's trouble can be found in logs and traces.
/// </summary>
internal sealed class TenantLogScopeMiddleware(RequestDelegate next, ILogger<TenantLogScopeMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var tenantId = context.User.FindFirst(ApiKeyAuthenticationHandler.TenantIdClaim)?.Value;
        if (tenantId is null)
        {
            await next(context);
            return;
        }

        var keyId = context.User.FindFirst(ApiKeyAuthenticationHandler.KeyIdClaim)?.Value;
        Activity.Current?.SetTag(VlaCloudTelemetry.Tags.TenantId, tenantId);
        using (logger.BeginScope(new TenantScope(tenantId, keyId)))
            await next(context);
    }

    /// <summary>A scope the JSON formatter writes as two properties and the simple formatter as one short text.</summary>
    private sealed class TenantScope(string tenantId, string? keyId) : IReadOnlyList<KeyValuePair<string, object?>>
    {
        public const string TenantIdKey = "tenant_id";
        public const string KeyIdKey = "key_id";

        public int Count => 2;

        public KeyValuePair<string, object?> this[int index] => index switch
        {
            0 => new(TenantIdKey, tenantId),
            1 => new(KeyIdKey, keyId),
            _ => throw new ArgumentOutOfRangeException(nameof(index)),
        };

        public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
        {
            yield return this[0];
            yield return this[1];
        }

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

        public override string ToString() => $"{TenantIdKey}:{tenantId} {KeyIdKey}:{keyId}";
    }
}
