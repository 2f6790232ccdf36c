using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Claims;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using VlaCloud.Registry;
using VlaCloud.Api.Keys;

namespace VlaCloud.Api.Auth;

/// <summary>
/// Authenticates a request by its API key. The key may come as <c>Authorization: Bearer</c>, as
/// <c>Authorization: Api-Key</c> or an <c>Api-Key</c> header (what openpi clients send), and on the job dashboard
/// only as the password of HTTP Basic (so a browser can open it): a browser caches Basic credentials and sends them
/// by itself, so accepting them anywhere else would let any site make requests with them.
/// </summary>
/// <remarks>
/// Memory answers first (cached keys, and unknown keys remembered for a minute); only a key it cannot vouch for
/// costs a database query, and an address that failed too often gets 429 instead (<see cref="FailedAuthLimiter"/>).
/// </remarks>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiKeyCache keys,
    FailedAuthLimiter failures,
    VlaCloud.Api.TenantConsole.ConsoleSessions consoleSessions)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    public const string TenantIdClaim = "tenant_id";
    public const string KeyIdClaim = "key_id";
    public const string ScopeClaim = "scope";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var presented = ReadPresentedKey(Request);
        if (presented is null && !IsDashboard(Request) && Request.Cookies[VlaCloud.Api.TenantConsole.ConsoleSessions.CookieName] is { } cookie)
        {
            // The tenant console's session: the key it holds is authenticated below like a presented one. A request that
            // changes something must repeat the session's CSRF token in a header, which another site's page cannot read
            // (SameSite=Strict already keeps the cookie off cross-site requests; the token also covers same-site ones).
            if (consoleSessions.Read(cookie) is not { } session) return AuthenticateResult.NoResult();
            if (!(HttpMethods.IsGet(Request.Method) || HttpMethods.IsHead(Request.Method) || HttpMethods.IsOptions(Request.Method))
                && !VlaCloud.Api.TenantConsole.ConsoleSessions.CsrfMatches(session, Request.Headers[VlaCloud.Api.TenantConsole.ConsoleSessions.CsrfHeader]))
                return AuthenticateResult.Fail("A console request that changes something must carry the session's X-CSRF-Token.");
            presented = session.ApiKey;
        }
        if (presented is null) return AuthenticateResult.NoResult();

        var address = Context.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        if (!keys.TryFindInMemory(presented, out var key) || key is null)
        {
            if (failures.RetryAfter(address) is { } wait)
            {
                Context.Features.Set(new AuthThrottled(wait));
                return AuthenticateResult.Fail("Too many failed authentications from this address.");
            }
            key ??= await keys.FindActiveAsync(presented, Context.RequestAborted);
        }
        if (key is null)
        {
            failures.RecordFailure(address);
            return AuthenticateResult.Fail("The API key is unknown, expired or revoked.");
        }
        Context.Features.Set(key);

        var claims = new List<Claim> { new(KeyIdClaim, key.KeyId.ToString()) };
        if (key.TenantId is { } tenantId) claims.Add(new(TenantIdClaim, tenantId.ToString()));
        claims.AddRange(key.Scopes.Select(scope => new Claim(ScopeClaim, scope)));
        var identity = new ClaimsIdentity(claims, SchemeName, KeyIdClaim, null);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        if (Context.Features.Get<AuthThrottled>() is { } throttled)
        {
            var seconds = Math.Max(1, (int)Math.Ceiling(throttled.RetryAfter.TotalSeconds));
            Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
            await Results.Problem(
                    statusCode: StatusCodes.Status429TooManyRequests,
                    title: "Too many failed authentications",
                    detail: $"This address presented too many unknown, expired or revoked keys; retry after {seconds} s.")
                .ExecuteAsync(Context);
            return;
        }
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = IsDashboard(Request)
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
            if (header.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase) && IsDashboard(request))
                return DecodeBasicPassword(value);
        }
        return request.Headers["Api-Key"] is [{ Length: > 0 } apiKey] ? apiKey.Trim() : null;
    }

    private static bool IsDashboard(HttpRequest request) => request.Path.StartsWithSegments(HangfireSetup.DashboardPath);

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
