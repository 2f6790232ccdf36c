using Microsoft.Extensions.Options;
using VlaCloud.Registry;
using VlaCloud.Api.Limits;

namespace VlaCloud.Api.Auth;

/// <summary>
/// The tenant and key of the request being served (scoped per request). It is the registry's
/// <see cref="ITenantAccessor"/>, so every query in the request is filtered to this tenant.
/// </summary>
public sealed class CurrentTenant(IHttpContextAccessor accessor, IOptions<LimitsOptions> limits) : ITenantAccessor
{
    private Guid? overrideTenantId;

    /// <summary>The caller's tenant, or null for an anonymous request.</summary>
    public Guid? TenantId => overrideTenantId ?? Claim(ApiKeyAuthenticationHandler.TenantIdClaim);

    /// <summary>The API key that authenticated the request, or null.</summary>
    public Guid? KeyId => Claim(ApiKeyAuthenticationHandler.KeyIdClaim);

    /// <summary>The authenticated key's identity, or null for an anonymous request.</summary>
    public ApiKeyIdentity? Identity => accessor.HttpContext?.Features.Get<ApiKeyIdentity>();

    /// <summary>The limits in force for the caller's tenant.</summary>
    public TenantLimits Limits => limits.Value.For(Identity?.Limits ?? TenantLimitOverrides.None);

    /// <summary>
    /// Acts for <paramref name="tenantId"/> in a scope that has no request (a background job). Not for request
    /// code: a request's tenant comes from its key only.
    /// </summary>
    public void ActFor(Guid tenantId) => overrideTenantId = tenantId;

    private Guid? Claim(string type) =>
        accessor.HttpContext?.User.FindFirst(type)?.Value is { } value && Guid.TryParse(value, out var id) ? id : null;
}
