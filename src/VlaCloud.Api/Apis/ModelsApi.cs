using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using VlaCloud.Api.Auth;
using VlaCloud.Api.RateLimiting;
using VlaCloud.Api.Validation;
using VlaCloud.Registry;
using VlaCloud.Registry.Checkpoints;
using VlaCloud.Registry.Entities;

namespace VlaCloud.Api.Apis;

/// <summary>
/// <c>/v1/models/{model}/aliases</c>: movable names for a model's versions. Promotion sets or moves an alias;
/// rollback moves it back; every change is in the alias's history.
/// </summary>
public static class ModelsApi
{
    /// <summary>Maps the group.</summary>
    public static IEndpointRouteBuilder MapModelsApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/models/{model}/aliases").WithTags("Models").RequireTenantRateLimit();
        var read = group.MapGroup("").RequireAuthorization(ApiScopes.RegistryRead);
        var write = group.MapGroup("").RequireAuthorization(ApiScopes.RegistryWrite);

        read.MapGet("", ListAsync).WithName("ListAliases").WithSummary("Lists the aliases of a model.");
        read.MapGet("/{alias}", GetAsync).WithName("GetAlias").WithSummary("Gets an alias and the checkpoint it points at.");
        read.MapGet("/{alias}/history", HistoryAsync).WithName("GetAliasHistory")
            .WithSummary("The moves of an alias, newest first: who moved it, when, from which checkpoint to which.");
        write.MapPut("/{alias}", SetAsync).WithName("SetAlias")
            .WithSummary("Creates or moves an alias to a checkpoint (promotion).");
        write.MapPost("/{alias}/rollback", RollbackAsync).WithName("RollbackAlias")
            .WithSummary("Moves an alias back to the checkpoint it pointed at before its last move.");
        write.MapDelete("/{alias}", DeleteAsync).WithName("DeleteAlias").WithSummary("Deletes an alias (recorded in its history).")
            .ProducesProblem(StatusCodes.Status400BadRequest);
        return app;
    }

    /// <remarks>
    /// The aliases of the model the caller can see (its tenant's and public ones, <c>is_public</c>), newest first, with
    /// the checkpoint and version each points at; all in one page. An unknown model answers an empty list, not 404.
    /// </remarks>
    /// <param name="model">The model's name.</param>
    private static async Task<Ok<ListPage<AliasResponse>>> ListAsync(string model, RegistryDbContext db, CancellationToken cancellationToken)
    {
        var rows = await db.Aliases.AsNoTracking().Include(a => a.Checkpoint)
            .Where(a => a.ModelName == model).OrderByDescending(a => a.Id).ToListAsync(cancellationToken);
        return TypedResults.Ok(ApiResults.Page(rows, int.MaxValue, a => a.Id, AliasResponse.From));
    }

    /// <remarks>
    /// The alias and the checkpoint it points at; the caller's own alias wins over a public one of the same name, as
    /// in resolution. 404 when neither exists.
    /// </remarks>
    /// <param name="model">The model's name.</param>
    /// <param name="alias">The alias (e.g. `production`).</param>
    private static async Task<Results<Ok<AliasResponse>, ProblemHttpResult>> GetAsync(
        string model, string alias, RegistryDbContext db, CancellationToken cancellationToken) =>
        await db.Aliases.AsNoTracking().Include(a => a.Checkpoint)
                .Where(a => a.ModelName == model && a.Name == alias).OrderBy(a => a.TenantId == null)
                .FirstOrDefaultAsync(cancellationToken) is { } found
            ? TypedResults.Ok(AliasResponse.From(found))
            : ApiResults.NotFound($"Alias {model}@{alias}");

    /// <remarks>
    /// Every move of the alias (creation, promotion, rollback, deletion), newest first, with the key that made it and
    /// its reason; paged with <c>after</c> and <c>limit</c> (400 for a limit outside 1–100). 404 when the alias has no
    /// history.
    /// </remarks>
    /// <param name="model">The model's name.</param>
    /// <param name="alias">The alias (e.g. `production`).</param>
    private static async Task<Results<Ok<ListPage<AliasMoveResponse>>, ValidationProblem, ProblemHttpResult>> HistoryAsync(
        string model, string alias, Guid? after, int? limit, RegistryDbContext db, CancellationToken cancellationToken)
    {
        if (ApiResults.CheckLimit(limit, out var take) is { } invalid) return invalid;
        var query = db.AliasMoves.AsNoTracking().Where(m => m.ModelName == model && m.Alias == alias);
        if (after is { } cursor) query = query.Where(m => m.Id < cursor);
        var rows = await query.OrderByDescending(m => m.Id).Take(take + 1).ToListAsync(cancellationToken);
        if (rows.Count == 0 && after is null) return ApiResults.NotFound($"Alias {model}@{alias}");
        return TypedResults.Ok(ApiResults.Page(rows, take, m => m.Id, AliasMoveResponse.From));
    }

    /// <remarks>
    /// Points the caller's tenant's alias at the checkpoint <c>checkpoint</c> names (an id, <c>model@vN</c> or
    /// <c>model@alias</c>), creating the alias when new, and records the move with its reason. Setting it to where it
    /// already points changes nothing. Every replica resolves the alias anew from the next request on.
    ///
    /// Errors: 400 for a missing, malformed or ambiguous checkpoint reference, an invalid model or alias name (an alias may not look like
    /// <c>v&lt;number&gt;</c>), a reason that is too long, or a checkpoint of another model; 404 when the checkpoint is
    /// not visible to the caller; 409 when the alias was moved concurrently.
    /// </remarks>
    /// <param name="model">The model's name.</param>
    /// <param name="alias">The alias to point (created when new, e.g. `production`).</param>
    private static async Task<Results<Ok<AliasResponse>, ValidationProblem, ProblemHttpResult>> SetAsync(
        string model, string alias, SetAliasRequest request, AliasService aliases, RegistryDbContext db, CurrentTenant tenant, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(request.Checkpoint)) return ApiResults.Invalid("checkpoint", "checkpoint (id, model@vN or model@alias) is required.");
        var errors = new Dictionary<string, string[]>();
        if (!errors.CheckLength(db, (AliasMove m) => m.Reason, "reason", request.Reason)) return TypedResults.ValidationProblem(errors);
        try
        {
            var moved = await aliases.SetAsync(model, alias, request.Checkpoint, request.Reason, tenant.KeyId, cancellationToken);
            return TypedResults.Ok(await ReloadAsync(db, moved.Id, cancellationToken));
        }
        catch (RegistryException e)
        {
            return ApiResults.Problem(e);
        }
    }

    /// <remarks>
    /// Moves the caller's tenant's alias back to the checkpoint it pointed at before its last move, recorded as a move
    /// of its own (reason <c>rollback</c> unless one is given); the body is optional. 404 when the tenant has no such
    /// alias; 409 when the alias has no earlier checkpoint (its last move created it) or was moved concurrently; 400 for an
    /// invalid model or alias name or a reason that is too long.
    /// </remarks>
    /// <param name="model">The model's name.</param>
    /// <param name="alias">The alias to move back (e.g. `production`).</param>
    private static async Task<Results<Ok<AliasResponse>, ValidationProblem, ProblemHttpResult>> RollbackAsync(
        string model, string alias, RollbackAliasRequest? request, AliasService aliases, RegistryDbContext db, CurrentTenant tenant, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        if (!errors.CheckLength(db, (AliasMove m) => m.Reason, "reason", request?.Reason)) return TypedResults.ValidationProblem(errors);
        try
        {
            var moved = await aliases.RollbackAsync(model, alias, request?.Reason, tenant.KeyId, cancellationToken);
            return TypedResults.Ok(await ReloadAsync(db, moved.Id, cancellationToken));
        }
        catch (RegistryException e)
        {
            return ApiResults.Problem(e);
        }
    }

    /// <remarks>
    /// Deletes the caller's tenant's alias and records the deletion in its history; references through it stop
    /// resolving on every replica from the next request on. 204 on success; 404 when the tenant has no such alias (public
    /// aliases cannot be deleted by tenants); 409 when it was moved concurrently; 400 for an invalid model or alias name.
    /// </remarks>
    /// <param name="model">The model's name.</param>
    /// <param name="alias">The alias to delete.</param>
    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        string model, string alias, AliasService aliases, CurrentTenant tenant, CancellationToken cancellationToken)
    {
        try
        {
            await aliases.DeleteAsync(model, alias, null, tenant.KeyId, cancellationToken);
            return TypedResults.NoContent();
        }
        catch (RegistryException e)
        {
            return ApiResults.Problem(e);
        }
    }

    private static async Task<AliasResponse> ReloadAsync(RegistryDbContext db, Guid id, CancellationToken cancellationToken) =>
        AliasResponse.From(await db.Aliases.AsNoTracking().Include(a => a.Checkpoint).SingleAsync(a => a.Id == id, cancellationToken));
}

/// <summary>Server-side behaviour of the alias contracts (the records live in <c>VlaCloud.Contracts</c>).</summary>
internal static class ModelContractExtensions
{
    extension(AliasResponse)
    {
        internal static AliasResponse From(CheckpointAlias a) =>
            new(a.Id, a.ModelName, a.Name, a.TenantId is null, a.CheckpointId, a.Checkpoint?.Version, a.UpdatedAt);
    }

    extension(AliasMoveResponse)
    {
        internal static AliasMoveResponse From(AliasMove m) =>
            new(m.Id, m.ModelName, m.Alias, m.FromCheckpointId, m.ToCheckpointId, m.MovedByKeyId, m.MovedAt, m.Reason);
    }
}
