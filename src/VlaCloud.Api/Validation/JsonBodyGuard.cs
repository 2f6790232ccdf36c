using Microsoft.AspNetCore.Http.Features;
using VlaCloud.Contracts.Wire;

namespace VlaCloud.Api.Validation;

/// <summary>
/// Reads every JSON request body once, before an endpoint binds it, and refuses with a 400 problem naming the field
/// what no handler should see: a NUL character or an unpaired surrogate in a string (Postgres stores neither, in text
/// or jsonb, so they used to end as 500s), a repeated key, invalid UTF-8, or a body that would take more than
/// <see cref="DecodeBudget.DefaultExpansion"/> times its size once decoded (long lists of tiny numbers). The body is
/// then handed on from memory, so it is read from the network once.
/// </summary>
internal sealed class JsonBodyGuard(RequestDelegate next)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var request = context.Request;
        if (request.ContentLength == 0 || !IsJson(request.ContentType))
        {
            await next(context);
            return;
        }

        byte[] body;
        try
        {
            body = await ReadAsync(request, context.RequestAborted);
        }
        catch (BadHttpRequestException e)
        {
            // Past the body size limit (413), or the body ended early: the same answer Kestrel would give, as a problem.
            await Results.Problem(statusCode: e.StatusCode, title: ReasonPhrase(e.StatusCode), detail: e.Message).ExecuteAsync(context);
            return;
        }

        if (body.Length > 0)
        {
            try
            {
                JsonWire.Check(body, DecodeBudget.ForMessage(body.Length));
            }
            catch (JsonWireException e)
            {
                await Results.ValidationProblem(new Dictionary<string, string[]> { [e.Path.Length > 0 ? e.Path : "body"] = [e.Reason] },
                    title: "The request body is not acceptable JSON.").ExecuteAsync(context);
                return;
            }
        }
        request.Body = new MemoryStream(body, writable: false);
        await next(context);
    }

    private static bool IsJson(string? contentType) =>
        contentType is not null && Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(contentType, out var media)
        && (media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase) || media.Suffix.Equals("json", StringComparison.OrdinalIgnoreCase));

    private static async Task<byte[]> ReadAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        // Kestrel enforces the body size limit while this reads (BadHttpRequestException, 413), before it is all in memory.
        var limit = request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize;
        if (request.ContentLength is { } length && (limit is null || length <= limit))
        {
            var exact = new byte[length];
            await request.Body.ReadExactlyAsync(exact, cancellationToken);
            return exact;
        }
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, cancellationToken);
        return buffer.ToArray();
    }

    private static string ReasonPhrase(int status) => Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(status) is { Length: > 0 } phrase ? phrase : "Bad Request";
}
