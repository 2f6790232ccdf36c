namespace VlaCloud.Registry;

/// <summary>
/// The tenant whose rows a <see cref="RegistryDbContext"/> may see. The host implements it with the
/// request's API key; everything else (jobs, tools) passes its own.
/// </summary>
/// <remarks>
/// A null tenant sees only public rows: isolation fails closed. Code that must see every tenant's rows
/// (admin, key lookup, metering) says so with <c>IgnoreQueryFilters()</c>.
/// </remarks>
public interface ITenantAccessor
{
    /// <summary>The tenant in whose name the current unit of work runs, or null.</summary>
    Guid? TenantId { get; }
}

/// <summary>A fixed tenant, for background work that acts for one tenant outside a request.</summary>
/// <param name="TenantId">The tenant, or null for public rows only.</param>
public sealed record FixedTenantAccessor(Guid? TenantId) : ITenantAccessor;
