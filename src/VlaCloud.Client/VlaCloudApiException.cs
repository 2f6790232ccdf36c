using System.Net;
using System.Text;
using System.Text.Json.Serialization;

namespace VlaCloud.Client;

/// <summary>An RFC 9457 problem details body, as every VlaCloud error answers.</summary>
/// <param name="Type">A URI naming the kind of problem.</param>
/// <param name="Title">Short summary, e.g. <c>Not found</c>.</param>
/// <param name="Status">HTTP status code.</param>
/// <param name="Detail">What went wrong in this occurrence.</param>
/// <param name="Instance">The request path.</param>
/// <param name="Errors">Validation errors per field (for 400 validation problems).</param>
/// <param name="TraceId">The server's trace id of the request, when it sent one.</param>
/// <param name="Code">The problem type's code (<c>rate_limited</c>, <c>not_found</c>, …; see <c>ProblemTypes</c>).</param>
public sealed record ApiProblem(
    string? Type,
    string? Title,
    int? Status,
    string? Detail,
    string? Instance = null,
    IReadOnlyDictionary<string, string[]>? Errors = null,
    [property: JsonPropertyName("traceId")] string? TraceId = null,
    [property: JsonPropertyName("code")] string? Code = null);

/// <summary>
/// The server refused a request: carries its status and problem details (title, detail, validation errors),
/// and <see cref="RetryAfter"/> when the server said when to retry (429, 503).
/// </summary>
public sealed class VlaCloudApiException : Exception
{
    /// <summary>Creates the exception for a refusal.</summary>
    public VlaCloudApiException(HttpStatusCode statusCode, ApiProblem problem, TimeSpan? retryAfter = null, Exception? inner = null)
        : base(Describe(statusCode, problem), inner)
    {
        StatusCode = statusCode;
        Problem = problem;
        RetryAfter = retryAfter;
    }

    /// <summary>The HTTP status.</summary>
    public HttpStatusCode StatusCode { get; }

    /// <summary>The problem details (synthesised from the status when the body had none).</summary>
    public ApiProblem Problem { get; }

    /// <summary>The problem's type URI (one of <see cref="VlaCloud.Contracts.ProblemTypes"/>): what to match on, not the title.</summary>
    public string? Type => Problem.Type;

    /// <summary>The problem type's code, e.g. <c>rate_limited</c>.</summary>
    public string? Code => Problem.Code ?? VlaCloud.Contracts.ProblemTypes.CodeOf(Problem.Type);

    /// <summary>When to retry, from the <c>Retry-After</c> header.</summary>
    public TimeSpan? RetryAfter { get; }

    /// <summary>Validation errors per field; empty when there are none.</summary>
    public IReadOnlyDictionary<string, string[]> Errors => Problem.Errors ?? new Dictionary<string, string[]>();

    private static string Describe(HttpStatusCode status, ApiProblem problem)
    {
        var text = new StringBuilder($"{problem.Title ?? status.ToString()} ({(int)status})");
        if (!string.IsNullOrEmpty(problem.Detail)) text.Append(": ").Append(problem.Detail);
        foreach (var (field, messages) in problem.Errors ?? new Dictionary<string, string[]>())
            text.Append(Environment.NewLine).Append("  ").Append(field).Append(": ").Append(string.Join(" ", messages));
        return text.ToString();
    }
}
