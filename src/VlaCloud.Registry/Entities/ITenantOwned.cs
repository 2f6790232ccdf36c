namespace VlaCloud.Registry.Entities;

/// <summary>A row that belongs to one tenant, or to nobody when it is public.</summary>
public interface ITenantOwned
{
    /// <summary>The owner; null for a public row.</summary>
    Guid? TenantId { get; }
}
