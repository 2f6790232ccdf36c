using System.Text.Json.Serialization;

namespace VlaCloud.Contracts;

/// <summary>Optional per-tenant limits; absent fields keep their value (null on create means the default).</summary>
/// <param name="RequestsPerSecond">Sustained request rate.</param>
/// <param name="Burst">Token-bucket size.</param>
/// <param name="MaxConcurrentStreams">Open WebSocket sessions at once; 0 means the tenant may not open streams (REST only).</param>
/// <param name="MonthlyComputeMsQuota">Inference compute milliseconds per month.</param>
/// <param name="StorageQuotaBytes">Bytes of artifacts, datasets and pending uploads.</param>
/// <param name="InferenceWeight">
/// The tenant's weight in the inference engine's fair sharing of the queue and of each batch, 0.1 to 100 (2: twice the
/// share of a tenant of weight 1). Null on create means 1; a tenant's read always shows its weight. Replicas apply a change
/// at once (the tenant's cached keys are invalidated everywhere).
/// </param>
public sealed record TenantLimitsDto(
    [property: JsonPropertyName("requests_per_second")] double? RequestsPerSecond = null,
    int? Burst = null,
    [property: JsonPropertyName("max_concurrent_streams")] int? MaxConcurrentStreams = null,
    [property: JsonPropertyName("monthly_compute_ms_quota")] long? MonthlyComputeMsQuota = null,
    [property: JsonPropertyName("storage_quota_bytes")] long? StorageQuotaBytes = null,
    [property: JsonPropertyName("inference_weight")] double? InferenceWeight = null);

/// <summary>Body of <c>POST /v1/admin/tenants</c>.</summary>
/// <param name="Name">Unique name (a slug).</param>
/// <param name="DisplayName">Name for people.</param>
/// <param name="Limits">Limits, or null for the defaults.</param>
public sealed record CreateTenantRequest(
    string Name,
    [property: JsonPropertyName("display_name")] string? DisplayName = null,
    TenantLimitsDto? Limits = null);

/// <summary>Body of <c>PATCH /v1/admin/tenants/{id}</c>.</summary>
/// <param name="DisplayName">New display name, or null to keep it.</param>
/// <param name="Limits">Limits to change.</param>
public sealed record UpdateTenantRequest(
    [property: JsonPropertyName("display_name")] string? DisplayName = null,
    TenantLimitsDto? Limits = null);

/// <summary>A tenant.</summary>
/// <param name="Id">Tenant id.</param>
/// <param name="Name">Its name.</param>
/// <param name="DisplayName">Name for people.</param>
/// <param name="Limits">Its limits (null fields: the defaults).</param>
/// <param name="CreatedAt">When it was created.</param>
public sealed record TenantResponse(
    Guid Id,
    string Name,
    [property: JsonPropertyName("display_name")] string? DisplayName,
    TenantLimitsDto Limits,
    [property: JsonPropertyName("created_at")] DateTimeOffset CreatedAt);

/// <summary>Body of <c>POST /v1/admin/tenants/{id}/api-keys</c>.</summary>
/// <param name="Name">What the key is for.</param>
/// <param name="Scopes">Scopes (<c>inference</c>, <c>training</c>, <c>registry:read</c>, <c>registry:write</c>); never <c>admin</c>, which only platform keys hold.</param>
/// <param name="ExpiresAt">When it stops working, or null for never.</param>
public sealed record CreateApiKeyRequest(
    string Name,
    IReadOnlyList<string>? Scopes,
    [property: JsonPropertyName("expires_at")] DateTimeOffset? ExpiresAt = null);

/// <summary>Body of <c>POST /v1/admin/api-keys</c>: a platform administrator's key (scope <c>admin</c>, no tenant).</summary>
/// <param name="Name">Who or what it is for.</param>
/// <param name="ExpiresAt">When it stops working, or null for never.</param>
public sealed record CreateAdminKeyRequest(
    string Name,
    [property: JsonPropertyName("expires_at")] DateTimeOffset? ExpiresAt = null);

/// <summary>An API key, without its secret.</summary>
/// <param name="Id">Key id.</param>
/// <param name="TenantId">Its tenant; null for a platform administrator's key.</param>
/// <param name="Name">What it is for.</param>
/// <param name="Prefix">The public part of the key, <c>vlc_xxxxxxxxxxxx</c>.</param>
/// <param name="Scopes">Its scopes.</param>
/// <param name="CreatedAt">When it was created.</param>
/// <param name="ExpiresAt">When it expires.</param>
/// <param name="RevokedAt">When it was revoked.</param>
public sealed record ApiKeyResponse(
    Guid Id,
    [property: JsonPropertyName("tenant_id")] Guid? TenantId,
    string Name,
    string Prefix,
    IReadOnlyList<string> Scopes,
    [property: JsonPropertyName("created_at")] DateTimeOffset CreatedAt,
    [property: JsonPropertyName("expires_at")] DateTimeOffset? ExpiresAt,
    [property: JsonPropertyName("revoked_at")] DateTimeOffset? RevokedAt);

/// <summary>A new key: the only time its secret is shown.</summary>
/// <param name="Key">The key's record.</param>
/// <param name="PlainKey">The secret, <c>vlc_…</c>; store it.</param>
public sealed record CreatedApiKeyResponse(ApiKeyResponse Key, [property: JsonPropertyName("api_key")] string PlainKey);
