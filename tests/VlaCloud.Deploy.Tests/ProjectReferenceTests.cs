using System.Text.RegularExpressions;
using System.Xml.Linq;
using VlaCloud.Testing;

namespace VlaCloud.Deploy.Tests;

/// <summary>
/// The project graph follows the arrows written in docs/architecture.md: a reference the document does not list fails
/// here, so the direction of dependencies changes in the document (and its review) before it changes in a project.
/// </summary>
public sealed partial class ProjectReferenceTests
{
    private const string Document = "docs/architecture.md";

    [Fact]
    public void Every_project_reference_is_an_arrow_of_the_architecture_document()
    {
        var allowed = AllowedReferences();
        var projects = Projects().ToList();
        Assert.NotEmpty(projects);

        var violations = new List<string>();
        foreach (var (name, references) in projects)
        {
            if (!allowed.TryGetValue(name, out var mayReference))
            {
                violations.Add($"{name} is not in {Document}'s table");
                continue;
            }
            violations.AddRange(references.Where(r => !mayReference.Contains(r)).Select(r => $"{name} -> {r}"));
        }
        Assert.True(violations.Count == 0, $"references against {Document}:\n{string.Join('\n', violations)}");
    }

    [Fact]
    public void The_architecture_document_lists_no_project_that_does_not_exist()
    {
        var existing = Projects().Select(p => p.Name).ToHashSet();
        var stale = AllowedReferences().Keys.Where(name => !existing.Contains(name)).ToList();
        Assert.True(stale.Count == 0, $"{Document} names projects that do not exist: {string.Join(", ", stale)}");
    }

    /// <summary>Rows of the table between the document's <c>references:begin</c>/<c>end</c> markers.</summary>
    private static Dictionary<string, HashSet<string>> AllowedReferences()
    {
        var text = File.ReadAllText(Path.Combine(RepositoryRoot.Path, Document));
        var begin = text.IndexOf("<!-- references:begin -->", StringComparison.Ordinal);
        var end = text.IndexOf("<!-- references:end -->", StringComparison.Ordinal);
        Assert.True(begin >= 0 && end > begin, $"{Document} has no references table markers");

        var table = new Dictionary<string, HashSet<string>>();
        foreach (var line in text[begin..end].Split('\n'))
        {
            var cells = line.Split('|');
            if (cells.Length < 4) continue;
            var project = ProjectName().Match(cells[1]);
            if (!project.Success) continue;
            table[project.Value] = ProjectName().Matches(cells[2]).Select(m => m.Value).ToHashSet();
        }
        Assert.NotEmpty(table);
        return table;
    }

    private static IEnumerable<(string Name, IReadOnlyList<string> References)> Projects()
    {
        var files = Directory.GetFiles(Path.Combine(RepositoryRoot.Path, "src"), "*.csproj", SearchOption.AllDirectories)
            .Append(Path.Combine(RepositoryRoot.Path, "migrations", "VlaCloud.Migrations.csproj"));
        foreach (var file in files)
        {
            var references = XDocument.Load(file).Descendants("ProjectReference")
                .Select(e => Path.GetFileNameWithoutExtension(e.Attribute("Include")!.Value.Replace('\\', '/')))
                .ToList();
            yield return (Path.GetFileNameWithoutExtension(file), references);
        }
    }

    [GeneratedRegex(@"VlaCloud\.[A-Za-z]+")]
    private static partial Regex ProjectName();
}
