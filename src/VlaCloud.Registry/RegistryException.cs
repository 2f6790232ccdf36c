namespace VlaCloud.Registry;

/// <summary>What kind of refusal a <see cref="RegistryException"/> is; the API maps it to a status code.</summary>
public enum RegistryErrorKind
{
    /// <summary>A named resource does not exist or belongs to another tenant (404).</summary>
    NotFound,

    /// <summary>The request is malformed or inconsistent (400).</summary>
    Invalid,

    /// <summary>The request conflicts with the current state, e.g. a concurrent change (409).</summary>
    Conflict,
}

/// <summary>A registry operation refused for a reason the caller can fix.</summary>
public sealed class RegistryException(RegistryErrorKind kind, string message) : Exception(message)
{
    /// <summary>The kind of refusal.</summary>
    public RegistryErrorKind Kind { get; } = kind;

    internal static RegistryException NotFound(string message) => new(RegistryErrorKind.NotFound, message);
    internal static RegistryException Invalid(string message) => new(RegistryErrorKind.Invalid, message);
    internal static RegistryException Conflict(string message) => new(RegistryErrorKind.Conflict, message);
}
