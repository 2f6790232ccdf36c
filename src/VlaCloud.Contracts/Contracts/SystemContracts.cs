namespace VlaCloud.Contracts;

/// <summary>Result of a health probe.</summary>
/// <param name="Status"><c>Healthy</c>, <c>Degraded</c> or <c>Unhealthy</c>.</param>
/// <param name="Checks">Each dependency checked.</param>
public sealed record HealthReportResponse(string Status, IReadOnlyList<HealthCheckEntry> Checks);

/// <summary>One dependency's state.</summary>
/// <param name="Name">Dependency name (<c>postgres</c>, <c>redis</c>).</param>
/// <param name="Status">Its status.</param>
/// <param name="Description">Why, when it is not healthy.</param>
/// <param name="DurationMs">How long the check took.</param>
public sealed record HealthCheckEntry(string Name, string Status, string? Description, double DurationMs);
