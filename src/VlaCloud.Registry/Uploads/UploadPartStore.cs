using System.Security.Cryptography;

namespace VlaCloud.Registry.Uploads;

/// <summary>
/// Part bytes of incomplete uploads on local disk, one folder per upload. A part is written aside and renamed
/// into place, so a retried part replaces the old one whole and a reader never sees half a part.
/// </summary>
public sealed class UploadPartStore(string root)
{
    /// <summary>The store's folder.</summary>
    public string Root { get; } = root;

    /// <summary>
    /// Writes part <paramref name="partNumber"/> of <paramref name="uploadId"/> from <paramref name="content"/>, reading at
    /// most <paramref name="maxBytes"/>. Returns its size and SHA-256, or null (and keeps nothing) when it is larger.
    /// </summary>
    public async Task<(long Size, string Sha256)?> WriteAsync(Guid uploadId, int partNumber, Stream content, long maxBytes, CancellationToken cancellationToken)
    {
        var folder = Folder(uploadId);
        Directory.CreateDirectory(folder);
        var temp = Path.Combine(folder, $".part-{partNumber:D5}-{Guid.NewGuid():N}");
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long size = 0;
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                var buffer = new byte[1 << 16];
                int read;
                while ((read = await content.ReadAsync(buffer, cancellationToken)) > 0)
                {
                    size += read;
                    if (size > maxBytes) return null;
                    hash.AppendData(buffer, 0, read);
                    await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                }
            }
            File.Move(temp, PartPath(uploadId, partNumber), overwrite: true);
            return (size, Convert.ToHexStringLower(hash.GetHashAndReset()));
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>Opens a stored part.</summary>
    public Stream OpenRead(Guid uploadId, int partNumber) =>
        new FileStream(PartPath(uploadId, partNumber), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);

    /// <summary>Deletes every part of an upload (nothing when there are none).</summary>
    public void Delete(Guid uploadId)
    {
        var folder = Folder(uploadId);
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
    }

    private string Folder(Guid uploadId) => Path.Combine(Root, uploadId.ToString("N"));

    private string PartPath(Guid uploadId, int partNumber) => Path.Combine(Folder(uploadId), $"part-{partNumber:D5}");
}
