using System.Text.Json;
using System.Text.Json.Serialization;

namespace VlaCloud.Cli.Commands;

/// <summary>One saved server: its URL and API key.</summary>
/// <param name="Url">Base URL, e.g. <c>http://127.0.0.1:5080</c>.</param>
/// <param name="ApiKey">The API key.</param>
internal sealed record CliProfile(
    [property: JsonPropertyName("url")] string? Url,
    [property: JsonPropertyName("api_key")] string? ApiKey);

/// <summary>The file <c>~/.config/vlacloud/config.json</c>: named profiles and the default one.</summary>
internal sealed record CliConfigFile(
    [property: JsonPropertyName("default_profile")] string DefaultProfile,
    [property: JsonPropertyName("profiles")] Dictionary<string, CliProfile> Profiles);

/// <summary>The server a command talks to, after profile and environment were combined.</summary>
/// <param name="Name">Profile name.</param>
/// <param name="Url">Base URL.</param>
/// <param name="ApiKey">API key, or null.</param>
internal sealed record ResolvedProfile(string Name, Uri Url, string? ApiKey);

/// <summary>A local mistake (no profile, unreadable file, bad option value): printed without a stack trace, exit code 2.</summary>
internal sealed class CliException(string message) : Exception(message);

/// <summary>
/// Profiles in <c>$VLACLOUD_CONFIG</c>, else <c>$XDG_CONFIG_HOME/vlacloud/config.json</c>, else
/// <c>~/.config/vlacloud/config.json</c> (mode 600: it holds keys). <c>VLACLOUD_URL</c> and
/// <c>VLACLOUD_API_KEY</c> override the profile's values; <c>VLACLOUD_PROFILE</c> picks the profile.
/// </summary>
internal static class CliConfig
{
    public const string UrlVariable = "VLACLOUD_URL";
    public const string ApiKeyVariable = "VLACLOUD_API_KEY";
    public const string ProfileVariable = "VLACLOUD_PROFILE";
    public const string ConfigVariable = "VLACLOUD_CONFIG";
    public const string DefaultProfileName = "default";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>Where the profiles are saved.</summary>
    public static string FilePath
    {
        get
        {
            if (Environment.GetEnvironmentVariable(ConfigVariable) is { Length: > 0 } file) return Path.GetFullPath(file);
            var home = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME") is { Length: > 0 } xdg
                ? xdg
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config");
            return Path.Combine(home, "vlacloud", "config.json");
        }
    }

    /// <summary>The saved profiles (none when the file does not exist).</summary>
    public static CliConfigFile Load()
    {
        var path = FilePath;
        if (!File.Exists(path)) return new CliConfigFile(DefaultProfileName, []);
        try
        {
            return JsonSerializer.Deserialize<CliConfigFile>(File.ReadAllText(path), Json) ?? new CliConfigFile(DefaultProfileName, []);
        }
        catch (JsonException e)
        {
            throw new CliException($"{path} is not a valid configuration file ({e.Message}). Fix it or delete it and log in again.");
        }
    }

    /// <summary>Saves <paramref name="profile"/> as <paramref name="name"/>; the first profile saved becomes the default.</summary>
    public static string Save(string name, CliProfile profile, bool makeDefault)
    {
        var config = Load();
        var profiles = new Dictionary<string, CliProfile>(config.Profiles) { [name] = profile };
        var updated = new CliConfigFile(makeDefault || config.Profiles.Count == 0 ? name : config.DefaultProfile, profiles);
        var path = FilePath;
        var folder = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(folder))
        {
            if (OperatingSystem.IsWindows()) Directory.CreateDirectory(folder);
            else Directory.CreateDirectory(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        // Written to a private temporary file, then moved over the old one: the key is never readable by others.
        var temporary = path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var stream = new FileStream(temporary, options)) JsonSerializer.Serialize(stream, updated, Json);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(temporary, path, overwrite: true);
        return path;
    }

    /// <summary>The server for a command: <paramref name="profileName"/> (or the default), overridden by the environment.</summary>
    public static ResolvedProfile Resolve(string? profileName)
    {
        var config = Load();
        var named = profileName ?? (Environment.GetEnvironmentVariable(ProfileVariable) is { Length: > 0 } fromEnv ? fromEnv : null);
        var name = named ?? config.DefaultProfile;
        var saved = config.Profiles.GetValueOrDefault(name);
        if (saved is null && named is not null)
            throw new CliException($"No profile '{name}' in {FilePath}. Create it with: vlacloud login --profile {name} --url URL --api-key KEY");
        var url = Environment.GetEnvironmentVariable(UrlVariable) is { Length: > 0 } envUrl ? envUrl : saved?.Url;
        var key = Environment.GetEnvironmentVariable(ApiKeyVariable) is { Length: > 0 } envKey ? envKey : saved?.ApiKey;
        if (string.IsNullOrEmpty(url))
            throw new CliException($"No server configured. Run: vlacloud login --url http://127.0.0.1:5080 --api-key vlc_...  (or set {UrlVariable} and {ApiKeyVariable}).");
        return new ResolvedProfile(name, ParseUrl(url), key);
    }

    /// <summary>An absolute http(s) URL.</summary>
    public static Uri ParseUrl(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? uri
            : throw new CliException($"'{url}' is not an http(s) URL.");
}
