using Microsoft.AspNetCore.Authorization;
using VlaCloud.Registry;

namespace VlaCloud.Api.Auth;

/// <summary>
/// One authorization policy per API scope, named after the scope, plus <see cref="Tenant"/>. The tenant scopes need a
/// tenant's key; <see cref="ApiScopes.Admin"/> needs a platform administrator's key, which belongs to no tenant, so the
/// two roles never meet in one key.
/// </summary>
internal static class ScopePolicies
{
    /// <summary>Any key of a tenant, whatever its scopes (routes about the caller's own tenant).</summary>
    public const string Tenant = "tenant";

    public static void AddScopePolicies(this AuthorizationOptions options)
    {
        foreach (var scope in ApiScopes.Tenant)
            options.AddPolicy(scope, policy => policy.RequireTenantKey().RequireClaim(ApiKeyAuthenticationHandler.ScopeClaim, scope));
        options.AddPolicy(ApiScopes.Admin, policy => policy
            .AddAuthenticationSchemes(ApiKeyAuthenticationHandler.SchemeName)
            .RequireAuthenticatedUser()
            .RequireClaim(ApiKeyAuthenticationHandler.ScopeClaim, ApiScopes.Admin)
            .RequireAssertion(context => !context.User.HasClaim(c => c.Type == ApiKeyAuthenticationHandler.TenantIdClaim)));
        options.AddPolicy(Tenant, policy => policy.RequireTenantKey());
    }

    private static AuthorizationPolicyBuilder RequireTenantKey(this AuthorizationPolicyBuilder policy) => policy
        .AddAuthenticationSchemes(ApiKeyAuthenticationHandler.SchemeName)
        .RequireAuthenticatedUser()
        .RequireClaim(ApiKeyAuthenticationHandler.TenantIdClaim);
}
