namespace VlaCloud.Registry.Uploads;

/// <summary>
/// Limits of uploads in parts, section <c>VlaCloud:Uploads</c>. Their parts live in the artifact store
/// (<see cref="UploadPartStore"/>), so there is no folder of their own to set.
/// </summary>
public sealed class UploadOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "VlaCloud:Uploads";

    /// <summary>Largest part (OpenAI: 64 MB).</summary>
    public long MaxPartBytes { get; set; } = 64L << 20;

    /// <summary>Most parts per upload.</summary>
    public int MaxParts { get; set; } = 10_000;

    /// <summary>Largest upload.</summary>
    public long MaxUploadBytes { get; set; } = 8L << 30;

    /// <summary>How long an upload may stay incomplete (OpenAI: 1 h).</summary>
    public TimeSpan Lifetime { get; set; } = TimeSpan.FromHours(1);
}
