using Microsoft.EntityFrameworkCore;
using VlaCloud.Registry.Entities;

namespace VlaCloud.Registry.Artifacts;

/// <summary>The registry's row for a blob a tenant put into the artifact store.</summary>
public static class ArtifactRecords
{
    /// <summary>
    /// Records that <paramref name="tenantId"/> (null: public) owns the stored blob, once: a row that exists already,
    /// or one a concurrent put of the same bytes inserts first, is left as it is. Saves at once; anything else the
    /// context tracks is saved with it.
    /// </summary>
    public static async Task RecordArtifactAsync(this RegistryDbContext db, Guid? tenantId, ArtifactInfo info, string kind,
        DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (await db.Artifacts.AnyAsync(a => a.TenantId == tenantId && a.Sha256 == info.Sha256, cancellationToken)) return;
        await db.InsertArtifactRowAsync(tenantId, info, kind, now, cancellationToken);
    }

    /// <summary>
    /// <see cref="RecordArtifactAsync"/> for a caller that has just found no row (and checked what a new one costs):
    /// inserts it, leaving alone one a concurrent put of the same bytes inserted first.
    /// </summary>
    public static async Task InsertArtifactRowAsync(this RegistryDbContext db, Guid? tenantId, ArtifactInfo info, string kind,
        DateTimeOffset now, CancellationToken cancellationToken)
    {
        var row = new Artifact { TenantId = tenantId, Sha256 = info.Sha256, SizeBytes = info.SizeBytes, Uri = info.Uri, Kind = kind, CreatedAt = now };
        db.Artifacts.Add(row);
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException e) when (e.IsUniqueViolation())
        {
            // The same tenant put the same bytes concurrently: one row is enough.
            db.Entry(row).State = EntityState.Detached;
        }
    }
}
