using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using VlaCloud.Api.Apis;
using VlaCloud.Api.Auth;
using VlaCloud.Api.Keys;

namespace VlaCloud.Api.TenantConsole;

/// <summary>Body of <c>POST /console/session</c>.</summary>
/// <param name="ApiKey">A tenant's API key.</param>
public sealed record ConsoleSignInRequest([property: System.Text.Json.Serialization.JsonPropertyName("api_key")] string? ApiKey);

/// <summary>A console session as its page sees it (never the key).</summary>
/// <param name="CsrfToken">Repeat it in <c>X-CSRF-Token</c> on every request that changes something.</param>
/// <param name="TenantId">The tenant.</param>
/// <param name="KeyPrefix">The key's public prefix.</param>
/// <param name="Scopes">The key's scopes.</param>
public sealed record ConsoleSessionResponse(
    [property: System.Text.Json.Serialization.JsonPropertyName("csrf_token")] string CsrfToken,
    [property: System.Text.Json.Serialization.JsonPropertyName("tenant_id")] Guid TenantId,
    [property: System.Text.Json.Serialization.JsonPropertyName("key_prefix")] string KeyPrefix,
    IReadOnlyList<string> Scopes);

/// <summary>
/// The tenant console at <c>/console</c>: a small static app (HTML, CSS, one script; embedded in the host, no build
/// at run time) over the public API, and its session routes. The page calls the same <c>/v1</c> routes as any client,
/// authenticated by the session cookie instead of a Bearer header.
/// </summary>
public static class ConsoleApi
{
    /// <summary>Where the console lives.</summary>
    public const string Path = "/console";

    private static readonly Dictionary<string, string> Files = new(StringComparer.Ordinal)
    {
        ["index.html"] = "text/html; charset=utf-8",
        ["app.js"] = "text/javascript; charset=utf-8",
        ["app.css"] = "text/css; charset=utf-8",
    };

    // Only the console's own files run: no inline script or style, no framing, no other origin.
    private const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

    /// <summary>Maps the page, its files and the session routes.</summary>
    public static IEndpointRouteBuilder MapConsoleApi(this IEndpointRouteBuilder app)
    {
        var console = app.MapGroup(Path).ExcludeFromDescription();
        console.MapGet("", (HttpContext context) => Serve(context, "index.html"));
        console.MapGet("/{file}", (string file, HttpContext context) => Serve(context, file));
        console.MapPost("/session", SignInAsync).WithMetadata(new RequestSizeLimitAttribute(4096));
        console.MapGet("/session", GetSession).RequireAuthorization(ScopePolicies.Tenant);
        console.MapDelete("/session", SignOut).RequireAuthorization(ScopePolicies.Tenant);
        return app;
    }

    private static IResult Serve(HttpContext context, string file)
    {
        if (!Files.TryGetValue(file, out var contentType)) return Results.NotFound();
        using var stream = typeof(ConsoleApi).Assembly.GetManifestResourceStream($"console/{file}");
        if (stream is null) return Results.NotFound();
        using var reader = new StreamReader(stream);
        var headers = context.Response.Headers;
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        headers.CacheControl = "no-cache";
        return Results.Text(reader.ReadToEnd(), contentType);
    }

    private static async Task<Results<Ok<ConsoleSessionResponse>, ValidationProblem, ProblemHttpResult>> SignInAsync(
        ConsoleSignInRequest request, HttpContext context, ApiKeyCache keys, FailedAuthLimiter failures, ConsoleSessions sessions)
    {
        if (request.ApiKey is not { Length: > 0 and <= ConsoleSessions.MaxKeyLength } presented)
            return ApiResults.Invalid("api_key", $"api_key (a tenant's API key, at most {ConsoleSessions.MaxKeyLength} characters) is required.");
        var address = context.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        if (failures.RetryAfter(address) is { } wait)
        {
            context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            return TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Too many failed authentications",
                detail: "This address presented too many unknown, expired or revoked keys.");
        }
        var key = await keys.FindActiveAsync(presented.Trim(), context.RequestAborted);
        if (key is null)
        {
            failures.RecordFailure(address);
            return TypedResults.Problem(statusCode: StatusCodes.Status401Unauthorized, title: "Unauthorized", detail: "api_key: the API key is unknown, expired or revoked.");
        }
        if (key.TenantId is not { } tenantId)
            return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden",
                detail: "api_key: a platform administrator's key has no tenant; sign in to the console with a tenant's key.");
        var (cookie, csrf) = sessions.Issue(presented.Trim());
        context.Response.Cookies.Append(ConsoleSessions.CookieName, cookie, ConsoleSessions.CookieOptions(context.Request));
        context.Response.Headers.CacheControl = "no-store";
        return TypedResults.Ok(new ConsoleSessionResponse(csrf, tenantId, key.Prefix, key.Scopes));
    }

    private static Results<Ok<ConsoleSessionResponse>, ProblemHttpResult> GetSession(HttpContext context, ConsoleSessions sessions, CurrentTenant tenant)
    {
        // A page reload asks for the CSRF token again; only a request with the cookie gets it (the API key's Bearer
        // header has no session).
        if (sessions.Read(context.Request.Cookies[ConsoleSessions.CookieName]) is not { } session)
            return TypedResults.Problem(statusCode: StatusCodes.Status401Unauthorized, title: "Unauthorized", detail: "No console session; sign in.");
        context.Response.Headers.CacheControl = "no-store";
        return TypedResults.Ok(new ConsoleSessionResponse(session.CsrfToken, tenant.TenantId!.Value, tenant.Identity!.Prefix, tenant.Identity.Scopes));
    }

    private static NoContent SignOut(HttpContext context)
    {
        context.Response.Cookies.Delete(ConsoleSessions.CookieName, ConsoleSessions.CookieOptions(context.Request, expire: true));
        return TypedResults.NoContent();
    }
}
