using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;
using VlaCloud.Registry;

namespace VlaCloud.Api.Hosting;

/// <summary>
/// What C# knows about the wire records and the generated schema does not say by itself: which members are
/// <c>required</c> (non-nullable and without a default), which strings may be null (only the nullable ones), the closed
/// string sets the server accepts or sends (as <c>enum</c>, without changing the wire types to C# enums, which would
/// change how unknown values are refused), and an example for each main request.
/// </summary>
internal sealed class WireSchemaFilter : ISchemaFilter
{
    private static readonly NullabilityInfoContext Nullability = new();

    private static readonly string[] JobStatuses = ["queued", "running", "succeeded", "failed", "cancelled"];
    private static readonly string[] UploadPurposes = ["dataset", "checkpoint", "checkpoint_import"];
    private static readonly string[] TenantScopes = [ApiScopes.Inference, ApiScopes.Training, ApiScopes.RegistryRead, ApiScopes.RegistryWrite];

    /// <summary>
    /// Closed string sets by record and JSON member; for an array member the set applies to its items. The handlers
    /// that check or produce these values are the source of truth; a member listed here that no longer exists fails
    /// document generation (and with it <c>OpenApiTests</c>).
    /// </summary>
    internal static readonly Dictionary<(Type Record, string Member), IReadOnlyList<string>> Enums = new()
    {
        [(typeof(ImageInput), "format")] = ["png", "jpeg", "raw"],
        [(typeof(ActOptions), "spatial")] = SpatialKinds.All,
        [(typeof(ActOptions), "resize")] = ["pad", "stretch"],
        [(typeof(SpatialOutput), "kind")] = SpatialKinds.All,
        [(typeof(FineTuningHyperparameters), "mode")] = ["st4vla", "vanilla"],
        [(typeof(FineTuningJobResponse), "status")] = JobStatuses,
        [(typeof(JobEventResponse), "level")] = ["info", "warn", "error"],
        [(typeof(JobEventResponse), "type")] = ["message", "metrics"],
        [(typeof(CreateUploadRequest), "purpose")] = UploadPurposes,
        [(typeof(UploadResponse), "purpose")] = UploadPurposes,
        [(typeof(UploadResponse), "status")] = ["pending", "completed", "cancelled", "expired"],
        [(typeof(DatasetResponse), "status")] = ["validating", "ready", "failed"],
        [(typeof(CheckpointImportResponse), "status")] = ["queued", "running", "succeeded", "failed"],
        [(typeof(CreateApiKeyRequest), "scopes")] = TenantScopes,
        [(typeof(ApiKeyResponse), "scopes")] = [.. TenantScopes, ApiScopes.Admin],
        [(typeof(CreateEmbodimentRequest), "simulator")] = [.. VlaCloud.Sim.SimEnvironments.All.Keys],
        [(typeof(EmbodimentResponse), "simulator")] = [.. VlaCloud.Sim.SimEnvironments.All.Keys],
    };

    /// <summary>Examples of the main request bodies, as a client would send them.</summary>
    internal static readonly Dictionary<Type, string> Examples = new()
    {
        [typeof(ActRequest)] = """
            {"checkpoint":"sim-demo@production",
             "observation":{"images":{"front":{"format":"jpeg","data":"/9j/4AAQSkZJRgABAQAAAQABAAD/2Q=="}},"state":[0.1,0.0,0.25,0.0,0.0,0.0,1.0],
                            "instruction":"pick the red cube and place it in the blue bowl"},
             "options":{"steps":10,"seed":42,"spatial":"point","timeout_ms":2000,"resize":"pad"}}
            """,
        [typeof(CreateFineTuningJobRequest)] = """
            {"base":"st4vla-base@production","dataset":"0b5e2f8c-3c1d-4a7e-9a51-2f6d8e4c1b90","model":"my-widowx",
             "hyperparameters":{"steps":2000,"batch_size":16,"learning_rate":0.0001,"mode":"st4vla"},
             "evaluate":true,"promote_to":"production","evaluation_episodes":50}
            """,
        [typeof(CreateUploadRequest)] = """
            {"filename":"pick_place.tar","bytes":734003200,
             "sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","purpose":"dataset",
             "mime_type":"application/x-tar","embodiment":"widowx"}
            """,
        [typeof(CompleteUploadRequest)] = """{"part_numbers":[1,2,3]}""",
        [typeof(RegisterCheckpointRequest)] = """
            {"model":"my-widowx","embodiment":"widowx",
             "artifact_sha256":"3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b",
             "config":{"image_size":224,"patch_size":16,"chunk_length":16,"max_action_dim":7,"max_state_dim":7},
             "normalization_stats":{"widowx":{
                "action":{"mean":[0.0,0.0,0.0,0.0,0.0,0.0,0.5],"std":[0.01,0.01,0.01,0.03,0.03,0.03,0.5],
                          "q01":[-0.03,-0.03,-0.03,-0.1,-0.1,-0.1,0.0],"q99":[0.03,0.03,0.03,0.1,0.1,0.1,1.0]},
                "state":{"mean":[0.3,0.0,0.1,0.0,0.0,0.0,0.5],"std":[0.05,0.1,0.05,0.1,0.1,0.5,0.5],
                         "q01":[0.2,-0.2,0.0,-0.3,-0.3,-1.0,0.0],"q99":[0.4,0.2,0.2,0.3,0.3,1.0,1.0]},
                "mode":"q99","binary_action_dims":[6]}},
             "metrics":{"eval_success_rate":0.82},
             "parent_checkpoint_id":"0190a3c4-7b2e-7d41-9f3a-5c6b8e2d1f07","dataset_id":"0b5e2f8c-3c1d-4a7e-9a51-2f6d8e4c1b90"}
            """,
        [typeof(CreateCheckpointImportRequest)] = """
            {"model":"internvla-m1-bridge","embodiments":{"oxe_bridge":"widowx"},
             "upload":"5d0c7a4e-8b1f-4f3a-b6a2-0e9d1c2b3a45","checkpoint_file":"steps_30000_pytorch_model.pt"}
            """,
        [typeof(SetAliasRequest)] = """{"checkpoint":"my-widowx@v3","reason":"evaluation success 0.82 on 50 episodes"}""",
        [typeof(RollbackAliasRequest)] = """{"reason":"v3 drops the cube on the real arm"}""",
        [typeof(CreateTenantRequest)] = """
            {"name":"acme-robotics","display_name":"ACME Robotics",
             "limits":{"requests_per_second":20,"burst":40,"max_concurrent_streams":4,
                       "monthly_compute_ms_quota":36000000,"storage_quota_bytes":107374182400}}
            """,
        [typeof(UpdateTenantRequest)] = """{"display_name":"ACME Robotics GmbH","limits":{"max_concurrent_streams":8,"inference_weight":2}}""",
        [typeof(CreateApiKeyRequest)] = """{"name":"lab-arm-1","scopes":["inference","registry:read"],"expires_at":"2027-06-30T00:00:00Z"}""",
        [typeof(CreateAdminKeyRequest)] = """{"name":"ops on-call","expires_at":null}""",
        [typeof(CreateEmbodimentRequest)] = """
            {"name":"widowx","action_dim":7,"state_dim":7,"action_space":"delta_eef+gripper",
             "cameras":[{"name":"front","width":224,"height":224}],"control_hz":5,"chunk_length":16,"binary_action_dims":[6]}
            """,
    };

    public void Apply(IOpenApiSchema schema, SchemaFilterContext context)
    {
        if (schema is not OpenApiSchema concrete || context.MemberInfo is not null || context.ParameterInfo is not null) return;
        if (Examples.TryGetValue(context.Type, out var example)) concrete.Example = JsonNode.Parse(example);
        // A nullable member of a record type is an allOf around the record's $ref marked nullable; OpenAPI 3.0 ignores
        // `nullable` without a sibling `type` (validators then refuse the null), so the wrapper says it is an object.
        foreach (var property in concrete.Properties?.Values ?? [])
            if (property is OpenApiSchema { AllOf.Count: > 0, Type: JsonSchemaType.Null } wrapper)
                wrapper.Type = JsonSchemaType.Object | JsonSchemaType.Null;
        if (concrete.Properties is not { Count: > 0 } properties || !context.Type.IsClass || context.Type.Namespace != typeof(ActRequest).Namespace) return;

        var members = context.Type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetCustomAttribute<JsonIgnoreAttribute>() is null)
            .ToDictionary(JsonName, StringComparer.Ordinal);
        var parameters = context.Type.GetConstructors().MaxBy(c => c.GetParameters().Length)?.GetParameters()
            .ToDictionary(p => p.Name!, StringComparer.Ordinal) ?? [];

        foreach (var (name, property) in properties)
        {
            if (!members.TryGetValue(name, out var member) || property is not OpenApiSchema propertySchema) continue;
            var nullable = IsNullable(member);
            var hasDefault = parameters.TryGetValue(member.Name, out var parameter)
                ? parameter.HasDefaultValue
                : member.CanWrite && member.GetCustomAttribute<System.Runtime.CompilerServices.RequiredMemberAttribute>() is null;
            if (!nullable)
            {
                if (propertySchema.Type is { } type) propertySchema.Type = type & ~JsonSchemaType.Null;
                if (!hasDefault) (concrete.Required ??= new HashSet<string>(StringComparer.Ordinal)).Add(name);
            }
        }

        foreach (var ((record, member), values) in Enums.Where(e => e.Key.Record == context.Type))
        {
            if (!properties.TryGetValue(member, out var property) || property is not OpenApiSchema target)
                throw new InvalidOperationException($"WireSchemaFilter.Enums names {record.Name}.{member}, which the schema does not have.");
            var holder = target.Items as OpenApiSchema ?? target;
            holder.Enum = values.Select(v => (JsonNode)JsonValue.Create(v)!).ToList();
            // A nullable member may also be null: the enum has to say so, or validators refuse null.
            if (holder.Type?.HasFlag(JsonSchemaType.Null) == true) holder.Enum.Add(null!);
        }
    }

    private static string JsonName(PropertyInfo property) =>
        property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? JsonNamingPolicy.CamelCase.ConvertName(property.Name);

    private static bool IsNullable(PropertyInfo property) =>
        Nullable.GetUnderlyingType(property.PropertyType) is not null ||
        (!property.PropertyType.IsValueType && Nullability.Create(property).ReadState != NullabilityState.NotNull);
}
