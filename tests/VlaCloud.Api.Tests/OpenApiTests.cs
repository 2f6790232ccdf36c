using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests;

[Collection(HostCollection.Name)]
public sealed class OpenApiTests(ServicesFixture services)
{
    /// <summary>The committed document, relative to the repository root.</summary>
    public const string CommittedDocument = "openapi/vlacloud.v1.json";

    /// <summary>Set to 1 to rewrite the committed document from the running app instead of comparing.</summary>
    public const string UpdateVariable = "VLACLOUD_UPDATE_OPENAPI";

    [Fact]
    public async Task Swagger_ui_and_the_document_are_served()
    {
        await using var app = new VlaCloudAppFactory(services);
        var client = app.CreateClient();

        var ui = await client.GetAsync("/swagger/index.html");
        Assert.Equal(HttpStatusCode.OK, ui.StatusCode);
        Assert.Equal("text/html", ui.Content.Headers.ContentType?.MediaType);

        var document = JsonNode.Parse(await client.GetStringAsync("/swagger/v1/swagger.json"))!;
        Assert.StartsWith("3.", (string)document["openapi"]!);
        Assert.NotNull(document["paths"]!["/readyz"]);
        Assert.NotNull(document["components"]!["securitySchemes"]!["ApiKey"]);
    }

    [Fact]
    public async Task The_committed_openapi_document_matches_the_running_app()
    {
        await using var app = new VlaCloudAppFactory(services);
        var served = Normalize(await app.CreateClient().GetStringAsync("/swagger/v1/swagger.json"));
        var path = Path.Combine(RepositoryRoot.Path, CommittedDocument);

        if (Environment.GetEnvironmentVariable(UpdateVariable) == "1")
        {
            await File.WriteAllTextAsync(path, served + "\n");
            return;
        }

        var committed = File.Exists(path) ? Normalize(await File.ReadAllTextAsync(path)) : "(missing)";
        Assert.True(committed == served,
            $"{CommittedDocument} differs from the document the app serves. Regenerate it with:\n" +
            $"  {UpdateVariable}=1 bash .ci/test --filter FullyQualifiedName~OpenApiTests\n" +
            "and commit the result.");
    }


    [Fact]
    public async Task Every_property_is_described_and_every_operation_documents_its_errors()
    {
        await using var app = new VlaCloudAppFactory(services);
        var document = JsonNode.Parse(await app.CreateClient().GetStringAsync("/swagger/v1/swagger.json"))!;
        var gaps = new List<string>();
        foreach (var (name, schema) in document["components"]!["schemas"]!.AsObject())
            foreach (var (property, body) in schema!["properties"]?.AsObject() ?? [])
                if (string.IsNullOrWhiteSpace((string?)body!["description"])) gaps.Add($"{name}.{property}: no description");
        foreach (var (path, item) in document["paths"]!.AsObject())
            foreach (var (method, operation) in item!.AsObject())
            {
                var responses = operation!["responses"]!.AsObject();
                var secured = responses.ContainsKey("401");
                if (secured && path.Contains('{') && !responses.ContainsKey("404")) gaps.Add($"{method} {path}: no 404");
                if (secured && method == "post" && responses.ContainsKey("101") == false && operation["parameters"]?.AsArray().Any(p => (string?)p!["name"] == "Idempotency-Key") == true
                    && !(responses.ContainsKey("409") && responses.ContainsKey("422"))) gaps.Add($"{method} {path}: Idempotency-Key without 409/422");
                if (responses.ContainsKey("429") && responses["429"]!["headers"]?["Retry-After"] is null) gaps.Add($"{method} {path}: 429 without Retry-After");
                foreach (var (status, response) in responses)
                    if (status[0] is '4' or '5' && status != "416" && response!["content"]?["application/problem+json"] is null && path != "/readyz")
                        gaps.Add($"{method} {path}: {status} is not a problem");
            }
        Assert.True(gaps.Count == 0, string.Join("\n", gaps));
    }

    [Fact]
    public async Task Every_parameter_is_described()
    {
        await using var app = new VlaCloudAppFactory(services);
        var document = JsonNode.Parse(await app.CreateClient().GetStringAsync("/swagger/v1/swagger.json"))!;
        var gaps = new List<string>();
        var count = 0;
        foreach (var (path, item) in document["paths"]!.AsObject())
            foreach (var (method, operation) in item!.AsObject())
                foreach (var parameter in operation!["parameters"]?.AsArray() ?? [])
                {
                    count++;
                    if (string.IsNullOrWhiteSpace((string?)parameter!["description"]))
                        gaps.Add($"{method} {path}: {parameter["in"]} parameter {parameter["name"]} has no description (a <param> doc on its handler)");
                }
        Assert.True(count > 50, $"only {count} parameters found: is the walker reading the right document?");
        Assert.True(gaps.Count == 0, string.Join("\n", gaps));
    }

    [Fact]
    public async Task Every_operation_has_a_summary_and_a_description_and_every_request_body_an_example()
    {
        await using var app = new VlaCloudAppFactory(services);
        var document = JsonNode.Parse(await app.CreateClient().GetStringAsync("/swagger/v1/swagger.json"))!;
        var schemas = document["components"]!["schemas"]!;
        var gaps = new List<string>();
        var (operations, bodies) = (0, 0);
        foreach (var (path, item) in document["paths"]!.AsObject())
            foreach (var (method, operation) in item!.AsObject())
            {
                operations++;
                if (string.IsNullOrWhiteSpace((string?)operation!["summary"])) gaps.Add($"{method} {path}: no summary (WithSummary)");
                // The access sentence is generated for every operation; the handler's <remarks> say what it does.
                var description = (string?)operation["description"] ?? "";
                if (!description.Contains("\n\n", StringComparison.Ordinal)) gaps.Add($"{method} {path}: no description (<remarks> on its handler)");
                // An error the words promise is one a generated client can expect: it has to be among the responses.
                foreach (var status in System.Text.RegularExpressions.Regex.Matches(description, @"\b[45]\d\d\b").Select(m => m.Value).Distinct())
                    if (operation["responses"]?[status] is null) gaps.Add($"{method} {path}: the description names {status}, the responses do not (ProducesProblem)");
                if (operation["requestBody"] is not { } body) continue;
                foreach (var (mediaType, content) in body["content"]!.AsObject())
                {
                    bodies++;
                    var schema = content!["schema"]!;
                    // Raw bytes have no example worth showing; what they are is the body's description.
                    if ((string?)schema["format"] == "binary")
                    {
                        if (string.IsNullOrWhiteSpace((string?)body["description"])) gaps.Add($"{method} {path}: {mediaType} body has no description");
                        continue;
                    }
                    var reference = (string?)(schema["$ref"] ?? schema["allOf"]?[0]?["$ref"]);
                    var example = content["example"] ?? content["examples"] ?? (reference is null ? schema["example"] : schemas[reference.Split('/')[^1]]?["example"]);
                    if (example is null) gaps.Add($"{method} {path}: {mediaType} body has no example (WireSchemaFilter.Examples)");
                }
            }
        Assert.True(operations > 40 && bodies > 10, $"only {operations} operations and {bodies} request bodies found: is the walker reading the right document?");
        Assert.True(gaps.Count == 0, string.Join("\n", gaps));
    }

    private static string Normalize(string json) =>
        JsonNode.Parse(json)!.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
}
