using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace VlaCloud.Registry.Checkpoints;

/// <summary>
/// A parsed way of naming a checkpoint: its id, <c>model@vN</c> or <c>model@alias</c>.
/// </summary>
/// <param name="Id">Set for an id reference.</param>
/// <param name="ModelName">Set for the two model forms.</param>
/// <param name="Version">Set for <c>model@vN</c>.</param>
/// <param name="Alias">Set for <c>model@alias</c>.</param>
public sealed record CheckpointReference(Guid? Id, string? ModelName, int? Version, string? Alias)
{
    /// <summary>Parses <paramref name="text"/>; false when it has none of the three forms.</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out CheckpointReference? reference)
    {
        reference = null;
        if (string.IsNullOrWhiteSpace(text)) return false;
        if (Guid.TryParse(text, out var id))
        {
            reference = new CheckpointReference(id, null, null, null);
            return true;
        }
        var at = text.LastIndexOf('@');
        if (at <= 0 || at == text.Length - 1) return false;
        var model = text[..at];
        var tag = text[(at + 1)..];
        if (!Names.IsValidModelName(model)) return false;
        if (tag.Length > 1 && tag[0] == 'v' && int.TryParse(tag.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var version) && version > 0)
        {
            reference = new CheckpointReference(null, model, version, null);
            return true;
        }
        if (!Names.IsValidAlias(tag)) return false;
        reference = new CheckpointReference(null, model, null, tag);
        return true;
    }

    /// <inheritdoc />
    public override string ToString() =>
        Id is { } id ? id.ToString() : Version is { } v ? $"{ModelName}@v{v}" : $"{ModelName}@{Alias}";
}

/// <summary>Rules for the names clients choose.</summary>
public static class Names
{
    /// <summary>Model names: 1–100 chars of <c>[a-z0-9._-]</c>, starting with a letter or digit.</summary>
    public static bool IsValidModelName(string? name) => IsSlug(name, 100);

    /// <summary>Alias names: 1–64 chars like model names, and not of the form <c>v123</c> (that is a version).</summary>
    public static bool IsValidAlias(string? name) =>
        IsSlug(name, 64) && !(name!.Length > 1 && name[0] == 'v' && name.AsSpan(1).IndexOfAnyExceptInRange('0', '9') < 0);

    /// <summary>Embodiment and tenant names: 1–64 (tenant) or 100 chars of <c>[a-z0-9._-]</c>.</summary>
    public static bool IsSlug(string? name, int maxLength) =>
        !string.IsNullOrEmpty(name) && name.Length <= maxLength && char.IsAsciiLetterOrDigit(name[0]) &&
        name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '_' or '.');
}
