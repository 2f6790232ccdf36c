using VlaCloud.Testing;

namespace VlaCloud.Deploy.Tests;

/// <summary>The committed OpenAPI document (kept equal to the served one by the Api tests) passes a third-party linter.</summary>
public sealed class OpenApiLintTests
{
    private const string Document = "openapi/vlacloud.v1.json";

    [Fact]
    public async Task Redocly_lint_finds_no_errors_in_the_committed_openapi_document()
    {
        Assert.True(File.Exists(Path.Combine(RepositoryRoot.Path, Document)), $"{Document} is missing");
        var (exitCode, output) = await ExternalTools.RunAsync(ExternalTools.Redocly,
            ["lint", Document, "--format=stylish", "--extends=recommended"]);
        Assert.True(exitCode == 0, $"redocly lint {Document} reported errors:\n{output}");
        Assert.DoesNotContain(" error ", output);
    }
}
