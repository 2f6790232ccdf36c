using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using VlaCloud.Api.Auth;
using VlaCloud.Api.RateLimiting;
using VlaCloud.Api.Validation;
using VlaCloud.Registry;
using VlaCloud.Registry.Checkpoints;
using VlaCloud.Registry.Entities;
using VlaCloud.Api.Keys;
using VlaCloud.Sim;

namespace VlaCloud.Api.Apis;

/// <summary><c>/v1/embodiments</c>: the robot bodies checkpoints drive.</summary>
public static class EmbodimentsApi
{
    /// <summary>Maps the group.</summary>
    public static IEndpointRouteBuilder MapEmbodimentsApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/embodiments").WithTags("Embodiments").RequireTenantRateLimit();
        var read = group.MapGroup("").RequireAuthorization(ApiScopes.RegistryRead);
        var write = group.MapGroup("").RequireAuthorization(ApiScopes.RegistryWrite);

        read.MapGet("", ListAsync).WithName("ListEmbodiments")
            .WithSummary("Lists the caller's embodiments and the public ones, newest first.");
        read.MapGet("/{id:guid}", GetAsync).WithName("GetEmbodiment")
            .WithSummary("Gets one embodiment.");
        write.MapPost("", CreateAsync).WithName("CreateEmbodiment")
            .WithSummary("Creates an embodiment owned by the caller's tenant.");
        return app;
    }

    /// <remarks>
    /// The caller's tenant's embodiments and the public ones (<c>is_public</c>), newest first, paged with <c>after</c>
    /// and <c>limit</c> (400 for a limit outside 1–100).
    /// </remarks>
    private static async Task<Results<Ok<ListPage<EmbodimentResponse>>, ValidationProblem>> ListAsync(
        RegistryDbContext db, Guid? after, int? limit, CancellationToken cancellationToken)
    {
        if (ApiResults.CheckLimit(limit, out var take) is { } invalid) return invalid;
        var query = db.Embodiments.AsNoTracking();
        if (after is { } cursor) query = query.Where(e => e.Id < cursor);
        var rows = await query.OrderByDescending(e => e.Id).Take(take + 1).ToListAsync(cancellationToken);
        return TypedResults.Ok(ApiResults.Page(rows, take, e => e.Id, EmbodimentResponse.From));
    }

    /// <remarks>
    /// An embodiment of the caller's tenant or a public one: its action and state sizes and names, cameras, control
    /// rate and chunk length. 404 for any other id, another tenant's included.
    /// </remarks>
    /// <param name="id">The embodiment's id.</param>
    private static async Task<Results<Ok<EmbodimentResponse>, ProblemHttpResult>> GetAsync(
        Guid id, RegistryDbContext db, CancellationToken cancellationToken) =>
        await db.Embodiments.AsNoTracking().FirstOrDefaultAsync(e => e.Id == id, cancellationToken) is { } embodiment
            ? TypedResults.Ok(EmbodimentResponse.From(embodiment))
            : ApiResults.NotFound($"Embodiment {id}");

    /// <remarks>
    /// Creates an embodiment owned by the caller's tenant and answers 201 with it and its <c>Location</c>. 400 when a
    /// field is out of range (name a slug; <c>action_dim</c> 1–64, <c>state_dim</c> 0–256, one or more cameras of
    /// 1–4096 pixels with unique names, <c>control_hz</c> in (0, 1000], <c>chunk_length</c> 1–256, one name per
    /// dimension in <c>action_names</c>/<c>state_names</c>); 409 when the tenant already has an embodiment of that name,
    /// or a public embodiment has it (a private one would silently take over every reference to the public one).
    /// </remarks>
    private static async Task<Results<Created<EmbodimentResponse>, ValidationProblem, ProblemHttpResult>> CreateAsync(
        CreateEmbodimentRequest request, RegistryDbContext db, CurrentTenant tenant, TimeProvider clock, ApiKeyCache invalidations, CancellationToken cancellationToken)
    {
        if (request.Validate(db) is { Count: > 0 } errors) return TypedResults.ValidationProblem(errors);
        // A tenant's embodiment may not shadow a public one: names resolve tenant-first, so a private 'sim-tabletop' would
        // silently take over every upload, checkpoint and model@vN that meant the public one.
        if (await db.Embodiments.AnyAsync(e => e.TenantId == null && e.Name == request.Name, cancellationToken))
            return TypedResults.Problem(statusCode: 409, title: "Conflict",
                detail: $"name: '{request.Name}' is the name of a public embodiment; use the public one by that name, or give yours another name.",
                extensions: new Dictionary<string, object?> { ["field"] = "name", ["public_embodiment"] = request.Name });
        var embodiment = new Embodiment
        {
            TenantId = tenant.TenantId,
            Name = request.Name,
            Description = request.Description,
            ActionDim = request.ActionDim,
            StateDim = request.StateDim,
            ActionSpace = request.ActionSpace,
            ActionNames = request.ActionNames ?? [],
            StateNames = request.StateNames ?? [],
            Cameras = request.Cameras.Select(c => new EmbodimentCamera { Name = c.Name, Width = c.Width, Height = c.Height }).ToList(),
            ControlHz = request.ControlHz,
            ChunkLength = request.ChunkLength,
            Simulator = request.Simulator,
            BinaryActionDims = request.BinaryActionDimsOrDefault(),
            CreatedAt = clock.GetUtcNow(),
        };
        db.Embodiments.Add(embodiment);
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException e) when (e.IsUniqueViolation())
        {
            return TypedResults.Problem(statusCode: 409, title: "Conflict", detail: $"An embodiment named '{request.Name}' already exists.");
        }
        // Embodiment names take part in resolving model@vN references: remembered resolutions go.
        await invalidations.PublishResolutionsChangedAsync();
        return TypedResults.Created($"/v1/embodiments/{embodiment.Id}", EmbodimentResponse.From(embodiment));
    }
}

/// <summary>Server-side behaviour of the embodiment contracts (the records live in <c>VlaCloud.Contracts</c>).</summary>
internal static class EmbodimentContractExtensions
{
    extension(CreateEmbodimentRequest request)
    {
        internal Dictionary<string, string[]> Validate(RegistryDbContext db)
        {
            var errors = new Dictionary<string, string[]>();
            var nameLength = db.MaxLength((Embodiment e) => e.Name);
            if (!Names.IsSlug(request.Name, nameLength)) errors["name"] = [$"name must be 1-{nameLength} characters of a-z, 0-9, '.', '_' or '-'."];
            errors.CheckLength(db, (Embodiment e) => e.Description, "description", request.Description);
            if (request.ActionDim is < 1 or > 64) errors["action_dim"] = ["action_dim must be between 1 and 64."];
            if (request.StateDim is < 0 or > 256) errors["state_dim"] = ["state_dim must be between 0 and 256."];
            if (string.IsNullOrWhiteSpace(request.ActionSpace)) errors["action_space"] = ["action_space is required."];
            else errors.CheckLength(db, (Embodiment e) => e.ActionSpace, "action_space", request.ActionSpace);
            var cameras = request.Cameras;
            if (cameras is null || cameras.Count == 0) errors["cameras"] = ["at least one camera is required."];
            else if (cameras.Any(c => c is null)) errors["cameras"] = ["cameras must not contain null."];
            else if (cameras.Any(c => string.IsNullOrWhiteSpace(c.Name) || c.Name.Length > MaxLabelLength || c.Width is < 1 or > 4096 || c.Height is < 1 or > 4096))
                errors["cameras"] = [$"each camera needs a name of 1-{MaxLabelLength} characters and a size of 1-4096 pixels."];
            else if (cameras.Select(c => c.Name).Distinct().Count() != cameras.Count) errors["cameras"] = ["camera names must be unique."];
            if (!(request.ControlHz > 0 && request.ControlHz <= 1000)) errors["control_hz"] = ["control_hz must be in (0, 1000]."];
            if (request.ChunkLength is < 1 or > 256) errors["chunk_length"] = ["chunk_length must be between 1 and 256."];
            CheckNames(errors, "action_names", request.ActionNames, request.ActionDim, "action");
            CheckNames(errors, "state_names", request.StateNames, request.StateDim, "state");
            if (request.BinaryActionDims is { } binary)
            {
                if (binary.Length > request.ActionDim || binary.Any(d => d < 0 || d >= request.ActionDim))
                    errors["binary_action_dims"] = ["each of binary_action_dims must be an action dimension (0 to action_dim - 1)."];
                else if (binary.Distinct().Count() != binary.Length) errors["binary_action_dims"] = ["binary_action_dims must not repeat a dimension."];
            }
            if (request.Simulator is { } simulator)
            {
                // Claiming an environment is what turns on closed-loop evaluation: it must exist and be able to drive this body.
                if (SimEnvironments.Find(simulator) is not { } robot)
                    errors["simulator"] = [$"simulator must be one of the built-in environments ({string.Join(", ", SimEnvironments.All.Keys)}), or omitted for a real robot."];
                else if (cameras is { Count: > 0 } && cameras.All(c => c is not null)
                         && SimEnvironments.LayoutMismatch(robot, request.ActionDim, request.StateDim, cameras.Select(c => (c.Name, c.Width, c.Height))) is { } mismatch)
                    errors["simulator"] = [$"the {simulator} environment cannot drive this embodiment: {mismatch}."];
            }
            return errors;
        }

        /// <summary>
        /// The binary action dimensions to store: as given, or, when the request names none, those whose action name
        /// contains <c>gripper</c> (a creation-time default the response shows; the stored list is what training reads).
        /// </summary>
        internal int[] BinaryActionDimsOrDefault() =>
            request.BinaryActionDims is { } given
                ? [.. given.Order()]
                : [.. (request.ActionNames ?? []).Select((name, i) => (name, i))
                    .Where(x => x.name is not null && x.name.Contains("gripper", StringComparison.OrdinalIgnoreCase)).Select(x => x.i)];
    }

    /// <summary>
    /// Longest camera, action or state name. They are stored inside JSON and array columns, which the EF model gives no
    /// length; they are observation keys and labels, never prose.
    /// </summary>
    private const int MaxLabelLength = 100;

    private static void CheckNames(Dictionary<string, string[]> errors, string field, string[]? names, int dimensions, string what)
    {
        if (names is not { Length: > 0 }) return;
        if (names.Length != dimensions) errors[field] = [$"{field} needs one name per {what} dimension."];
        else if (names.Any(n => n is null)) errors[field] = [$"{field} must not contain null."];
        else if (names.Any(n => n.Length > MaxLabelLength)) errors[field] = [$"each of {field} must be at most {MaxLabelLength} characters."];
    }

    extension(EmbodimentResponse)
    {
        internal static EmbodimentResponse From(Embodiment e) => new(
            e.Id, e.Name, e.TenantId is null, e.Description, e.ActionDim, e.StateDim, e.ActionSpace, e.ActionNames, e.StateNames,
            e.Cameras.Select(c => new CameraDto(c.Name, c.Width, c.Height)).ToList(), e.ControlHz, e.ChunkLength, e.Simulator, e.BinaryActionDims,
            e.CreatedAt);
    }
}
