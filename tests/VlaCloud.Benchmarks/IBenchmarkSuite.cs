namespace VlaCloud.Benchmarks;

/// <summary>
/// One benchmark suite, run by name: <c>dotnet run -c Release --project tests/VlaCloud.Benchmarks -- NAME</c>.
/// A suite measures ratios within one run (never against a fixed time) and reports through
/// <see cref="Report"/>, one <c>key: value</c> line per figure.
/// </summary>
internal interface IBenchmarkSuite
{
    /// <summary>The name given on the command line.</summary>
    string Name { get; }

    /// <summary>One line on what it measures.</summary>
    string Description { get; }

    /// <summary>Runs the suite; <paramref name="args"/> are the arguments after its name.</summary>
    Task RunAsync(Report report, string[] args, CancellationToken cancellationToken);
}

/// <summary>Prints figures as <c>key: value</c> lines, the format every suite shares.</summary>
internal sealed class Report(TextWriter output)
{
    /// <summary>Set by a suite whose check failed; the program then exits non-zero.</summary>
    public bool Failed { get; set; }

    /// <summary>Prints one figure.</summary>
    public void Add(string key, object value) =>
        output.WriteLine($"{key}: {(value is double d ? d.ToString("G6", System.Globalization.CultureInfo.InvariantCulture) : value)}");

    /// <summary>Prints a comment line (ignored by readers of the figures).</summary>
    public void Note(string text) => output.WriteLine($"# {text}");
}
