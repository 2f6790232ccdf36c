using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.DataProtection;

namespace VlaCloud.Api.TenantConsole;

/// <summary>A signed-in console session, read from its cookie.</summary>
/// <param name="ApiKey">The key the session stands for; every request is authenticated with it, so a revoked key ends the session.</param>
/// <param name="CsrfToken">The token a state-changing request must repeat in <see cref="ConsoleSessions.CsrfHeader"/>.</param>
internal sealed record ConsoleSession(string ApiKey, string CsrfToken);

/// <summary>
/// The tenant console's sessions. Signing in exchanges an API key for a cookie that holds the key encrypted and
/// authenticated by ASP.NET Core Data Protection (HttpOnly, so no script reads it; SameSite=Strict, so no other site's
/// page sends it; Secure on HTTPS), with a lifetime and a random CSRF token. The key never appears in a URL, and the
/// session is only as good as the key: each request authenticates the key inside as a Bearer key would be.
/// </summary>
/// <remarks>
/// Replicas must share the Data Protection key ring (ASP.NET Core's default keeps it per machine) for a cookie made by
/// one to be read by another; with one replica, or sticky sessions, nothing is needed.
/// </remarks>
internal sealed class ConsoleSessions(IDataProtectionProvider provider)
{
    /// <summary>The session cookie's name.</summary>
    public const string CookieName = "vlacloud_console";

    /// <summary>The header that carries the CSRF token on state-changing requests.</summary>
    public const string CsrfHeader = "X-CSRF-Token";

    /// <summary>How long a session lasts after sign-in.</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromHours(8);

    /// <summary>Longest API key the sign-in accepts (keys are ~60 characters).</summary>
    public const int MaxKeyLength = 256;

    private readonly ITimeLimitedDataProtector protector = provider.CreateProtector("VlaCloud.Console.Session.v1").ToTimeLimitedDataProtector();

    /// <summary>A new session's cookie value for <paramref name="apiKey"/>, and its CSRF token.</summary>
    public (string Cookie, string CsrfToken) Issue(string apiKey)
    {
        var csrf = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        return (protector.Protect($"{csrf}\n{apiKey}", Lifetime), csrf);
    }

    /// <summary>The session in <paramref name="cookie"/>, or null when it was tampered with, made elsewhere or expired.</summary>
    public ConsoleSession? Read(string? cookie)
    {
        if (string.IsNullOrEmpty(cookie) || cookie.Length > 4096) return null;
        try
        {
            var text = protector.Unprotect(cookie);
            var newline = text.IndexOf('\n');
            return newline > 0 ? new ConsoleSession(text[(newline + 1)..], text[..newline]) : null;
        }
        catch (CryptographicException)
        {
            return null;
        }
    }

    /// <summary>Whether <paramref name="presented"/> is the session's CSRF token (compared in constant time).</summary>
    public static bool CsrfMatches(ConsoleSession session, string? presented) =>
        presented is { Length: > 0 } && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(presented), Encoding.UTF8.GetBytes(session.CsrfToken));

    /// <summary>The cookie's attributes for <paramref name="request"/>.</summary>
    public static CookieOptions CookieOptions(HttpRequest request, bool expire = false) => new()
    {
        HttpOnly = true,
        SameSite = SameSiteMode.Strict,
        Secure = request.IsHttps,
        Path = "/",
        IsEssential = true,
        MaxAge = expire ? TimeSpan.Zero : Lifetime,
    };
}
