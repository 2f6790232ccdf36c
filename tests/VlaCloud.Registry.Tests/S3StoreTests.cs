using System.Security.Cryptography;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using VlaCloud.Registry.Artifacts;
using VlaCloud.Registry.Uploads;
using VlaCloud.Testing;

namespace VlaCloud.Registry.Tests;

/// <summary>
/// The S3 artifact store and upload-part store against a real S3 HTTP API (s3rver), built the way the host builds them
/// (<c>VlaCloud:Artifacts:Store=s3</c> through <see cref="RegistryServiceCollectionExtensions.AddRegistry"/>), so the
/// SDK's signing, checksums, path-style addressing and error codes are exercised end to end.
/// </summary>
public sealed class S3StoreTests : IAsyncLifetime
{
    private const string Prefix = "tenant-artifacts/";
    private LocalS3Server server = null!;
    private ServiceProvider services = null!;

    public async Task InitializeAsync()
    {
        server = await LocalS3Server.StartAsync();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["VlaCloud:Artifacts:Store"] = "s3",
            ["VlaCloud:Artifacts:Bucket"] = server.Bucket,
            ["VlaCloud:Artifacts:Prefix"] = Prefix,
            ["VlaCloud:Artifacts:ServiceUrl"] = server.ServiceUrl,
            ["VlaCloud:Artifacts:AccessKey"] = LocalS3Server.AccessKey,
            ["VlaCloud:Artifacts:SecretKey"] = LocalS3Server.SecretKey,
        }).Build();
        services = new ServiceCollection().AddSingleton<IConfiguration>(configuration).AddRegistry().BuildServiceProvider();
    }

    private IArtifactStore Artifacts => services.GetRequiredService<IArtifactStore>();

    private UploadPartStore Parts => services.GetRequiredService<UploadPartStore>();

    private AmazonS3Client Bucket() => new(new BasicAWSCredentials(LocalS3Server.AccessKey, LocalS3Server.SecretKey),
        new AmazonS3Config
        {
            ServiceURL = server.ServiceUrl, ForcePathStyle = true, AuthenticationRegion = "us-east-1",
            // Objects the tests write behind the store's back go as plain bodies: s3rver stores a body verbatim.
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
        });

    [Fact]
    public async Task An_artifact_is_content_addressed_in_the_bucket_and_reads_back_the_same_bytes()
    {
        Assert.IsType<S3ArtifactStore>(Artifacts);
        var bytes = RandomNumberGenerator.GetBytes((1 << 20) + 17);
        var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));

        var info = await Artifacts.PutAsync(new MemoryStream(bytes), CancellationToken.None);
        var again = await Artifacts.PutAsync(new MemoryStream(bytes), CancellationToken.None);

        Assert.Equal(new ArtifactInfo(sha, bytes.Length, $"s3://{server.Bucket}/{Prefix}sha256/{sha[..2]}/{sha}"), info);
        Assert.Equal(info, again);
        Assert.Equal(info, await Artifacts.GetInfoAsync(sha.ToUpperInvariant(), CancellationToken.None));
        await using (var read = await Artifacts.OpenReadAsync(sha, CancellationToken.None))
        {
            using var copy = new MemoryStream();
            await read.CopyToAsync(copy);
            Assert.Equal(bytes, copy.ToArray());
        }
        // The object holds the bytes themselves (not an aws-chunked body with signatures and trailers).
        using var s3 = Bucket();
        var head = await s3.GetObjectMetadataAsync(server.Bucket, $"{Prefix}sha256/{sha[..2]}/{sha}");
        Assert.Equal(bytes.Length, head.ContentLength);
    }

    [Fact]
    public async Task Listing_finds_every_artifact_and_a_deleted_one_is_gone()
    {
        var stored = new List<ArtifactInfo>();
        for (var i = 0; i < 3; i++)
            stored.Add(await Artifacts.PutAsync(new MemoryStream(RandomNumberGenerator.GetBytes(1000 + i)), CancellationToken.None));
        // An object outside the store's prefix is not one of its blobs.
        using var s3 = Bucket();
        await s3.PutObjectAsync(new PutObjectRequest { BucketName = server.Bucket, Key = "elsewhere/sha256/aa/" + new string('a', 64), ContentBody = "x", UseChunkEncoding = false });

        var listed = new List<StoredBlob>();
        await foreach (var blob in Artifacts.ListAsync(CancellationToken.None)) listed.Add(blob);

        Assert.Equal(stored.Select(s => (s.Sha256, s.SizeBytes)).Order(), listed.Select(b => (b.Sha256, b.SizeBytes)).Order());
        Assert.All(listed, b => Assert.True(b.LastModified > DateTimeOffset.UtcNow.AddHours(-1)));

        await Artifacts.DeleteAsync(stored[0].Sha256, CancellationToken.None);
        Assert.Null(await Artifacts.GetInfoAsync(stored[0].Sha256, CancellationToken.None));
        await Assert.ThrowsAsync<FileNotFoundException>(() => Artifacts.OpenReadAsync(stored[0].Sha256, CancellationToken.None));
        Assert.NotNull(await Artifacts.GetInfoAsync(stored[1].Sha256, CancellationToken.None));
    }

    [Fact]
    public async Task An_object_changed_in_the_bucket_is_refused_on_open_with_both_hashes_named()
    {
        var info = await Artifacts.PutAsync(new MemoryStream(RandomNumberGenerator.GetBytes(10_000)), CancellationToken.None);
        var tampered = RandomNumberGenerator.GetBytes(10_000);
        using var s3 = Bucket();
        await s3.PutObjectAsync(new PutObjectRequest
        {
            BucketName = server.Bucket, Key = $"{Prefix}sha256/{info.Sha256[..2]}/{info.Sha256}", InputStream = new MemoryStream(tampered),
            UseChunkEncoding = false,
        });

        var error = await Assert.ThrowsAsync<ArtifactCorruptedException>(() => Artifacts.OpenReadAsync(info.Sha256, CancellationToken.None));
        Assert.Equal(info.Sha256, error.ExpectedSha256);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(tampered)), error.ActualSha256);
    }

    [Fact]
    public async Task A_missing_or_malformed_hash_is_not_found_without_a_request_for_a_bad_key()
    {
        Assert.Null(await Artifacts.GetInfoAsync(new string('b', 64), CancellationToken.None));
        await Assert.ThrowsAsync<FileNotFoundException>(() => Artifacts.OpenReadAsync(new string('b', 64), CancellationToken.None));
        Assert.Null(await Artifacts.GetInfoAsync("../../etc/passwd", CancellationToken.None));
        await Assert.ThrowsAsync<FileNotFoundException>(() => Artifacts.OpenReadAsync("../../etc/passwd", CancellationToken.None));
    }

    [Fact]
    public async Task Upload_parts_live_in_the_bucket_a_retried_part_replaces_the_old_one_and_delete_removes_them_all()
    {
        Assert.IsType<S3UploadPartStore>(Parts);
        var upload = Guid.NewGuid();
        var other = Guid.NewGuid();
        var first = RandomNumberGenerator.GetBytes(70_000);
        var retried = RandomNumberGenerator.GetBytes(50_000);
        var second = RandomNumberGenerator.GetBytes(123);

        Assert.Equal((first.LongLength, Sha(first)), await Parts.WriteAsync(upload, 1, new MemoryStream(first), 1 << 20, CancellationToken.None));
        Assert.Equal((retried.LongLength, Sha(retried)), await Parts.WriteAsync(upload, 1, new MemoryStream(retried), 1 << 20, CancellationToken.None));
        await Parts.WriteAsync(upload, 2, new MemoryStream(second), 1 << 20, CancellationToken.None);
        await Parts.WriteAsync(other, 1, new MemoryStream(second), 1 << 20, CancellationToken.None);

        Assert.Equal(retried, await ReadPart(upload, 1));
        Assert.Equal(second, await ReadPart(upload, 2));
        Assert.Equal(new[] { upload, other }.Order(), (await ListUploads()).Order());

        await Parts.DeleteAsync(upload, CancellationToken.None);
        await Assert.ThrowsAsync<FileNotFoundException>(() => ReadPart(upload, 1));
        Assert.Equal([other], await ListUploads());
        Assert.Equal(second, await ReadPart(other, 1));
    }

    [Fact]
    public async Task An_oversized_part_is_refused_before_anything_reaches_the_bucket()
    {
        var upload = Guid.NewGuid();

        Assert.Null(await Parts.WriteAsync(upload, 1, new MemoryStream(RandomNumberGenerator.GetBytes(5000)), 4999, CancellationToken.None));

        await Assert.ThrowsAsync<FileNotFoundException>(() => ReadPart(upload, 1));
        Assert.Empty(await ListUploads());
    }

    private async Task<byte[]> ReadPart(Guid upload, int part)
    {
        await using var stream = await Parts.OpenReadAsync(upload, part, CancellationToken.None);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        return copy.ToArray();
    }

    private async Task<List<Guid>> ListUploads()
    {
        var uploads = new List<Guid>();
        await foreach (var id in Parts.ListUploadsAsync(CancellationToken.None)) uploads.Add(id);
        return uploads;
    }

    private static string Sha(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    public async Task DisposeAsync()
    {
        await services.DisposeAsync();
        await server.DisposeAsync();
    }
}
