using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Mvc;
using Microsoft.OpenApi;
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
        swagger.SchemaFilter<ProblemDetailsDescriptionsFilter>();
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
        };

        public void Apply(IOpenApiSchema schema, SchemaFilterContext context)
        {
            if (!typeof(ProblemDetails).IsAssignableFrom(context.Type) || schema.Properties is null) return;
            foreach (var (name, property) in schema.Properties)
                if (property is OpenApiSchema { Description: null } concrete && Fields.TryGetValue(name, out var description))
                    concrete.Description = description;
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

    private sealed class ProblemResponsesFilter : IOperationFilter
    {
        public void Apply(OpenApiOperation operation, OperationFilterContext context)
        {
            var metadata = context.ApiDescription.ActionDescriptor.EndpointMetadata;
            if (metadata.OfType<IAllowAnonymous>().Any() || !metadata.OfType<IAuthorizeData>().Any()) return;

            operation.Responses ??= [];
            AddProblem(operation, context, "401", "The API key is missing, unknown, expired or revoked.");
            AddProblem(operation, context, "403", "The API key lacks the scope this operation needs.");
        }

        private static void AddProblem(OpenApiOperation operation, OperationFilterContext context, string status, string description)
        {
            if (operation.Responses!.ContainsKey(status)) return;
            var schema = context.SchemaGenerator.GenerateSchema(typeof(ProblemDetails), context.SchemaRepository);
            operation.Responses[status] = new OpenApiResponse
            {
                Description = description,
                Content = new Dictionary<string, OpenApiMediaType>
                {
                    ["application/problem+json"] = new() { Schema = schema, Example = JsonNode.Parse(
                        $$"""{"type":"https://tools.ietf.org/html/rfc9110#section-15.5.{{(status == "401" ? 2 : 4)}}","title":"{{(status == "401" ? "Unauthorized" : "Forbidden")}}","status":{{status}},"detail":"{{description}}"}""") },
                },
            };
        }
    }
}
