using System.Formats.Tar;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Microsoft.Extensions.DependencyInjection;
using VlaCloud.Api.Apis;
using VlaCloud.Registry.Artifacts;
using VlaCloud.Policy;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.Registry;

[Collection(RegistryCollection.Name)]
public sealed class ExportTests(ServicesFixture services)
{
    [Fact]
    public async Task A_checkpoint_downloads_as_its_exact_artifact_with_its_sha256_and_a_strong_etag()
    {
        await using var app = new VlaCloudAppFactory(services);
        var a = await RegistryClient.CreateWorldAsync(app);

        var response = await a.Client.GetAsync($"/v1/checkpoints/{a.V2.Id}/content");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var bytes = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(a.Artifact.SizeBytes, bytes.Length);
        Assert.Equal(a.Artifact.Sha256, Convert.ToHexStringLower(SHA256.HashData(bytes)));
        Assert.Equal(a.Artifact.Sha256, response.Headers.GetValues(CheckpointsApi.Sha256Header).Single());
        Assert.Equal($"sha-256=:{Convert.ToBase64String(SHA256.HashData(bytes))}:", response.Headers.GetValues("Repr-Digest").Single());
        Assert.Equal($"\"{a.Artifact.Sha256}\"", response.Headers.ETag!.Tag);
        Assert.False(response.Headers.ETag.IsWeak);
        Assert.Equal("bytes", response.Headers.AcceptRanges.Single());
        Assert.Equal(CheckpointsApi.ContentType, response.Content.Headers.ContentType!.MediaType);
        Assert.Equal($"{a.Model}-v2.tar", response.Content.Headers.ContentDisposition!.FileNameStar ?? response.Content.Headers.ContentDisposition.FileName);

        // The layout docs/export.md promises: the five files of a checkpoint, loadable as one.
        using var tar = new TarReader(new MemoryStream(bytes));
        var names = new List<string>();
        while (tar.GetNextEntry() is { } entry) names.Add(entry.Name);
        Assert.Equal([.. PolicyCheckpoint.ContentFiles, PolicyCheckpoint.ManifestFile], names);
    }

    [Fact]
    public async Task A_range_request_resumes_a_download_and_if_range_with_the_etag_keeps_it_consistent()
    {
        await using var app = new VlaCloudAppFactory(services);
        var a = await RegistryClient.CreateWorldAsync(app);
        var whole = await a.Client.GetByteArrayAsync($"/v1/checkpoints/{a.V1.Id}/content");
        var etag = new EntityTagHeaderValue($"\"{a.Artifact.Sha256}\"");

        using var first = new HttpRequestMessage(HttpMethod.Get, $"/v1/checkpoints/{a.V1.Id}/content");
        first.Headers.Range = new RangeHeaderValue(0, 999);
        var head = await a.Client.SendAsync(first);
        Assert.Equal(HttpStatusCode.PartialContent, head.StatusCode);
        Assert.Equal(whole[..1000], await head.Content.ReadAsByteArrayAsync());
        Assert.Equal(whole.Length, head.Content.Headers.ContentRange!.Length);

        using var rest = new HttpRequestMessage(HttpMethod.Get, $"/v1/checkpoints/{a.V1.Id}/content");
        rest.Headers.Range = new RangeHeaderValue(1000, null);
        rest.Headers.IfRange = new RangeConditionHeaderValue(etag);
        var tail = await a.Client.SendAsync(rest);
        Assert.Equal(HttpStatusCode.PartialContent, tail.StatusCode);
        Assert.Equal(whole[1000..], await tail.Content.ReadAsByteArrayAsync());

        // An If-Range naming other bytes gets the whole artifact again, not a splice of two.
        using var stale = new HttpRequestMessage(HttpMethod.Get, $"/v1/checkpoints/{a.V1.Id}/content");
        stale.Headers.Range = new RangeHeaderValue(1000, null);
        stale.Headers.IfRange = new RangeConditionHeaderValue(new EntityTagHeaderValue($"\"{new string('0', 64)}\""));
        var restarted = await a.Client.SendAsync(stale);
        Assert.Equal(HttpStatusCode.OK, restarted.StatusCode);
        Assert.Equal(whole, await restarted.Content.ReadAsByteArrayAsync());

        using var beyond = new HttpRequestMessage(HttpMethod.Get, $"/v1/checkpoints/{a.V1.Id}/content");
        beyond.Headers.Range = new RangeHeaderValue(whole.Length + 10, null);
        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, (await a.Client.SendAsync(beyond)).StatusCode);

        using var cached = new HttpRequestMessage(HttpMethod.Get, $"/v1/checkpoints/{a.V1.Id}/content");
        cached.Headers.IfNoneMatch.Add(etag);
        Assert.Equal(HttpStatusCode.NotModified, (await a.Client.SendAsync(cached)).StatusCode);
    }

    [Fact]
    public async Task The_headers_and_a_range_come_with_the_registrys_hash_without_the_blob_being_hashed_first_and_a_whole_download_of_a_changed_blob_fails()
    {
        await using var app = new VlaCloudAppFactory(services);
        var a = await RegistryClient.CreateWorldAsync(app);
        var whole = await a.Client.GetByteArrayAsync($"/v1/checkpoints/{a.V1.Id}/content");
        // The real filesystem store: the blob's last byte is changed on disk, which only a read of the whole blob can tell.
        var path = ((FileSystemArtifactStore)app.Services.GetRequiredService<IArtifactStore>()).PathOf(a.Artifact.Sha256);
        var changed = whole.ToArray();
        changed[^1] ^= 0xff;
        await File.WriteAllBytesAsync(path, changed);
        try
        {
            using var first = new HttpRequestMessage(HttpMethod.Get, $"/v1/checkpoints/{a.V1.Id}/content");
            first.Headers.Range = new RangeHeaderValue(0, 99);
            var head = await a.Client.SendAsync(first);

            // Served at once (no 503 from hashing the changed blob), with the hash the registry stored.
            Assert.Equal(HttpStatusCode.PartialContent, head.StatusCode);
            Assert.Equal(whole[..100], await head.Content.ReadAsByteArrayAsync());
            Assert.Equal(a.Artifact.Sha256, head.Headers.GetValues(CheckpointsApi.Sha256Header).Single());
            Assert.Equal($"sha-256=:{Convert.ToBase64String(Convert.FromHexString(a.Artifact.Sha256))}:", head.Headers.GetValues("Repr-Digest").Single());
            Assert.Equal($"\"{a.Artifact.Sha256}\"", head.Headers.ETag!.Tag);

            // A whole download is hashed as it streams and never completes with the changed bytes.
            await Assert.ThrowsAnyAsync<Exception>(() => a.Client.GetByteArrayAsync($"/v1/checkpoints/{a.V1.Id}/content"));
        }
        finally
        {
            await File.WriteAllBytesAsync(path, whole);
        }
        Assert.Equal(whole, await a.Client.GetByteArrayAsync($"/v1/checkpoints/{a.V1.Id}/content"));
    }

    [Fact]
    public async Task An_unknown_checkpoint_is_a_404_problem_naming_it()
    {
        await using var app = new VlaCloudAppFactory(services);
        var a = await RegistryClient.CreateWorldAsync(app);
        var id = Guid.NewGuid();

        var response = await a.Client.GetAsync($"/v1/checkpoints/{id}/content");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains(id.ToString(), await response.Content.ReadAsStringAsync());
    }
}
