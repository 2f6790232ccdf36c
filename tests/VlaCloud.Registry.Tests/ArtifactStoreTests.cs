using System.Security.Cryptography;
using VlaCloud.Registry.Artifacts;

namespace VlaCloud.Registry.Tests;

public sealed class ArtifactStoreTests : IDisposable
{
    private readonly string root = Path.Combine(Path.GetTempPath(), $"vlacloud-artifacts-{Guid.NewGuid():N}");

    [Fact]
    public async Task A_put_is_content_addressed_and_reads_back_the_same_bytes()
    {
        var store = new FileSystemArtifactStore(root);
        var bytes = RandomNumberGenerator.GetBytes(3 << 20);

        var info = await store.PutAsync(new MemoryStream(bytes), CancellationToken.None);
        var again = await store.PutAsync(new MemoryStream(bytes), CancellationToken.None);

        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), info.Sha256);
        Assert.Equal(info, again);
        Assert.Equal(bytes.Length, info.SizeBytes);
        await using var read = await store.OpenReadAsync(info.Sha256, CancellationToken.None);
        using var copy = new MemoryStream();
        await read.CopyToAsync(copy);
        Assert.Equal(bytes, copy.ToArray());
        Assert.Empty(Directory.GetFiles(Path.Combine(root, "tmp")));
    }

    [Fact]
    public async Task A_corrupted_artifact_is_refused_on_open_with_both_hashes_named()
    {
        var store = new FileSystemArtifactStore(root);
        var info = await store.PutAsync(new MemoryStream(RandomNumberGenerator.GetBytes(10_000)), CancellationToken.None);
        var path = store.PathOf(info.Sha256);
        var bytes = await File.ReadAllBytesAsync(path);
        bytes[5000] ^= 0xFF;
        await File.WriteAllBytesAsync(path, bytes);

        var error = await Assert.ThrowsAsync<ArtifactCorruptedException>(() => store.OpenReadAsync(info.Sha256, CancellationToken.None));
        Assert.Equal(info.Sha256, error.ExpectedSha256);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), error.ActualSha256);
        Assert.Contains("corrupted", error.Message);
    }

    [Fact]
    public async Task A_missing_artifact_is_not_found()
    {
        var store = new FileSystemArtifactStore(root);
        Assert.Null(await store.GetInfoAsync(new string('a', 64), CancellationToken.None));
        await Assert.ThrowsAsync<FileNotFoundException>(() => store.OpenReadAsync(new string('a', 64), CancellationToken.None));
    }

    public void Dispose()
    {
        if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
    }
}
