namespace VlaCloud.Registry;

/// <summary>The scopes an API key can be granted.</summary>
public static class ApiScopes
{
    /// <summary>Request actions (REST act, WebSocket streams).</summary>
    public const string Inference = "inference";

    /// <summary>Upload datasets and run fine-tuning jobs.</summary>
    public const string Training = "training";

    /// <summary>Read embodiments, checkpoints and aliases.</summary>
    public const string RegistryRead = "registry:read";

    /// <summary>Register checkpoints and move aliases.</summary>
    public const string RegistryWrite = "registry:write";

    /// <summary>
    /// Platform administration: tenants and their keys, the job dashboard. Held only by platform keys, which belong
    /// to no tenant; a tenant's key can never hold it.
    /// </summary>
    public const string Admin = "admin";

    /// <summary>Every scope, in a stable order.</summary>
    public static readonly IReadOnlyList<string> All = [Inference, Training, RegistryRead, RegistryWrite, Admin];

    /// <summary>The scopes a tenant's key may hold: all but <see cref="Admin"/>.</summary>
    public static readonly IReadOnlyList<string> Tenant = [Inference, Training, RegistryRead, RegistryWrite];

    /// <summary>Whether <paramref name="scope"/> is a known scope name.</summary>
    public static bool IsKnown(string scope) => All.Contains(scope, StringComparer.Ordinal);
}
