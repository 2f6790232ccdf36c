using System.Net.Http.Headers;
using System.Security.Claims;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using VlaCloud.Registry;
using VlaCloud.Registry.Keys;

namespace VlaCloud.Api.Auth;

/// <summary>
/// Authenticates a request by its API key. The key may come as <c>Authorization: Bearer</c>,
/// as <c>Authorization: Api-Key</c> or an <c>Api-Key</c> header (what openpi clients send), or as the
/// password of HTTP Basic (so a browser can open the job dashboard).
/// </summary>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiKeyCache keys)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    public const string TenantIdClaim = "tenant_id";
    public const string KeyIdClaim = "key_id";
    public const string ScopeClaim = "scope";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var presented = ReadPresentedKey(Request);
        if (presented is null) return AuthenticateResult.NoResult();

        var key = await keys.FindActiveAsync(presented, Context.RequestAborted);
        if (key is null) return AuthenticateResult.Fail("The API key is unknown, expired or revoked.");
        Context.Features.Set(key);

        var claims = new List<Claim>
        {
            new(TenantIdClaim, key.TenantId.ToString()),
            new(KeyIdClaim, key.KeyId.ToString()),
        };
        claims.AddRange(key.Scopes.Select(scope => new Claim(ScopeClaim, scope)));
        var identity = new ClaimsIdentity(claims, SchemeName, KeyIdClaim, null);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = Request.Path.StartsWithSegments(HangfireSetup.DashboardPath)
            ? "Basic realm=\"VlaCloud jobs\", charset=\"UTF-8\""
            : "Bearer";
        await Results.Problem(
                statusCode: StatusCodes.Status401Unauthorized,
                title: "Unauthorized",
                detail: "Send a valid API key as 'Authorization: Bearer <key>'.")
            .ExecuteAsync(Context);
    }

    protected override async Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        await Results.Problem(
                statusCode: StatusCodes.Status403Forbidden,
                title: "Forbidden",
                detail: "The API key lacks the scope this operation needs.")
            .ExecuteAsync(Context);

    /// <summary>The key string the client presented, or null when it sent none.</summary>
    internal static string? ReadPresentedKey(HttpRequest request)
    {
        if (AuthenticationHeaderValue.TryParse(request.Headers.Authorization, out var header) && header.Parameter is { Length: > 0 } value)
        {
            if (header.Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase) ||
                header.Scheme.Equals("Api-Key", StringComparison.OrdinalIgnoreCase))
                return value.Trim();
            if (header.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase))
                return DecodeBasicPassword(value);
        }
        return request.Headers["Api-Key"] is [{ Length: > 0 } apiKey] ? apiKey.Trim() : null;
    }

    private static string? DecodeBasicPassword(string encoded)
    {
        try
        {
            var pair = Encoding.UTF8.GetString(Convert.FromBase64String(encoded));
            var colon = pair.IndexOf(':');
            return colon >= 0 && colon < pair.Length - 1 ? pair[(colon + 1)..] : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
