using System.Net;
using Amazon.S3;
using Amazon.S3.Model;

namespace VlaCloud.Registry.Artifacts;

/// <summary>
/// Blobs as objects <c>{prefix}sha256/ab/abcdef…</c> in an S3 or S3-compatible bucket. The hash must be known
/// before the key, so a put spools to a temp file while hashing, then uploads once; S3 makes an object
/// visible only when its upload completes, which gives the same atomicity as the filesystem rename.
/// </summary>
public sealed class S3ArtifactStore(IAmazonS3 s3, string bucket, string prefix) : IArtifactStore
{
    /// <inheritdoc />
    public async Task<ArtifactInfo> PutAsync(Stream content, CancellationToken cancellationToken)
    {
        var temp = Path.Combine(Path.GetTempPath(), $"vlacloud-{Guid.NewGuid():N}.part");
        await using var spool = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16,
            FileOptions.Asynchronous | FileOptions.DeleteOnClose);
        var (sha, size) = await Sha256Hex.CopyAsync(content, spool, cancellationToken);
        if (await GetInfoAsync(sha, cancellationToken) is { } existing && existing.SizeBytes == size) return existing;
        spool.Position = 0;
        await s3.PutObjectAsync(new PutObjectRequest
        {
            BucketName = bucket,
            Key = KeyOf(sha),
            InputStream = spool,
            AutoCloseStream = false,
            // The hash is known, so it goes in a header the bucket verifies against the body. Left to the SDK, it would
            // be a trailer of an aws-chunked body, which S3-compatible servers without that encoding (s3rver, older
            // MinIO and Ceph) store framing and all, so every later read fails its hash check.
            ChecksumSHA256 = Sha256Hex.ToBase64(sha),
            UseChunkEncoding = false,
        }, cancellationToken);
        return new ArtifactInfo(sha, size, UriOf(sha));
    }

    /// <inheritdoc />
    public async Task<ArtifactInfo?> GetInfoAsync(string sha256, CancellationToken cancellationToken)
    {
        if (!Sha256Hex.IsValid(sha256)) return null;
        sha256 = sha256.ToLowerInvariant();
        try
        {
            var head = await s3.GetObjectMetadataAsync(bucket, KeyOf(sha256), cancellationToken);
            return new ArtifactInfo(sha256, head.ContentLength, UriOf(sha256));
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <inheritdoc />
    public async Task<Stream> OpenReadAsync(string sha256, CancellationToken cancellationToken)
    {
        if (!Sha256Hex.IsValid(sha256)) throw new FileNotFoundException($"No artifact {sha256}.");
        sha256 = sha256.ToLowerInvariant();
        GetObjectResponse response;
        try
        {
            response = await s3.GetObjectAsync(bucket, KeyOf(sha256), cancellationToken);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            throw new FileNotFoundException($"No artifact {sha256} in the artifact store.", e);
        }
        // Verify before handing out a single byte: download to a local file, hash it, then read from there.
        var temp = Path.Combine(Path.GetTempPath(), $"vlacloud-{Guid.NewGuid():N}.get");
        var local = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16,
            FileOptions.Asynchronous | FileOptions.DeleteOnClose);
        try
        {
            using (response)
            {
                var (actual, _) = await Sha256Hex.CopyAsync(response.ResponseStream, local, cancellationToken);
                if (actual != sha256) throw new ArtifactCorruptedException(sha256, actual, UriOf(sha256));
            }
            local.Position = 0;
            return local;
        }
        catch
        {
            await local.DisposeAsync();
            throw;
        }
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<StoredBlob> ListAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var request = new ListObjectsV2Request { BucketName = bucket, Prefix = $"{prefix}sha256/" };
        ListObjectsV2Response response;
        do
        {
            response = await s3.ListObjectsV2Async(request, cancellationToken);
            foreach (var item in response.S3Objects ?? [])
            {
                var name = item.Key[(item.Key.LastIndexOf('/') + 1)..];
                if (Sha256Hex.IsValid(name))
                    yield return new StoredBlob(name, item.Size ?? 0, item.LastModified is { } modified ? new DateTimeOffset(modified.ToUniversalTime()) : DateTimeOffset.MinValue);
            }
            request.ContinuationToken = response.NextContinuationToken;
        }
        while (response.IsTruncated == true);
    }

    /// <inheritdoc />
    public Task DeleteAsync(string sha256, CancellationToken cancellationToken) =>
        Sha256Hex.IsValid(sha256) ? s3.DeleteObjectAsync(bucket, KeyOf(sha256.ToLowerInvariant()), cancellationToken) : Task.CompletedTask;

    private string KeyOf(string sha256) => $"{prefix}sha256/{sha256[..2]}/{sha256}";

    private string UriOf(string sha256) => $"s3://{bucket}/{KeyOf(sha256)}";
}
