namespace VlaCloud.Api.Auth;

/// <summary>The tenant and key of the request being served (scoped per request).</summary>
public sealed class CurrentTenant(IHttpContextAccessor accessor)
{
    /// <summary>The caller's tenant, or null for an anonymous request.</summary>
    public Guid? TenantId => Claim(ApiKeyAuthenticationHandler.TenantIdClaim);

    /// <summary>The API key that authenticated the request, or null.</summary>
    public Guid? KeyId => Claim(ApiKeyAuthenticationHandler.KeyIdClaim);

    private Guid? Claim(string type) =>
        accessor.HttpContext?.User.FindFirst(type)?.Value is { } value && Guid.TryParse(value, out var id) ? id : null;
}
