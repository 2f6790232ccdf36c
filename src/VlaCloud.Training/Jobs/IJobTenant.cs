namespace VlaCloud.Training.Jobs;

/// <summary>
/// Lets a background job act for the tenant that owns its work: after <see cref="ActFor"/>, the scope's
/// registry context sees that tenant's rows only. The host implements it with its request tenant.
/// </summary>
public interface IJobTenant
{
    /// <summary>Acts for <paramref name="tenantId"/> for the rest of the scope.</summary>
    void ActFor(Guid tenantId);
}
