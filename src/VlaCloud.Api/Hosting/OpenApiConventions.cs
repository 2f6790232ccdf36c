using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.ModelBinding;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.OpenApi;
using VlaCloud.Api.Idempotency;
using VlaCloud.Api.RateLimiting;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace VlaCloud.Api.Hosting;

/// <summary>
/// What makes the generated OpenAPI document pass a linter (<c>redocly lint</c>, run by the deployment tests)
/// without each endpoint group repeating it: contact and licence, a server, tag descriptions, and RFC 9457
/// problem-details responses for the errors every protected operation can answer.
/// </summary>
internal static class OpenApiConventions
{
    /// <summary>Descriptions of the tags endpoint groups use; a new group adds its tag here.</summary>
    public static readonly IReadOnlyDictionary<string, string> TagDescriptions = new Dictionary<string, string>
    {
        ["System"] = "Liveness and readiness probes for load balancers and Kubernetes.",
        ["Embodiments"] = "Robot embodiments: action and state spaces, cameras, normalisation statistics.",
        ["Checkpoints"] = "The versioned checkpoint registry of a tenant, with public base checkpoints.",
        ["Models"] = "Models, their versions and aliases; promote and roll back.",
        ["Usage"] = "Per-tenant usage counters.",
        ["Admin"] = "Tenant and API key administration (admin scope).",
        ["Inference"] = "Actions from observations: REST calls and closed-loop WebSocket sessions (including the openpi protocol).",
        ["Datasets"] = "LeRobot datasets: register an uploaded archive, validate it, read its statistics.",
        ["Uploads"] = "Resumable multi-part uploads of large files.",
        ["Fine-tuning"] = "Fine-tuning jobs, their events and checkpoints.",
        ["API keys"] = "The calling tenant's own API keys (listing; keys are created and revoked through /v1/admin).",
    };

    public static void AddVlaCloudConventions(this SwaggerGenOptions swagger)
    {
        // Relative: the API is wherever the document was fetched from (a laptop, an Ingress host).
        swagger.AddServer(new OpenApiServer { Url = "/", Description = "The host serving this document" });
        swagger.DocumentFilter<InfoAndTagsFilter>();
        swagger.OperationFilter<ProblemResponsesFilter>();
        swagger.OperationFilter<PaginationParametersFilter>();
        swagger.OperationFilter<RawBodyFilter>();
        swagger.SchemaFilter<ProblemDetailsDescriptionsFilter>();
        swagger.SchemaFilter<WireSchemaFilter>();
        // A member whose type is another record is a $ref, which OpenAPI 3.0 gives no description; wrapped in allOf it
        // keeps the member's XML doc.
        swagger.UseAllOfToExtendReferenceSchemas();
    }

    /// <summary>
    /// Completes every operation's description with who may call it. Runs after the XML comments filter, which puts the
    /// handler's <c>&lt;remarks&gt;</c> (what the operation does, its notable behaviour and why it refuses) into the
    /// description; call it after <c>IncludeXmlComments</c>.
    /// </summary>
    public static void AddOperationDescriptions(this SwaggerGenOptions swagger) => swagger.OperationFilter<OperationDescriptionFilter>();

    /// <summary>
    /// Appends the key an operation needs, read off the endpoint's authorization metadata (the policies that enforce it),
    /// so the words cannot drift from the rule; and the tenant rate limit where it applies.
    /// </summary>
    private sealed class OperationDescriptionFilter : IOperationFilter
    {
        public void Apply(OpenApiOperation operation, OperationFilterContext context)
        {
            var metadata = context.ApiDescription.ActionDescriptor.EndpointMetadata;
            var policies = metadata.OfType<IAuthorizeData>().Select(a => a.Policy).OfType<string>().Distinct(StringComparer.Ordinal).ToList();
            var anonymous = metadata.OfType<IAllowAnonymous>().Any() || policies.Count == 0;
            // The document requires a key everywhere; an empty list lifts that for this operation, so a generated client
            // does not send (or demand) a key for the probes.
            if (anonymous) operation.Security = [];
            var access = anonymous
                ? "No API key needed."
                : "Needs " + string.Join(" and ", policies.Select(policy => policy switch
                {
                    Auth.ScopePolicies.Tenant => "any API key of a tenant (whatever its scopes)",
                    VlaCloud.Registry.ApiScopes.Admin => "a platform administrator's key (scope `admin`, no tenant)",
                    _ => $"a tenant's API key with the `{policy}` scope",
                })) + ".";
            if (metadata.OfType<TenantRateLimitMetadata>().Any())
                access += policies.Contains(VlaCloud.Registry.ApiScopes.Admin)
                    ? " Each call takes a token from the request-rate bucket the administrators' keys share (RateLimit headers on the answer)."
                    : " Each call takes a token from the tenant's and the key's request-rate buckets (RateLimit headers on the answer).";
            operation.Description = string.Join("\n\n", [.. Paragraphs(operation.Description), access]);
        }

        /// <summary>
        /// The remarks' paragraphs, each on one line: the XML comment's line breaks are the source file's wrapping, which
        /// would otherwise reach generated clients' doc comments as ragged lines.
        /// </summary>
        private static IEnumerable<string> Paragraphs(string? text) =>
            System.Text.RegularExpressions.Regex.Split(text ?? "", @"\n\s*\n")
                .Select(paragraph => string.Join(' ', paragraph.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)))
                .Where(paragraph => paragraph.Length > 0);
    }

    /// <summary>RFC 9457's field meanings on the framework's problem types, which carry no XML docs of their own.</summary>
    private sealed class ProblemDetailsDescriptionsFilter : ISchemaFilter
    {
        private static readonly Dictionary<string, string> Fields = new(StringComparer.Ordinal)
        {
            ["type"] = "A URI reference identifying the problem type (RFC 9457).",
            ["title"] = "A short, human-readable summary of the problem type.",
            ["status"] = "The HTTP status code of this response.",
            ["detail"] = "What went wrong in this occurrence, for a person to read.",
            ["instance"] = "A URI reference identifying this occurrence.",
            ["errors"] = "Problems per request field: the field's path (e.g. observation.images.front) and its messages.",
            ["code"] = "The problem type's code, the last segment of `type` (e.g. `rate_limited`): what clients match on.",
        };

        public void Apply(IOpenApiSchema schema, SchemaFilterContext context)
        {
            if (!typeof(ProblemDetails).IsAssignableFrom(context.Type) || schema.Properties is null) return;
            foreach (var (name, property) in schema.Properties)
                if (property is OpenApiSchema { Description: null } concrete && Fields.TryGetValue(name, out var description))
                    concrete.Description = description;
        }
    }

    /// <summary>
    /// The list routes' <c>after</c> and <c>limit</c> mean the same everywhere (<see cref="Apis.ApiResults"/> pages them),
    /// so they are described once here; a handler's own <c>&lt;param&gt;</c> doc (e.g. a sequence-number cursor) wins.
    /// </summary>
    private sealed class PaginationParametersFilter : IOperationFilter
    {
        public void Apply(OpenApiOperation operation, OperationFilterContext context)
        {
            foreach (var parameter in operation.Parameters?.OfType<OpenApiParameter>() ?? [])
            {
                if (parameter is not { In: ParameterLocation.Query, Description: null or "" }) continue;
                if (parameter.Name == "limit")
                    parameter.Description = $"Page size: 1 to {Apis.ApiResults.MaxLimit} items (default {Apis.ApiResults.DefaultLimit}).";
                else if (parameter.Name == "after" && parameter.Schema?.Format == "uuid")
                    parameter.Description = "Cursor: the previous page's `last_id`; this page starts after that item (omit for the first page).";
            }
        }
    }

    /// <summary>
    /// Says what a raw-bytes body (<c>Accepts&lt;Stream&gt;</c>, the artifact and upload-part routes) is, which the schema
    /// (<c>string</c>, <c>binary</c>) does not: clients generated from the document otherwise tend to send a form. Such a
    /// body gets no example; the operation's description says what the bytes must be.
    /// </summary>
    private sealed class RawBodyFilter : IOperationFilter
    {
        public void Apply(OpenApiOperation operation, OperationFilterContext context)
        {
            if (operation.RequestBody is not OpenApiRequestBody { Description: null or "" } body || body.Content is null) return;
            if (body.Content.Values.Any(media => media.Schema is OpenApiSchema { Format: "binary" }))
                body.Description = "The bytes themselves as the request body (`application/octet-stream`): not multipart form data, not base64.";
        }
    }

    private sealed class InfoAndTagsFilter : IDocumentFilter
    {
        public void Apply(OpenApiDocument document, DocumentFilterContext context)
        {
            document.Info.Contact ??= new OpenApiContact { Name = "VlaCloud" };
            document.Info.License ??= new OpenApiLicense { Name = "Proprietary" };

            var used = context.ApiDescriptions
                .SelectMany(d => d.ActionDescriptor.EndpointMetadata.OfType<ITagsMetadata>().SelectMany(t => t.Tags))
                .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal);
            document.Tags = new HashSet<OpenApiTag>(used.Select(tag => new OpenApiTag
            {
                Name = tag,
                Description = TagDescriptions.GetValueOrDefault(tag),
            }));
        }
    }

    /// <summary>
    /// Operations whose handlers answer 409 (a name taken, a state that forbids the change, a concurrent update):
    /// read off the handlers, which return <c>Conflict</c> problems or registry conflicts.
    /// </summary>
    internal static readonly HashSet<string> ConflictOperations = new(StringComparer.Ordinal)
    {
        "CreateTenant", "UpdateTenant", "RevokeApiKey", "RevokeAdminKey", "CreateEmbodiment", "RegisterCheckpoint",
        "CreateFineTuningJob", "CancelFineTuningJob", "CreateCheckpointImport", "PutUploadPart", "CompleteUpload",
        "CancelUpload", "SetAlias", "DeleteAlias", "RollbackAlias",
    };

    /// <summary>
    /// The documented errors of every operation: 401/403 where a key is needed, 404 where the path names a resource,
    /// 409 where the handler can conflict, 429 with <c>Retry-After</c> and 503 where the tenant rate limit applies (and
    /// the RateLimit headers on its answers), <c>Idempotency-Key</c> with its 409/422 on the POSTs that honour it, and
    /// 101 on WebSocket routes.
    /// </summary>
    private sealed class ProblemResponsesFilter : IOperationFilter
    {
        public void Apply(OpenApiOperation operation, OperationFilterContext context)
        {
            var description = context.ApiDescription;
            var metadata = description.ActionDescriptor.EndpointMetadata;
            operation.Responses ??= [];
            if (operation.Responses.TryGetValue("101", out var upgrade) && upgrade is OpenApiResponse switching)
                switching.Description = "Switching Protocols: the WebSocket session is open; messages as docs/acting.md describes.";
            if (metadata.OfType<IAllowAnonymous>().Any() || !metadata.OfType<IAuthorizeData>().Any()) return;

            var hasPath = description.ParameterDescriptions.Any(p => p.Source == BindingSource.Path);
            foreach (var (status, (meaning, type)) in DeclaredProblems)
                if (operation.Responses.TryGetValue(status, out var declared) && IsBare(declared) && !(status == "404" && hasPath))
                    AddProblem(operation, context, status, meaning, type);

            AddProblem(operation, context, "401", "The API key is missing, unknown, expired or revoked.", ProblemTypes.Unauthorized);
            AddProblem(operation, context, "403", "The API key lacks the scope this operation needs.", ProblemTypes.Forbidden);
            if (hasPath)
                AddProblem(operation, context, "404", "Nothing the path names exists for the calling tenant.", ProblemTypes.NotFound);
            if (operation.OperationId is { } id && ConflictOperations.Contains(id))
                AddProblem(operation, context, "409", "The resource's state does not allow this (a name taken, a state that forbids the change, a concurrent update).", ProblemTypes.Conflict);

            if (string.Equals(description.HttpMethod, "POST", StringComparison.OrdinalIgnoreCase) && !metadata.OfType<SkipIdempotencyAttribute>().Any())
            {
                (operation.Parameters ??= []).Add(new OpenApiParameter
                {
                    Name = IdempotencyMiddleware.HeaderName,
                    In = ParameterLocation.Header,
                    Required = false,
                    Description = "A client-chosen key (at most 255 characters) that makes a retry safe: the first response is stored " +
                                  "for 24 h and replayed (with `Idempotent-Replayed: true`) for a retry with the same key, method, path and body.",
                    Schema = new OpenApiSchema { Type = JsonSchemaType.String, MaxLength = 255 },
                });
                AddProblem(operation, context, "409", "A request with the same Idempotency-Key is still running.", ProblemTypes.IdempotencyInProgress);
                AddProblem(operation, context, "422", "The Idempotency-Key was used for another request (method, path or body).", ProblemTypes.IdempotencyKeyReused);
            }

            if (metadata.OfType<TenantRateLimitMetadata>().Any())
            {
                foreach (var (status, response) in operation.Responses)
                    if (status.StartsWith('2') && response is OpenApiResponse ok) AddRateLimitHeaders(ok);
                AddProblem(operation, context, "429", "The tenant's or key's request rate (or another tenant limit) is exceeded; retry after Retry-After.", ProblemTypes.RateLimited);
                AddRateLimitHeaders((OpenApiResponse)operation.Responses["429"]);
                AddRetryAfter((OpenApiResponse)operation.Responses["429"]);
                AddProblem(operation, context, "503", "A dependency (Redis, Postgres) does not answer, or inference is busy; retry after Retry-After.", ProblemTypes.Unavailable);
                AddRetryAfter((OpenApiResponse)operation.Responses["503"]);
            }
        }

        /// <summary>
        /// What a problem status an endpoint declares (<c>ProducesProblem</c>) means wherever it is declared; the
        /// operation's description says which causes lead to it on that route.
        /// </summary>
        private static readonly Dictionary<string, (string Meaning, string Type)> DeclaredProblems = new(StringComparer.Ordinal)
        {
            ["400"] = ("The request is invalid: `detail` says what to fix.", ProblemTypes.Validation),
            ["404"] = ("Something the request names (in its query or body) does not exist for the calling tenant.", ProblemTypes.NotFound),
            ["413"] = ("The content does not fit the tenant's storage quota (the problem carries `storage_used_bytes`, `storage_quota_bytes` " +
                       "and `needed_bytes`), or the body is larger than the route accepts.", ProblemTypes.StorageQuotaExceeded),
            ["422"] = ("The request is well-formed, but what it names cannot be used: `detail` says why.", ProblemTypes.Unprocessable),
            ["504"] = ("The deadline (the request's `timeout_ms` or the server's default) passed before the result was ready.", ProblemTypes.DeadlineExceeded),
        };

        /// <summary>A problem response as the endpoint declared it: no example yet, so no words of ours either.</summary>
        private static bool IsBare(IOpenApiResponse response) =>
            response.Content?.TryGetValue("application/problem+json", out var media) == true && media.Example is null;

        private static void AddRateLimitHeaders(OpenApiResponse response)
        {
            response.Headers ??= new Dictionary<string, IOpenApiHeader>();
            response.Headers.TryAdd("RateLimit-Policy", new OpenApiHeader
            {
                Description = "The limit applied (IETF draft-ietf-httpapi-ratelimit-headers-09): `\"requests\";q=BURST`, the token bucket's size " +
                              "(`\"compute\";q=MS` for the monthly compute quota).",
                Schema = new OpenApiSchema { Type = JsonSchemaType.String },
                Example = JsonValue.Create("\"requests\";q=100"),
            });
            response.Headers.TryAdd("RateLimit", new OpenApiHeader
            {
                Description = "What is left of it: `\"requests\";r=REMAINING;t=SECONDS`, the tokens left and the seconds until the bucket is full again.",
                Schema = new OpenApiSchema { Type = JsonSchemaType.String },
                Example = JsonValue.Create("\"requests\";r=42;t=17"),
            });
        }

        private static void AddRetryAfter(OpenApiResponse response)
        {
            response.Headers ??= new Dictionary<string, IOpenApiHeader>();
            response.Headers.TryAdd("Retry-After", new OpenApiHeader
            {
                Description = "Seconds to wait before retrying.",
                Schema = new OpenApiSchema { Type = JsonSchemaType.Integer, Minimum = "1" },
            });
        }

        private static void AddProblem(OpenApiOperation operation, OperationFilterContext context, string status, string description, string type)
        {
            var schema = context.SchemaGenerator.GenerateSchema(typeof(ProblemDetails), context.SchemaRepository);
            var code = int.Parse(status, System.Globalization.CultureInfo.InvariantCulture);
            var example = new JsonObject
            {
                ["type"] = type, ["title"] = ReasonPhrases.GetReasonPhrase(code), ["status"] = code, ["detail"] = description,
                ["code"] = ProblemTypes.CodeOf(type),
            };
            if (operation.Responses!.TryGetValue(status, out var existing))
            {
                // Declared by the endpoint (ProducesProblem) with the framework's reason phrase only: words and an example.
                // Described already (one status, two causes: a conflicting state and a running retry, say): both causes.
                if (existing is OpenApiResponse declared)
                {
                    if (IsBare(declared))
                    {
                        declared.Description = description;
                        declared.Content!["application/problem+json"].Example = example;
                    }
                    else if (declared.Description is null or "") declared.Description = description;
                    else if (!declared.Description.Contains(description, StringComparison.Ordinal)) declared.Description += " Or: " + description;
                }
                return;
            }
            operation.Responses[status] = new OpenApiResponse
            {
                Description = description,
                Content = new Dictionary<string, OpenApiMediaType>
                {
                    ["application/problem+json"] = new() { Schema = schema, Example = example },
                },
            };
        }
    }
}
