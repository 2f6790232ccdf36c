using System.Net;
using System.Net.Http.Json;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using VlaCloud.Api.Apis;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.FineTuning;

/// <summary>Upload parts live in the shared artifact store, so API replicas are interchangeable (issue 22).</summary>
[Collection(FineTuningCollection.Name)]
public sealed class ScaleOutUploadTests(ServicesFixture services) : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("vlacloud-scale-").FullName;

    [Fact]
    public async Task Parts_sent_alternately_to_two_api_replicas_complete_on_either_and_are_kept_only_in_the_artifact_store()
    {
        var settings = FineTuningWorld.Settings(root, trainer: false);
        await using var first = new VlaCloudAppFactory(services, settings);
        await using var second = new VlaCloudAppFactory(services, settings);
        var world = await FineTuningWorld.CreateAsync(first);
        var replicas = new[] { world, world with { Client = second.CreateClient(world.Key) } };

        var bytes = new byte[10_000];
        new Random(22).NextBytes(bytes);
        var created = await world.Client.PostAsJsonAsync("/v1/uploads", new CreateUploadRequest("weights.bin", bytes.Length, FineTuningWorld.Sha(bytes), "checkpoint"));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var upload = (await created.Content.ReadFromJsonAsync<UploadResponse>())!.Id;
        for (var n = 1; n <= 4; n++)
        {
            var put = await replicas[n % 2].PutPartAsync(upload, n, bytes[((n - 1) * 2500)..(n * 2500)]);
            Assert.True(put.StatusCode == HttpStatusCode.OK, await put.Content.ReadAsStringAsync());
        }

        // Every part is in the store's uploads folder, whichever replica took it; none under a replica's content root.
        var stored = Path.Combine(root, "artifacts", "uploads", upload.ToString("N"));
        Assert.Equal(["part-00001", "part-00002", "part-00003", "part-00004"], Directory.GetFiles(stored).Select(Path.GetFileName).Order());
        var contentRoot = first.Services.GetRequiredService<IHostEnvironment>().ContentRootPath;
        Assert.False(Directory.Exists(Path.Combine(contentRoot, ".local", "uploads", upload.ToString("N"))));

        // Seen whole from the replica that took only the even parts, and completed there.
        var seen = (await replicas[0].Client.GetFromJsonAsync<UploadResponse>($"/v1/uploads/{upload}"))!;
        Assert.Equal([1, 2, 3, 4], seen.Parts.Select(p => p.PartNumber));
        var completed = await replicas[0].Client.PostAsJsonAsync($"/v1/uploads/{upload}/complete", new CompleteUploadRequest());
        Assert.True(completed.StatusCode == HttpStatusCode.OK, await completed.Content.ReadAsStringAsync());
        Assert.Equal(FineTuningWorld.Sha(bytes), (await completed.Content.ReadFromJsonAsync<UploadResponse>())!.ArtifactSha256);
        var sha = FineTuningWorld.Sha(bytes);
        Assert.True(File.Exists(Path.Combine(root, "artifacts", "sha256", sha[..2], sha)));
        Assert.False(Directory.Exists(stored));
    }

    [Fact]
    public async Task With_the_s3_store_parts_sent_to_two_replicas_complete_into_one_bucket_object_and_leave_no_parts()
    {
        await using var bucket = await LocalS3Server.StartAsync();
        var settings = FineTuningWorld.Settings(root, trainer: false);
        settings.Remove("VlaCloud:ArtifactsPath");
        settings["VlaCloud:Artifacts:Store"] = "s3";
        settings["VlaCloud:Artifacts:Bucket"] = bucket.Bucket;
        settings["VlaCloud:Artifacts:ServiceUrl"] = bucket.ServiceUrl;
        settings["VlaCloud:Artifacts:AccessKey"] = LocalS3Server.AccessKey;
        settings["VlaCloud:Artifacts:SecretKey"] = LocalS3Server.SecretKey;
        await using var first = new VlaCloudAppFactory(services, settings);
        await using var second = new VlaCloudAppFactory(services, settings);
        var world = await FineTuningWorld.CreateAsync(first);
        var replicas = new[] { world.Client, second.CreateClient(world.Key) };

        var bytes = new byte[10_000];
        new Random(23).NextBytes(bytes);
        var sha = FineTuningWorld.Sha(bytes);
        var created = await world.Client.PostAsJsonAsync("/v1/uploads", new CreateUploadRequest("weights.bin", bytes.Length, sha, "checkpoint"));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var upload = (await created.Content.ReadFromJsonAsync<UploadResponse>())!.Id;
        for (var n = 1; n <= 4; n++)
        {
            var put = await (world with { Client = replicas[n % 2] }).PutPartAsync(upload, n, bytes[((n - 1) * 2500)..(n * 2500)]);
            Assert.True(put.StatusCode == HttpStatusCode.OK, await put.Content.ReadAsStringAsync());
        }

        using var s3 = new AmazonS3Client(new BasicAWSCredentials(LocalS3Server.AccessKey, LocalS3Server.SecretKey),
            new AmazonS3Config { ServiceURL = bucket.ServiceUrl, ForcePathStyle = true, AuthenticationRegion = "us-east-1" });
        async Task<List<string>> Keys(string prefix) =>
            [.. ((await s3.ListObjectsV2Async(new ListObjectsV2Request { BucketName = bucket.Bucket, Prefix = prefix })).S3Objects ?? []).Select(o => o.Key)];
        Assert.Equal(4, (await Keys($"artifacts/uploads/{upload:N}/")).Count);

        var completed = await replicas[0].PostAsJsonAsync($"/v1/uploads/{upload}/complete", new CompleteUploadRequest());
        Assert.True(completed.StatusCode == HttpStatusCode.OK, await completed.Content.ReadAsStringAsync());
        Assert.Equal(sha, (await completed.Content.ReadFromJsonAsync<UploadResponse>())!.ArtifactSha256);
        var stored = await s3.GetObjectMetadataAsync(bucket.Bucket, $"artifacts/sha256/{sha[..2]}/{sha}");
        Assert.Equal(bytes.Length, stored.ContentLength);
        Assert.Empty(await Keys($"artifacts/uploads/{upload:N}/"));
        Assert.False(Directory.Exists(Path.Combine(root, "artifacts")));
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
