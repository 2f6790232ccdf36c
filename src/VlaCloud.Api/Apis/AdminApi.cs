using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using VlaCloud.Api.Idempotency;
using VlaCloud.Api.RateLimiting;
using VlaCloud.Api.Validation;
using VlaCloud.Registry;
using VlaCloud.Registry.Checkpoints;
using VlaCloud.Registry.Entities;
using VlaCloud.Api.Keys;

namespace VlaCloud.Api.Apis;

/// <summary>
/// <c>/v1/admin</c>: tenants and their API keys, and the platform administrators' own keys, for operators holding a
/// platform administrator's key (scope <c>admin</c>, no tenant; a tenant's key can never hold that scope). These routes
/// act across tenants by design, so they read without the tenant filter.
/// </summary>
public static class AdminApi
{
    /// <summary>Maps the group.</summary>
    public static IEndpointRouteBuilder MapAdminApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/admin/tenants").WithTags("Admin").RequireAuthorization(ApiScopes.Admin).RequireTenantRateLimit();
        group.MapPost("", CreateTenantAsync).WithName("CreateTenant").WithSummary("Creates a tenant.");
        group.MapGet("", ListTenantsAsync).WithName("ListTenants").WithSummary("Lists tenants, newest first.");
        group.MapGet("/{id:guid}", GetTenantAsync).WithName("GetTenant").WithSummary("Gets a tenant.");
        group.MapPatch("/{id:guid}", UpdateTenantAsync).WithName("UpdateTenant")
            .WithSummary("Changes a tenant's display name or limits; takes effect on every replica at once.");
        group.MapPost("/{id:guid}/api-keys", CreateKeyAsync).WithName("CreateApiKey")
            .WithSummary("Creates an API key for the tenant. The key is in this response only; store it.");
        group.MapGet("/{id:guid}/api-keys", ListKeysAsync).WithName("ListApiKeys").WithSummary("Lists the tenant's keys (never the secrets).");
        group.MapDelete("/{id:guid}/api-keys/{keyId:guid}", RevokeKeyAsync).WithName("RevokeApiKey")
            .WithSummary("Revokes a key; every replica refuses it from the next request on and closes its open sessions (4401).");

        var admins = app.MapGroup("/v1/admin/api-keys").WithTags("Admin").RequireAuthorization(ApiScopes.Admin).RequireTenantRateLimit();
        admins.MapPost("", CreateAdminKeyAsync).WithName("CreateAdminKey")
            .WithSummary("Creates another platform administrator's key (scope admin, no tenant). The key is in this response only; store it.");
        admins.MapGet("", ListAdminKeysAsync).WithName("ListAdminKeys").WithSummary("Lists the platform administrators' keys (never the secrets).");
        admins.MapDelete("/{keyId:guid}", RevokeAdminKeyAsync).WithName("RevokeAdminKey")
            .WithSummary("Revokes a platform administrator's key; every replica refuses it from the next request on.");
        return app;
    }

    /// <remarks>
    /// Creates a tenant with its name, display name and optional limits (unset limits take the server's defaults) and
    /// answers 201 with it and its <c>Location</c>; give it keys with <c>POST …/{id}/api-keys</c>. 400 for a name that is
    /// not a slug, a too long display name or a limit out of range; 409 when a tenant of that name exists.
    /// </remarks>
    private static async Task<Results<Created<TenantResponse>, ValidationProblem, ProblemHttpResult>> CreateTenantAsync(
        CreateTenantRequest request, RegistryDbContext db, TimeProvider clock, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        var nameLength = db.MaxLength((Tenant t) => t.Name);
        if (!Names.IsSlug(request.Name, nameLength)) errors["name"] = [$"name must be 1-{nameLength} characters of a-z, 0-9, '.', '_' or '-'."];
        errors.CheckLength(db, (Tenant t) => t.DisplayName, "display_name", request.DisplayName);
        request.Limits?.Validate(errors);
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);
        var tenant = new Tenant { Name = request.Name, DisplayName = request.DisplayName, CreatedAt = clock.GetUtcNow() };
        request.Limits?.ApplyTo(tenant);
        db.Tenants.Add(tenant);
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException e) when (e.IsUniqueViolation())
        {
            return TypedResults.Problem(statusCode: 409, title: "Conflict", detail: $"A tenant named '{request.Name}' already exists.");
        }
        return TypedResults.Created($"/v1/admin/tenants/{tenant.Id}", TenantResponse.From(tenant));
    }

    /// <remarks>
    /// Every tenant with its limits, newest first, paged with <c>after</c> and <c>limit</c> (400 for a limit outside
    /// 1–100).
    /// </remarks>
    private static async Task<Results<Ok<ListPage<TenantResponse>>, ValidationProblem>> ListTenantsAsync(
        Guid? after, int? limit, RegistryDbContext db, CancellationToken cancellationToken)
    {
        if (ApiResults.CheckLimit(limit, out var take) is { } invalid) return invalid;
        var query = db.Tenants.AsNoTracking();
        if (after is { } cursor) query = query.Where(t => t.Id < cursor);
        var rows = await query.OrderByDescending(t => t.Id).Take(take + 1).ToListAsync(cancellationToken);
        return TypedResults.Ok(ApiResults.Page(rows, take, t => t.Id, TenantResponse.From));
    }

    /// <remarks>The tenant with its display name and limits. 404 when no tenant has this id.</remarks>
    /// <param name="id">The tenant's id.</param>
    private static async Task<Results<Ok<TenantResponse>, ProblemHttpResult>> GetTenantAsync(Guid id, RegistryDbContext db, CancellationToken cancellationToken) =>
        await db.Tenants.AsNoTracking().FirstOrDefaultAsync(t => t.Id == id, cancellationToken) is { } tenant
            ? TypedResults.Ok(TenantResponse.From(tenant))
            : ApiResults.NotFound($"Tenant {id}");

    /// <remarks>
    /// Changes only the fields given: the display name and any of the limits (a limit left out keeps its value). The
    /// tenant's cached keys are dropped on every replica, so the new limits apply from the next request on. 400 for a too
    /// long display name or a limit out of range (<c>max_concurrent_streams</c> 0 means no streams); 404 when no tenant
    /// has this id; 409 when it was changed concurrently (read it again and retry).
    /// </remarks>
    /// <param name="id">The tenant's id.</param>
    private static async Task<Results<Ok<TenantResponse>, ValidationProblem, ProblemHttpResult>> UpdateTenantAsync(
        Guid id, UpdateTenantRequest request, RegistryDbContext db, ApiKeyCache keys, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        errors.CheckLength(db, (Tenant t) => t.DisplayName, "display_name", request.DisplayName);
        request.Limits?.Validate(errors);
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);
        if (await db.Tenants.FirstOrDefaultAsync(t => t.Id == id, cancellationToken) is not { } tenant) return ApiResults.NotFound($"Tenant {id}");
        if (request.DisplayName is not null) tenant.DisplayName = request.DisplayName;
        request.Limits?.ApplyTo(tenant);
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateConcurrencyException)
        {
            return TypedResults.Problem(statusCode: 409, title: "Conflict", detail: "The tenant was changed concurrently; read it again and retry.");
        }
        // Limits and the inference weight travel with the cached key identity: drop the tenant's cached keys everywhere.
        await keys.PublishTenantChangedAsync(id);
        return TypedResults.Ok(TenantResponse.From(tenant));
    }

    /// <remarks>
    /// Issues a key of the tenant with the given scopes (any of <c>inference</c>, <c>training</c>, <c>registry:read</c>,
    /// <c>registry:write</c>; never <c>admin</c>) and optional expiry, and answers 201 with it and its secret
    /// (<c>vlc_&lt;prefix&gt;_&lt;secret&gt;</c>). The secret is in this response only and is never stored: a retry with the
    /// same <c>Idempotency-Key</c> answers 409 naming the key created, never the secret again. 400 for a missing or too
    /// long name, an unknown scope or an expiry in the past; 404 when no tenant has this id.
    /// </remarks>
    /// <param name="id">The id of the tenant the key is for.</param>
    private static async Task<Results<Created<CreatedApiKeyResponse>, ValidationProblem, ProblemHttpResult>> CreateKeyAsync(
        Guid id, CreateApiKeyRequest request, HttpContext context, RegistryDbContext db, ApiKeyIssuer issuer, TimeProvider clock, CancellationToken cancellationToken)
    {
        if (!await db.Tenants.AnyAsync(t => t.Id == id, cancellationToken)) return ApiResults.NotFound($"Tenant {id}");
        if (CheckNewKey(db, request.Name, request.Scopes, request.ExpiresAt, clock) is { } invalid) return invalid;
        try
        {
            var (key, plain) = await issuer.IssueAsync(id, request.Name, request.Scopes ?? [], request.ExpiresAt, cancellationToken);
            return Issued(context, key, plain, $"/v1/admin/tenants/{id}/api-keys/{key.Id}");
        }
        catch (ArgumentException e)
        {
            return ApiResults.Invalid("scopes", e.Message);
        }
    }

    /// <remarks>
    /// Issues a key with scope <c>admin</c> that belongs to no tenant, and answers 201 with it and its secret. The secret
    /// is in this response only: a retry with the same <c>Idempotency-Key</c> answers 409 naming the key created. 400
    /// for a missing or too long name or an expiry in the past.
    /// </remarks>
    private static async Task<Results<Created<CreatedApiKeyResponse>, ValidationProblem, ProblemHttpResult>> CreateAdminKeyAsync(
        CreateAdminKeyRequest request, HttpContext context, RegistryDbContext db, ApiKeyIssuer issuer, TimeProvider clock, CancellationToken cancellationToken)
    {
        if (CheckNewKey(db, request.Name, [], request.ExpiresAt, clock) is { } invalid) return invalid;
        var (key, plain) = await issuer.IssuePlatformAdminAsync(request.Name, request.ExpiresAt, cancellationToken);
        return Issued(context, key, plain, $"/v1/admin/api-keys/{key.Id}");
    }

    private static ValidationProblem? CheckNewKey(RegistryDbContext db, string? name, IReadOnlyList<string?>? scopes, DateTimeOffset? expiresAt, TimeProvider clock)
    {
        var nameLength = db.MaxLength((ApiKey k) => k.Name);
        if (string.IsNullOrWhiteSpace(name) || name.Length > nameLength) return ApiResults.Invalid("name", $"name is required (at most {nameLength} characters).");
        if (scopes?.Any(s => s is null) == true) return ApiResults.Invalid("scopes", "scopes must not contain null.");
        if (expiresAt is { } expires && expires <= clock.GetUtcNow()) return ApiResults.Invalid("expires_at", "expires_at must be in the future.");
        return null;
    }

    /// <summary>
    /// The 201 with the new key's secret. The secret is in this response only: a retry with the same
    /// <c>Idempotency-Key</c> is answered 409 naming the key, and the secret is never stored for a replay.
    /// </summary>
    private static Created<CreatedApiKeyResponse> Issued(HttpContext context, ApiKey key, string plain, string location)
    {
        context.Features.Set(new IdempotentReplay(StatusCodes.Status409Conflict, new ProblemDetails
        {
            Status = StatusCodes.Status409Conflict,
            Title = "API key already created",
            Detail = $"The first request with this Idempotency-Key created API key {key.Id} (prefix {key.Prefix}). Its secret was in that " +
                     "response only and is not kept; if it was lost, revoke that key and create another.",
            Extensions = { ["key_id"] = key.Id },
        }));
        return TypedResults.Created(location, new CreatedApiKeyResponse(ApiKeyResponse.From(key), plain));
    }

    /// <remarks>
    /// Every platform administrator's key, revoked and expired ones included, newest first, in one page: name, prefix,
    /// expiry and revocation; never a secret.
    /// </remarks>
    private static async Task<Ok<ListPage<ApiKeyResponse>>> ListAdminKeysAsync(RegistryDbContext db, CancellationToken cancellationToken)
    {
        var rows = await db.ApiKeys.AsNoTracking().Where(k => k.TenantId == null).OrderByDescending(k => k.Id).ToListAsync(cancellationToken);
        return TypedResults.Ok(ApiResults.Page(rows, int.MaxValue, k => k.Id, ApiKeyResponse.From));
    }

    /// <remarks>
    /// Revokes the administrator key (revoking a revoked key changes nothing) and tells every replica, which refuse it
    /// from the next request on. 204 on success; 404 when no administrator key has this id; 409 when it was changed
    /// concurrently.
    /// </remarks>
    /// <param name="keyId">The id of the administrator key to revoke.</param>
    private static Task<Results<NoContent, ProblemHttpResult>> RevokeAdminKeyAsync(
        Guid keyId, RegistryDbContext db, ApiKeyCache keys, TimeProvider clock, CancellationToken cancellationToken) =>
        RevokeAsync(db.ApiKeys.Where(k => k.Id == keyId && k.TenantId == null), keyId, db, keys, clock, cancellationToken);

    /// <remarks>
    /// Every key of the tenant, revoked and expired ones included, newest first, in one page: name, prefix, scopes,
    /// expiry and revocation; never a secret. 404 when no tenant has this id.
    /// </remarks>
    /// <param name="id">The tenant's id.</param>
    private static async Task<Results<Ok<ListPage<ApiKeyResponse>>, ProblemHttpResult>> ListKeysAsync(Guid id, RegistryDbContext db, CancellationToken cancellationToken)
    {
        if (!await db.Tenants.AnyAsync(t => t.Id == id, cancellationToken)) return ApiResults.NotFound($"Tenant {id}");
        var rows = await db.ApiKeys.AsNoTracking().Where(k => k.TenantId == id).OrderByDescending(k => k.Id).ToListAsync(cancellationToken);
        return TypedResults.Ok(ApiResults.Page(rows, int.MaxValue, k => k.Id, ApiKeyResponse.From));
    }

    /// <remarks>
    /// Revokes the tenant's key (revoking a revoked key changes nothing) and tells every replica: they refuse it from the
    /// next request on and close its open WebSocket sessions with 4401 and its event streams with a <c>revoked</c> event.
    /// 204 on success; 404 when the tenant has no key with this id; 409 when it was changed concurrently.
    /// </remarks>
    /// <param name="id">The tenant's id.</param>
    /// <param name="keyId">The id of the key to revoke.</param>
    private static Task<Results<NoContent, ProblemHttpResult>> RevokeKeyAsync(
        Guid id, Guid keyId, RegistryDbContext db, ApiKeyCache keys, TimeProvider clock, CancellationToken cancellationToken) =>
        RevokeAsync(db.ApiKeys.Where(k => k.Id == keyId && k.TenantId == id), keyId, db, keys, clock, cancellationToken);

    /// <summary>Revokes the key <paramref name="match"/> finds, then tells every replica (which also ends its sessions).</summary>
    private static async Task<Results<NoContent, ProblemHttpResult>> RevokeAsync(
        IQueryable<ApiKey> match, Guid keyId, RegistryDbContext db, ApiKeyCache keys, TimeProvider clock, CancellationToken cancellationToken)
    {
        if (await match.FirstOrDefaultAsync(cancellationToken) is not { } key)
            return ApiResults.NotFound($"API key {keyId}");
        if (key.RevokedAt is null)
        {
            key.RevokedAt = clock.GetUtcNow();
            try
            {
                await db.SaveChangesAsync(cancellationToken);
            }
            catch (DbUpdateConcurrencyException)
            {
                return TypedResults.Problem(statusCode: 409, title: "Conflict", detail: "The key was changed concurrently; retry.");
            }
        }
        await keys.PublishKeyChangedAsync(key.Prefix);
        return TypedResults.NoContent();
    }
}

/// <summary>Server-side behaviour of the admin contracts (the records live in <c>VlaCloud.Contracts</c>).</summary>
internal static class AdminContractExtensions
{
    extension(TenantLimitsDto limits)
    {
        internal void Validate(Dictionary<string, string[]> errors)
        {
            if (limits.RequestsPerSecond is { } rps && !(rps > 0 && rps <= 100_000)) errors["limits.requests_per_second"] = ["must be in (0, 100000]."];
            if (limits.Burst is < 1 or > 1_000_000) errors["limits.burst"] = ["must be between 1 and 1000000."];
            // 0 is meaningful: a tenant that may use REST but not open streams (the stream endpoints answer 403).
            if (limits.MaxConcurrentStreams is < 0 or > 10_000) errors["limits.max_concurrent_streams"] = ["must be between 0 (no streams) and 10000."];
            if (limits.MonthlyComputeMsQuota is < 0) errors["limits.monthly_compute_ms_quota"] = ["must not be negative."];
            if (limits.StorageQuotaBytes is < 0) errors["limits.storage_quota_bytes"] = ["must not be negative."];
            if (limits.InferenceWeight is { } weight && !(weight >= Tenant.MinInferenceWeight && weight <= Tenant.MaxInferenceWeight))
                errors["limits.inference_weight"] = [FormattableString.Invariant($"must be between {Tenant.MinInferenceWeight} and {Tenant.MaxInferenceWeight}.")];
        }

        internal void ApplyTo(Tenant tenant)
        {
            if (limits.RequestsPerSecond is not null) tenant.RequestsPerSecond = limits.RequestsPerSecond;
            if (limits.Burst is not null) tenant.Burst = limits.Burst;
            if (limits.MaxConcurrentStreams is not null) tenant.MaxConcurrentStreams = limits.MaxConcurrentStreams;
            if (limits.MonthlyComputeMsQuota is not null) tenant.MonthlyComputeMsQuota = limits.MonthlyComputeMsQuota;
            if (limits.StorageQuotaBytes is not null) tenant.StorageQuotaBytes = limits.StorageQuotaBytes;
            if (limits.InferenceWeight is { } weight) tenant.InferenceWeight = weight;
        }
    }

    extension(TenantResponse)
    {
        internal static TenantResponse From(Tenant t) => new(t.Id, t.Name, t.DisplayName,
            new TenantLimitsDto(t.RequestsPerSecond, t.Burst, t.MaxConcurrentStreams, t.MonthlyComputeMsQuota, t.StorageQuotaBytes, t.InferenceWeight), t.CreatedAt);
    }

    extension(ApiKeyResponse)
    {
        internal static ApiKeyResponse From(ApiKey k) => new(k.Id, k.TenantId, k.Name, k.Prefix, k.Scopes, k.CreatedAt, k.ExpiresAt, k.RevokedAt);
    }
}
