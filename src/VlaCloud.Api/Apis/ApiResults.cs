using Microsoft.AspNetCore.Http.HttpResults;
using VlaCloud.Registry;
using VlaCloud.Api.Limits;

namespace VlaCloud.Api.Apis;

/// <summary>Helpers shared by the endpoint groups.</summary>
internal static class ApiResults
{
    public const int DefaultLimit = 20;
    public const int MaxLimit = 100;

    /// <summary>A page from up to <c>limit + 1</c> rows fetched newest first.</summary>
    public static ListPage<TOut> Page<TIn, TOut>(IReadOnlyList<TIn> rows, int limit, Func<TIn, Guid> id, Func<TIn, TOut> map)
    {
        var page = rows.Take(limit).ToList();
        return new ListPage<TOut>(page.Select(map).ToList(),
            page.Count > 0 ? id(page[0]).ToString() : null,
            page.Count > 0 ? id(page[^1]).ToString() : null,
            rows.Count > limit);
    }

    /// <summary>Checks <c>limit</c>; null when valid, else the validation problem.</summary>
    public static ValidationProblem? CheckLimit(int? limit, out int value)
    {
        value = limit ?? DefaultLimit;
        return value is < 1 or > MaxLimit
            ? TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["limit"] = [$"limit must be between 1 and {MaxLimit}."] })
            : null;
    }

    /// <summary>The problem for a registry refusal: 404, 400 or 409.</summary>
    public static ProblemHttpResult Problem(RegistryException e) => e.Kind switch
    {
        RegistryErrorKind.NotFound => TypedResults.Problem(statusCode: 404, title: "Not found", detail: e.Message),
        RegistryErrorKind.Conflict => TypedResults.Problem(statusCode: 409, title: "Conflict", detail: e.Message),
        _ => TypedResults.Problem(statusCode: 400, title: "Invalid request", detail: e.Message),
    };

    /// <summary>A 404 problem that reveals nothing about other tenants.</summary>
    public static ProblemHttpResult NotFound(string what) =>
        TypedResults.Problem(statusCode: 404, title: "Not found", detail: $"{what} was not found.");

    /// <summary>
    /// The 413 for content that does not fit the tenant's storage quota (<paramref name="needed"/> more bytes), with the
    /// numbers, so the client knows how much to free or to ask for.
    /// </summary>
    public static ProblemHttpResult StorageFull(StorageUsage usage, long needed, string what) =>
        TypedResults.Problem(
            statusCode: StatusCodes.Status413PayloadTooLarge,
            title: "Storage quota exceeded",
            type: ProblemTypes.StorageQuotaExceeded,
            detail: $"{what} needs {needed} bytes; the tenant stores {usage.UsedBytes} of its {usage.QuotaBytes} bytes ({usage.RemainingBytes} left). " +
                    "Unregistered artifacts are removed after a day; an administrator can raise limits.storage_quota_bytes.",
            extensions: new Dictionary<string, object?>
            {
                ["storage_used_bytes"] = usage.UsedBytes, ["storage_quota_bytes"] = usage.QuotaBytes, ["needed_bytes"] = needed,
            });

    /// <summary>A 422 problem: the request is well-formed but what <paramref name="field"/> names cannot be used; <c>errors</c> says why.</summary>
    public static ProblemHttpResult Unprocessable(string field, string title, string message) =>
        TypedResults.Problem(statusCode: StatusCodes.Status422UnprocessableEntity, title: title, detail: message,
            extensions: new Dictionary<string, object?> { ["errors"] = new Dictionary<string, string[]> { [field] = [message] } });

    /// <summary>A validation problem for one field.</summary>
    public static ValidationProblem Invalid(string field, string message) =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] });
}
