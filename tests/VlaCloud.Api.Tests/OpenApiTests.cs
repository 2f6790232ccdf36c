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

    private static string Normalize(string json) =>
        JsonNode.Parse(json)!.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
}
