namespace VlaCloud.Registry.Artifacts;

/// <summary>
/// Blobs as files <c>{root}/sha256/ab/abcdef…</c>. A put writes a temp file in the same folder tree and
/// renames it into place, so a reader never sees half a blob and a crash leaves only a temp file.
/// </summary>
public sealed class FileSystemArtifactStore(string root) : IArtifactStore
{
    private readonly string root = Path.GetFullPath(root);

    /// <inheritdoc />
    public async Task<ArtifactInfo> PutAsync(Stream content, CancellationToken cancellationToken)
    {
        var temp = Path.Combine(root, "tmp", $"{Guid.NewGuid():N}.part");
        Directory.CreateDirectory(Path.GetDirectoryName(temp)!);
        try
        {
            string sha;
            long size;
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
            {
                (sha, size) = await Sha256Hex.CopyAsync(content, file, cancellationToken);
                await file.FlushAsync(cancellationToken);
                file.Flush(flushToDisk: true);
            }
            var path = PathOf(sha);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            // Same bytes, same name: replacing an existing blob is harmless and also heals a corrupted one.
            File.Move(temp, path, overwrite: true);
            return new ArtifactInfo(sha, size, UriOf(path));
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <inheritdoc />
    public Task<ArtifactInfo?> GetInfoAsync(string sha256, CancellationToken cancellationToken)
    {
        if (!Sha256Hex.IsValid(sha256)) return Task.FromResult<ArtifactInfo?>(null);
        var file = new FileInfo(PathOf(sha256.ToLowerInvariant()));
        return Task.FromResult(file.Exists ? new ArtifactInfo(sha256.ToLowerInvariant(), file.Length, UriOf(file.FullName)) : null);
    }

    /// <inheritdoc />
    public async Task<Stream> OpenReadAsync(string sha256, CancellationToken cancellationToken)
    {
        var stream = await OpenStoredAsync(sha256, cancellationToken);
        sha256 = sha256.ToLowerInvariant();
        var path = PathOf(sha256);
        try
        {
            var actual = await Sha256Hex.OfAsync(stream, cancellationToken);
            if (actual != sha256) throw new ArtifactCorruptedException(sha256, actual, UriOf(path));
            stream.Position = 0;
            return stream;
        }
        catch
        {
            await stream.DisposeAsync();
            throw;
        }
    }

    /// <inheritdoc />
    public Task<Stream> OpenStoredAsync(string sha256, CancellationToken cancellationToken)
    {
        if (!Sha256Hex.IsValid(sha256)) throw new FileNotFoundException($"No artifact {sha256}.");
        sha256 = sha256.ToLowerInvariant();
        var path = PathOf(sha256);
        if (!File.Exists(path)) throw new FileNotFoundException($"No artifact {sha256} in the artifact store.", path);
        return Task.FromResult<Stream>(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan));
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<StoredBlob> ListAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var blobs = Path.Combine(root, "sha256");
        if (!Directory.Exists(blobs)) yield break;
        foreach (var path in Directory.EnumerateFiles(blobs, "*", SearchOption.AllDirectories))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var file = new FileInfo(path);
            if (!Sha256Hex.IsValid(file.Name) || !file.Exists) continue;
            yield return new StoredBlob(file.Name, file.Length, file.LastWriteTimeUtc);
        }
        await Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task DeleteAsync(string sha256, CancellationToken cancellationToken)
    {
        if (Sha256Hex.IsValid(sha256)) File.Delete(PathOf(sha256.ToLowerInvariant()));
        return Task.CompletedTask;
    }

    /// <summary>The file that holds the blob with this hash.</summary>
    public string PathOf(string sha256) => Path.Combine(root, "sha256", sha256[..2], sha256);

    private static string UriOf(string path) => new Uri(path).AbsoluteUri;
}
