using System.Net;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Amazon.S3;
using Amazon.S3.Model;
using VlaCloud.Registry.Artifacts;

namespace VlaCloud.Registry.Uploads;

/// <summary>
/// Part bytes of incomplete uploads, kept in the artifact store next to the blobs (a folder <c>uploads/</c> of the
/// filesystem store, or keys <c>{prefix}uploads/</c> of the bucket), so every API replica sees every part: a part
/// PUT on one pod and the completion on another find the same bytes, and nothing a request writes stays on the pod.
/// A part becomes visible only whole (renamed into place, or an S3 object committed by its upload), so a retried part
/// replaces the old one whole and a reader never sees half a part.
/// </summary>
public abstract class UploadPartStore
{
    /// <summary>
    /// Writes part <paramref name="partNumber"/> of <paramref name="uploadId"/> from <paramref name="content"/>, reading at
    /// most <paramref name="maxBytes"/>. Returns its size and SHA-256, or null (and keeps nothing) when it is larger.
    /// </summary>
    public abstract Task<(long Size, string Sha256)?> WriteAsync(Guid uploadId, int partNumber, Stream content, long maxBytes, CancellationToken cancellationToken);

    /// <summary>Opens a stored part.</summary>
    /// <exception cref="FileNotFoundException">The part is not stored.</exception>
    public abstract Task<Stream> OpenReadAsync(Guid uploadId, int partNumber, CancellationToken cancellationToken);

    /// <summary>Deletes every part of an upload (nothing when there are none).</summary>
    public abstract Task DeleteAsync(Guid uploadId, CancellationToken cancellationToken);

    /// <summary>Every upload that has parts stored, in no particular order (for the cleanup job).</summary>
    public abstract IAsyncEnumerable<Guid> ListUploadsAsync(CancellationToken cancellationToken);

    /// <summary>Name of a part inside its upload's folder or key prefix.</summary>
    protected static string PartName(int partNumber) => $"part-{partNumber:D5}";

    /// <summary>
    /// Copies at most <paramref name="maxBytes"/> of <paramref name="content"/> to <paramref name="target"/>, hashing as it
    /// goes; null as soon as the content is longer.
    /// </summary>
    protected static async Task<(long Size, string Sha256)?> CopyBoundedAsync(Stream content, Stream target, long maxBytes, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long size = 0;
        var buffer = new byte[1 << 16];
        int read;
        while ((read = await content.ReadAsync(buffer, cancellationToken)) > 0)
        {
            size += read;
            if (size > maxBytes) return null;
            hash.AppendData(buffer, 0, read);
            await target.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
        }
        return (size, Convert.ToHexStringLower(hash.GetHashAndReset()));
    }
}

/// <summary>Parts as files <c>{root}/{upload id}/part-00001</c>; <c>root</c> is the filesystem artifact store's <c>uploads</c> folder.</summary>
public sealed class FileSystemUploadPartStore(string root) : UploadPartStore
{
    /// <summary>The store's folder.</summary>
    public string Root { get; } = Path.GetFullPath(root);

    /// <inheritdoc />
    public override async Task<(long Size, string Sha256)?> WriteAsync(Guid uploadId, int partNumber, Stream content, long maxBytes, CancellationToken cancellationToken)
    {
        var folder = Folder(uploadId);
        Directory.CreateDirectory(folder);
        var temp = Path.Combine(folder, $".{PartName(partNumber)}-{Guid.NewGuid():N}");
        try
        {
            (long, string)? written;
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
                written = await CopyBoundedAsync(content, file, maxBytes, cancellationToken);
            if (written is null) return null;
            File.Move(temp, Path.Combine(folder, PartName(partNumber)), overwrite: true);
            return written;
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <inheritdoc />
    public override Task<Stream> OpenReadAsync(Guid uploadId, int partNumber, CancellationToken cancellationToken) =>
        Task.FromResult<Stream>(new FileStream(Path.Combine(Folder(uploadId), PartName(partNumber)), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true));

    /// <inheritdoc />
    public override Task DeleteAsync(Guid uploadId, CancellationToken cancellationToken)
    {
        var folder = Folder(uploadId);
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public override async IAsyncEnumerable<Guid> ListUploadsAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (!Directory.Exists(Root)) yield break;
        foreach (var folder in Directory.EnumerateDirectories(Root))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (Guid.TryParseExact(Path.GetFileName(folder), "N", out var id)) yield return id;
        }
        await Task.CompletedTask;
    }

    /// <summary>The folder of an upload's parts.</summary>
    public string Folder(Guid uploadId) => Path.Combine(Root, uploadId.ToString("N"));
}

/// <summary>
/// Parts as objects <c>{prefix}uploads/{upload id}/part-00001</c> in the artifact store's bucket. A part is spooled to a
/// temp file (deleted on close) while it is read and hashed, so an oversized part never reaches the bucket and the
/// object is put with a known length.
/// </summary>
public sealed class S3UploadPartStore(IAmazonS3 s3, string bucket, string prefix) : UploadPartStore
{
    private string Root => $"{prefix}uploads/";

    /// <inheritdoc />
    public override async Task<(long Size, string Sha256)?> WriteAsync(Guid uploadId, int partNumber, Stream content, long maxBytes, CancellationToken cancellationToken)
    {
        var temp = Path.Combine(Path.GetTempPath(), $"vlacloud-{Guid.NewGuid():N}.upload-part");
        await using var spool = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16,
            FileOptions.Asynchronous | FileOptions.DeleteOnClose);
        var written = await CopyBoundedAsync(content, spool, maxBytes, cancellationToken);
        if (written is null) return null;
        spool.Position = 0;
        await s3.PutObjectAsync(new PutObjectRequest
        {
            BucketName = bucket, Key = KeyOf(uploadId, partNumber), InputStream = spool, AutoCloseStream = false,
            // A header checksum, not an aws-chunked trailer: see S3ArtifactStore.PutAsync.
            ChecksumSHA256 = Sha256Hex.ToBase64(written.Value.Sha256), UseChunkEncoding = false,
        }, cancellationToken);
        return written;
    }

    /// <inheritdoc />
    public override async Task<Stream> OpenReadAsync(Guid uploadId, int partNumber, CancellationToken cancellationToken)
    {
        try
        {
            var response = await s3.GetObjectAsync(bucket, KeyOf(uploadId, partNumber), cancellationToken);
            return new OwningStream(response.ResponseStream, response);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            throw new FileNotFoundException($"Part {partNumber} of upload {uploadId} is not stored.", e);
        }
    }

    /// <inheritdoc />
    public override async Task DeleteAsync(Guid uploadId, CancellationToken cancellationToken)
    {
        var request = new ListObjectsV2Request { BucketName = bucket, Prefix = $"{Root}{uploadId:N}/" };
        ListObjectsV2Response response;
        do
        {
            response = await s3.ListObjectsV2Async(request, cancellationToken);
            if (response.S3Objects is { Count: > 0 } objects)
                await s3.DeleteObjectsAsync(new DeleteObjectsRequest { BucketName = bucket, Objects = [.. objects.Select(o => new KeyVersion { Key = o.Key })] }, cancellationToken);
            request.ContinuationToken = response.NextContinuationToken;
        }
        while (response.IsTruncated == true);
    }

    /// <inheritdoc />
    public override async IAsyncEnumerable<Guid> ListUploadsAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // One "folder" per upload: list with a delimiter and read the common prefixes.
        var request = new ListObjectsV2Request { BucketName = bucket, Prefix = Root, Delimiter = "/" };
        ListObjectsV2Response response;
        do
        {
            response = await s3.ListObjectsV2Async(request, cancellationToken);
            foreach (var folder in response.CommonPrefixes ?? [])
                if (Guid.TryParseExact(folder[Root.Length..].TrimEnd('/'), "N", out var id)) yield return id;
            request.ContinuationToken = response.NextContinuationToken;
        }
        while (response.IsTruncated == true);
    }

    private string KeyOf(Guid uploadId, int partNumber) => $"{Root}{uploadId:N}/{PartName(partNumber)}";

    /// <summary>A response stream that disposes its response with it.</summary>
    private sealed class OwningStream(Stream inner, IDisposable owner) : ReadOnlyForwardStream
    {
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
                owner.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
