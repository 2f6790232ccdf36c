using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using VlaCloud.Api.Auth;
using VlaCloud.Api.RateLimiting;
using VlaCloud.Registry;

namespace VlaCloud.Api.Apis;

/// <summary><c>/v1/api-keys</c>: the caller's tenant's API keys, never their secrets (creating and revoking is the platform administrator's).</summary>
public static class ApiKeysApi
{
    /// <summary>Maps the group.</summary>
    public static IEndpointRouteBuilder MapApiKeysApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/api-keys").WithTags("API keys").RequireTenantRateLimit().RequireAuthorization(ScopePolicies.Tenant);
        group.MapGet("", ListAsync).WithName("ListOwnApiKeys")
            .WithSummary("Lists the caller's tenant's API keys, newest first: name, prefix, scopes, expiry and revocation (never the secrets).");
        return app;
    }

    /// <remarks>
    /// Every key of the caller's own tenant (at most 1000, in one page: <c>has_more</c> is false), newest first, whatever
    /// the calling key's scopes. Secrets are never returned: a key is recognised by its prefix (<c>vlc_&lt;prefix&gt;_…</c>).
    /// Keys are created and revoked by a platform administrator (<c>/v1/admin/tenants/{id}/api-keys</c>).
    /// </remarks>
    private static async Task<Ok<ListPage<ApiKeyResponse>>> ListAsync(RegistryDbContext db, CurrentTenant tenant, CancellationToken cancellationToken)
    {
        var owner = tenant.TenantId!.Value;
        // Explicitly the caller's tenant: key rows are read by authentication outside any tenant, so this does not lean on the filter alone.
        var rows = await db.ApiKeys.AsNoTracking().Where(k => k.TenantId == owner).OrderByDescending(k => k.Id).Take(1000).ToListAsync(cancellationToken);
        return TypedResults.Ok(ApiResults.Page(rows, int.MaxValue, k => k.Id, ApiKeyResponse.From));
    }
}
