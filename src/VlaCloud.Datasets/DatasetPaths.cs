using System.Globalization;
using System.Text.RegularExpressions;

namespace VlaCloud.Datasets;

/// <summary>
/// Paths that come from a dataset's own metadata (the <c>data_path</c> and <c>video_path</c> templates, feature names
/// that become folder names, episode rows) are the uploader's input. Each must resolve inside the dataset folder: not
/// absolute, no <c>..</c>, no links on the way. Otherwise a dataset could make validation read server files, and
/// its messages would say which exist.
/// </summary>
public static partial class DatasetPaths
{
    /// <summary>Most digits a template placeholder may ask for (a long has 19).</summary>
    public const int MaxFormatWidth = 20;

    /// <summary>A template placeholder: <c>{name}</c> or <c>{name:0Nd}</c>.</summary>
    public static Regex Placeholder { get; } = PlaceholderRegex();

    /// <summary>
    /// The full path of <paramref name="relative"/> (with <c>/</c> separators) under <paramref name="root"/>, or null when
    /// it is absolute, has an empty, <c>.</c> or <c>..</c> segment, or passes through a symbolic link.
    /// </summary>
    public static string? Resolve(string root, string relative)
    {
        if (CheckRelative(relative) is not null) return null;
        var current = Path.GetFullPath(root);
        foreach (var segment in relative.Split('/'))
        {
            current = Path.Combine(current, segment);
            // A link inside the folder could point anywhere; nothing the archive extractor writes is one.
            if (new FileInfo(current).LinkTarget is not null) return null;
        }
        return current;
    }

    /// <summary>Why a path template cannot be used (ending a sentence that starts with its name), or null when it can.</summary>
    public static string? CheckTemplate(string template)
    {
        foreach (Match match in Placeholder.Matches(template))
            if (match.Groups["width"].Success && Width(match) is null)
                return $"asks for more than {MaxFormatWidth} digits in '{match.Value}'.";
        return CheckRelative(Placeholder.Replace(template, "0")) is { } reason ? $"'{template}' {reason}" : null;
    }

    /// <summary>Why a name cannot be one path segment (ending a sentence that starts with it), or null when it can.</summary>
    public static string? CheckSegment(string name) =>
        name.Length is 0 or > 255 ? "must be 1-255 characters."
        : name is "." or ".." || name.IndexOfAny(['/', '\\']) >= 0 || name.Any(char.IsControl) ? "may not contain '/', '\\' or control characters, nor be '.' or '..'."
        : null;

    /// <summary>The digit count of a matched placeholder's <c>:0Nd</c>, or null when it is more than <see cref="MaxFormatWidth"/>.</summary>
    public static int? Width(Match placeholder) =>
        int.TryParse(placeholder.Groups["width"].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var digits) && digits <= MaxFormatWidth ? digits : null;

    private static string? CheckRelative(string relative) =>
        string.IsNullOrEmpty(relative) ? "is empty."
        : relative[0] == '/' || Path.IsPathRooted(relative) ? "is an absolute path; paths must stay inside the dataset folder."
        : relative.Split('/').Any(s => CheckSegment(s) is not null) ? "leaves the dataset folder or has an empty, '.', '..' or control-character segment."
        : null;

    [GeneratedRegex(@"\{(?<name>[a-z_]+)(:0?(?<width>\d+)d)?\}")]
    private static partial Regex PlaceholderRegex();
}
