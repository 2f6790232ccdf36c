using Microsoft.Extensions.Options;
using VlaCloud.Api.Hosting;

namespace VlaCloud.Api.Auth;

/// <summary>
/// Refuses a WebSocket route's request whose <c>Origin</c> is not in <see cref="VlaCloudOptions.WebSocketAllowedOrigins"/>
/// with 403. Browsers send <c>Origin</c> on every WebSocket upgrade and let any page open one, so without this check a
/// page of another site could open a session; robots, SDKs and the CLI send no <c>Origin</c> and always pass. With no
/// origins configured, every request that carries one is refused.
/// </summary>
internal sealed class WebSocketOriginFilter(IOptions<VlaCloudOptions> options) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var origin = context.HttpContext.Request.Headers.Origin.ToString();
        if (origin.Length == 0 || options.Value.WebSocketAllowedOrigins.Any(allowed => IsSameOrigin(allowed, origin))) return await next(context);
        return TypedResults.Problem(
            statusCode: StatusCodes.Status403Forbidden,
            title: "Origin not allowed",
            detail: $"Pages of {Truncate(origin)} may not open sessions here; allowed origins are set in VlaCloud:WebSocketAllowedOrigins.");
    }

    private static bool IsSameOrigin(string allowed, string origin) =>
        Uri.TryCreate(allowed.TrimEnd('/'), UriKind.Absolute, out var a) && Uri.TryCreate(origin, UriKind.Absolute, out var o) &&
        string.Equals(a.Scheme, o.Scheme, StringComparison.OrdinalIgnoreCase) &&
        string.Equals(a.IdnHost, o.IdnHost, StringComparison.OrdinalIgnoreCase) && a.Port == o.Port && o.AbsolutePath == "/";

    private static string Truncate(string origin) => origin.Length <= 100 ? origin : origin[..100];
}

/// <summary>Applies the WebSocket origin check to a route group.</summary>
public static class WebSocketOriginExtensions
{
    /// <summary>Refuses requests to <paramref name="builder"/>'s routes from origins that are not allowed.</summary>
    public static TBuilder RequireWebSocketOrigin<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter<TBuilder, WebSocketOriginFilter>();
}
