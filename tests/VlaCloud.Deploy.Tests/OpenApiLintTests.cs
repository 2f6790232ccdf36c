using VlaCloud.Testing;

namespace VlaCloud.Deploy.Tests;

/// <summary>
/// The committed OpenAPI document (kept equal to the served one by the Api tests) passes a third-party linter with
/// neither errors nor warnings, under the repository's redocly.yaml (the recommended ruleset; the occurrences that are
/// not defects are listed with their reasons in .redocly.lint-ignore.yaml).
/// </summary>
public sealed class OpenApiLintTests
{
    private const string Document = "openapi/vlacloud.v1.json";

    [Fact]
    public async Task Redocly_lint_finds_no_errors_and_no_warnings_in_the_committed_openapi_document()
    {
        Assert.True(File.Exists(Path.Combine(RepositoryRoot.Path, Document)), $"{Document} is missing");
        var (exitCode, output) = await ExternalTools.RunAsync(ExternalTools.Redocly,
            ["lint", Document, "--format=stylish"]);
        Assert.True(exitCode == 0, $"redocly lint {Document} reported errors:\n{output}");
        Assert.DoesNotContain(" error ", output);
        Assert.DoesNotContain(" warning ", output);
    }
}
