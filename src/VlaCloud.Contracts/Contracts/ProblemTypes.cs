namespace VlaCloud.Contracts;

/// <summary>
/// The <c>type</c> URIs of the problem details (RFC 9457) the API answers with, one per kind of error, so that clients
/// match on the type (or on its <c>code</c>, the URI's last segment, which every problem also carries) rather than on a
/// title meant for people. docs/errors.md lists them with their statuses.
/// </summary>
public static class ProblemTypes
{
    /// <summary>The prefix of every type URI; the code follows it.</summary>
    public const string Base = "https://vlacloud.dev/problems/";

    /// <summary>400: the request is malformed or a field is invalid (<c>errors</c> names the fields).</summary>
    public const string Validation = Base + "validation_failed";
    /// <summary>401: the API key is missing, unknown, expired or revoked.</summary>
    public const string Unauthorized = Base + "unauthorized";
    /// <summary>403: the key lacks the scope, or the tenant may not use the feature.</summary>
    public const string Forbidden = Base + "forbidden";
    /// <summary>404: nothing of that id or name exists for the calling tenant.</summary>
    public const string NotFound = Base + "not_found";
    /// <summary>409: the resource's state does not allow the operation (a name taken, a job already ended, a concurrent change).</summary>
    public const string Conflict = Base + "conflict";
    /// <summary>409: a request with the same <c>Idempotency-Key</c> is still running.</summary>
    public const string IdempotencyInProgress = Base + "idempotency_in_progress";
    /// <summary>413: the body is larger than the route accepts.</summary>
    public const string PayloadTooLarge = Base + "payload_too_large";
    /// <summary>413: the content does not fit the tenant's storage quota.</summary>
    public const string StorageQuotaExceeded = Base + "storage_quota_exceeded";
    /// <summary>422: the request is well-formed but cannot be carried out (e.g. a checkpoint that cannot be served).</summary>
    public const string Unprocessable = Base + "unprocessable";
    /// <summary>422: the <c>Idempotency-Key</c> was used for another request.</summary>
    public const string IdempotencyKeyReused = Base + "idempotency_key_reused";
    /// <summary>429: the tenant's or key's request rate is exceeded; see <c>Retry-After</c> and <c>RateLimit</c>.</summary>
    public const string RateLimited = Base + "rate_limited";
    /// <summary>429: the tenant's monthly compute quota is used up.</summary>
    public const string QuotaExceeded = Base + "quota_exceeded";
    /// <summary>429: the tenant has as many concurrent streams or jobs as it may.</summary>
    public const string ConcurrencyLimited = Base + "concurrency_limited";
    /// <summary>429: the tenant is over its share of the inference queue while others wait.</summary>
    public const string InferenceShareExceeded = Base + "inference_share_exceeded";
    /// <summary>503: every inference queue is full; retry after <c>Retry-After</c>.</summary>
    public const string Busy = Base + "busy";
    /// <summary>503: a dependency (Postgres, Redis, storage) does not answer; retry after <c>Retry-After</c>.</summary>
    public const string Unavailable = Base + "service_unavailable";
    /// <summary>504: the result was not ready within the request's deadline.</summary>
    public const string DeadlineExceeded = Base + "deadline_exceeded";
    /// <summary>500: a fault of the server.</summary>
    public const string Internal = Base + "internal_error";

    /// <summary>The type for a problem of <paramref name="status"/> that names no more specific one.</summary>
    public static string ForStatus(int status) => status switch
    {
        400 => Validation,
        401 => Unauthorized,
        403 => Forbidden,
        404 => NotFound,
        409 => Conflict,
        413 => PayloadTooLarge,
        422 => Unprocessable,
        429 => RateLimited,
        503 => Unavailable,
        504 => DeadlineExceeded,
        >= 500 => Internal,
        _ => Base + "http_" + status,
    };

    /// <summary>The code of a type URI of this API (its last segment), or null for another URI.</summary>
    public static string? CodeOf(string? type) =>
        type is not null && type.StartsWith(Base, StringComparison.Ordinal) ? type[Base.Length..] : null;
}
