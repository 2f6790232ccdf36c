using Microsoft.AspNetCore.Authorization;
using VlaCloud.Registry;

namespace VlaCloud.Api.Auth;

/// <summary>One authorization policy per API scope, named after the scope.</summary>
internal static class ScopePolicies
{
    public static void AddScopePolicies(this AuthorizationOptions options)
    {
        foreach (var scope in ApiScopes.All)
        {
            options.AddPolicy(scope, policy => policy
                .AddAuthenticationSchemes(ApiKeyAuthenticationHandler.SchemeName)
                .RequireAuthenticatedUser()
                .RequireClaim(ApiKeyAuthenticationHandler.ScopeClaim, scope));
        }
    }
}
