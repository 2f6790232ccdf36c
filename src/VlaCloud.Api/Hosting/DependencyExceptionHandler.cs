using System.Globalization;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.Extensions.Options;
using VlaCloud.Registry;

namespace VlaCloud.Api.Hosting;

/// <summary>
/// Answers a request that failed because Postgres or Redis does not answer with a 503 problem and <c>Retry-After</c>,
/// naming the dependency, instead of a 500: the request was fine and a retry will work once it is back. Everything
/// else falls through to the default 500 problem.
/// </summary>
internal sealed class DependencyExceptionHandler(IProblemDetailsService problems, IOptions<VlaCloudOptions> options, ILogger<DependencyExceptionHandler> logger)
    : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        if (DependencyFailure.Of(exception) is not { } dependency || context.Response.HasStarted) return false;
        logger.LogWarning("{Method} {Path}: {Dependency} does not answer ({Reason}); answered 503",
            context.Request.Method, context.Request.Path, dependency, exception.GetBaseException().Message);
        var retryAfter = Math.Max(1, (int)Math.Ceiling(options.Value.DependencyRetryAfter.TotalSeconds));
        context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        context.Response.Headers.RetryAfter = retryAfter.ToString(CultureInfo.InvariantCulture);
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            Exception = exception,
            ProblemDetails =
            {
                Status = StatusCodes.Status503ServiceUnavailable,
                Title = "Service unavailable",
                Detail = $"{dependency} does not answer; retry after {retryAfter} s.",
            },
        });
    }
}
