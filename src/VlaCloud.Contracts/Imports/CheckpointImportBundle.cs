using System.Formats.Tar;
using System.Globalization;
using System.Text.RegularExpressions;

namespace VlaCloud.Contracts;

/// <summary>
/// The layout of a checkpoint-import bundle, the tar <c>POST /v1/checkpoints/imports</c> takes: a released InternVLA-M1
/// run's <c>config.yaml</c> and <c>dataset_statistics.json</c>, one <c>checkpoints/NAME.pt</c>, and Qwen2.5-VL's
/// <c>qwen/config.json</c> and <c>qwen/tokenizer.json</c>. The CLI writes it and the server reads it from this one
/// definition, so neither needs the other's code (the CLI ships without libtorch).
/// </summary>
public static partial class CheckpointImportBundle
{
    /// <summary>The folder of a bundle that holds Qwen's <c>config.json</c> and <c>tokenizer.json</c>.</summary>
    public const string QwenFolder = "qwen";

    /// <summary>The folder of a run (and of a bundle) that holds the <c>.pt</c> files.</summary>
    public const string CheckpointsFolder = "checkpoints";

    /// <summary>The run files a bundle carries besides the weights.</summary>
    public static IReadOnlyList<string> RunFiles { get; } = ["config.yaml", "dataset_statistics.json"];

    /// <summary>The Qwen files a bundle carries (the weights come from the <c>.pt</c>).</summary>
    public static IReadOnlyList<string> QwenFiles { get; } = ["config.json", "tokenizer.json"];

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}\.pt$", RegexOptions.CultureInvariant)]
    private static partial Regex CheckpointFileName();

    [GeneratedRegex(@"^steps_(\d+)_pytorch_model\.pt$", RegexOptions.CultureInvariant)]
    private static partial Regex StepFile();

    /// <summary>Whether <paramref name="name"/> is a plain <c>.pt</c> file name (no folder), as a bundle's checkpoint file must be.</summary>
    public static bool IsCheckpointFileName(string name) => CheckpointFileName().IsMatch(name) && !name.Contains("..", StringComparison.Ordinal);

    /// <summary>The run's <c>checkpoints/steps_N_pytorch_model.pt</c> with the highest N (upstream's save name).</summary>
    /// <exception cref="InvalidDataException">The run has no checkpoints folder or no such file in it.</exception>
    public static string LatestCheckpoint(string runDirectory)
    {
        var folder = Path.Combine(runDirectory, CheckpointsFolder);
        if (!Directory.Exists(folder)) throw new InvalidDataException($"{runDirectory} has no checkpoints folder");
        var best = Directory.EnumerateFiles(folder)
            .Select(f => (File: f, Match: StepFile().Match(Path.GetFileName(f))))
            .Where(f => f.Match.Success && long.TryParse(f.Match.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out _))
            .OrderByDescending(f => long.Parse(f.Match.Groups[1].Value, CultureInfo.InvariantCulture)).FirstOrDefault();
        return best.File ?? throw new InvalidDataException($"{folder} has no steps_N_pytorch_model.pt");
    }

    /// <summary>
    /// Writes the bundle of a run: the run files, <c>checkpoints/NAME.pt</c> (the run's highest step, or
    /// <paramref name="checkpointFile"/>) and the Qwen files. Returns the name of the <c>.pt</c> inside.
    /// </summary>
    /// <exception cref="InvalidDataException">A file is missing, or the <c>.pt</c>'s name is not a plain file name.</exception>
    public static string Write(string runDirectory, string qwenDirectory, Stream output, string? checkpointFile = null)
    {
        var pt = checkpointFile ?? LatestCheckpoint(runDirectory);
        var ptName = Path.GetFileName(pt);
        if (!IsCheckpointFileName(ptName)) throw new InvalidDataException($"{ptName} is not a plain .pt file name (letters, digits, '.', '_', '-')");
        var files = RunFiles.Select(f => (Path.Combine(runDirectory, f), f))
            .Append((pt, $"{CheckpointsFolder}/{ptName}"))
            .Concat(QwenFiles.Select(f => (Path.Combine(qwenDirectory, f), $"{QwenFolder}/{f}")))
            .ToList();
        foreach (var (path, _) in files)
            if (!File.Exists(path)) throw new InvalidDataException($"{path} is missing");
        using var tar = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true);
        foreach (var (path, name) in files) tar.WriteEntry(path, name);
        return ptName;
    }
}
