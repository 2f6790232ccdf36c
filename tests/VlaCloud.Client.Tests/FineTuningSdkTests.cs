using System.Net;
using Microsoft.EntityFrameworkCore;
using VlaCloud.Client;
using VlaCloud.Contracts;
using VlaCloud.Testing;

namespace VlaCloud.Client.Tests;

/// <summary>The SDK's uploads, datasets and fine-tuning jobs against an in-memory host that is also a trainer.</summary>
[Collection(SdkCollection.Name)]
public sealed class FineTuningSdkTests(ServicesFixture services) : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("vlacloud-sdk-ft-").FullName;

    private VlaCloudAppFactory Trainer() => new(services, new Dictionary<string, string?>
    {
        ["VlaCloud:Roles"] = "api,trainer",
        ["VlaCloud:ArtifactsPath"] = Path.Combine(root, "artifacts"),
        ["VlaCloud:FineTuning:WorkPath"] = Path.Combine(root, "work"),
        ["VlaCloud:Jobs:QueuePollInterval"] = "00:00:00.500",
    });

    [Trait("Category", "Slow")]
    [Fact]
    public async Task A_dataset_uploaded_in_parts_survives_a_dropped_part_and_trains_into_version_2_while_its_events_stream_live()
    {
        await using var app = Trainer();
        var (_, key) = await app.CreateTenantAsync();
        // The first try of part 2 is lost in transit, and the first event stream breaks after its first read: the SDK
        // must send the part again and resume the stream after the last event it delivered.
        var cutStream = new CutFirstEventStream(app.Server.CreateHandler());
        var flaky = new DropFirstTry(cutStream, "/parts/2");
        using var client = new VlaCloudClient(new VlaCloudClientOptions { BaseUrl = new Uri("http://localhost"), ApiKey = key, Handler = flaky });
        var embodiment = $"sim-{Guid.NewGuid():N}"[..12];
        await client.CreateEmbodimentAsync(SimPolicy.Embodiment(embodiment));
        using var policy = SimPolicy.Create(embodiment);
        using var baseTar = new MemoryStream(SimPolicy.Tar(policy));
        var artifact = await client.PutArtifactAsync(baseTar);
        var v1 = await client.RegisterCheckpointAsync(SimPolicy.Registration(policy, "picker", embodiment, artifact.Sha256));

        // upload in three parts, with progress
        var tar = await SimDataset.Tar;
        var file = Path.Combine(root, "sim.tar");
        await File.WriteAllBytesAsync(file, tar);
        var reported = new List<long>();
        var upload = await client.UploadFileAsync(file, new UploadFileOptions
        {
            Embodiment = embodiment, PartSize = (tar.Length + 2) / 3, RetryDelay = TimeSpan.FromMilliseconds(10),
        }, new SynchronousProgress(reported.Add));
        Assert.Equal("completed", upload.Status);
        Assert.Equal([1, 2, 3], upload.Parts.Select(p => p.PartNumber));
        Assert.Equal(tar.Length, upload.Bytes);
        Assert.Equal(2, flaky.Tries);
        Assert.Equal(tar.Length, reported[^1]);

        // validation
        var dataset = await client.WaitForDatasetAsync(upload.DatasetId!.Value, TimeSpan.FromMilliseconds(250));
        Assert.True(dataset.Status == "ready", string.Join("; ", dataset.Issues.Select(i => $"{i.File}: {i.Message}")));
        Assert.Equal(SimDataset.Episodes, dataset.Episodes);
        Assert.Equal("sim.tar", dataset.Name);
        Assert.Contains(await ToListAsync(client.ListAllDatasetsAsync("ready")), d => d.Id == dataset.Id);
        Assert.Empty((await client.ListDatasetsAsync("failed")).Data);

        // a refused job carries the field errors
        var invalid = await Assert.ThrowsAsync<VlaCloudApiException>(() => client.CreateFineTuningJobAsync(
            new CreateFineTuningJobRequest("picker@v1", dataset.Id, "picker", new FineTuningHyperparameters { Mode = "bogus" })));
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        Assert.Contains("hyperparameters.mode", invalid.Errors.Keys);

        // a job, followed live to its end
        var job = await client.CreateFineTuningJobAsync(new CreateFineTuningJobRequest("picker@v1", dataset.Id, "picker", SimDataset.TinyRun));
        Assert.Equal(6, job.Hyperparameters.Steps);
        Assert.Equal("st4vla", job.Hyperparameters.Mode);
        using var bound = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var streamed = await ToListAsync(client.StreamFineTuningJobEventsAsync(job.Id, cancellationToken: bound.Token));
        job = await client.GetFineTuningJobAsync(job.Id);
        Assert.True(job.Status == "succeeded", $"{job.Status}: {job.Error}");
        Assert.True(job.IsFinished);
        Assert.Equal(SimDataset.TinyRun.Steps, streamed.Count(e => e.Type == "metrics"));
        Assert.True(cutStream.Connections >= 2, "the stream was not resumed");
        Assert.Equal(streamed.Select(e => e.Id).Distinct().Order(), streamed.Select(e => e.Id));
        Assert.Contains(streamed, e => e.Message == "Registered picker@v2.");
        Assert.Equal(streamed.Select(e => e.Id), (await ToListAsync(client.ListAllFineTuningJobEventsAsync(job.Id))).Select(e => e.Id));
        var page = await client.ListFineTuningJobEventsAsync(job.Id, after: streamed[0].Id, limit: 2);
        Assert.Equal(streamed.Skip(1).Take(2).Select(e => e.Id), page.Data.Select(e => e.Id));
        // Resuming after the last event yields nothing more: the job has ended.
        Assert.Empty(await ToListAsync(client.StreamFineTuningJobEventsAsync(job.Id, streamed[^1].Id)));

        var v2 = await client.GetCheckpointAsync(job.ResultCheckpointId!.Value);
        Assert.Equal(("picker", 2), (v2.Model, v2.Version));
        Assert.Equal((v1.Id, dataset.Id, job.Id), (v2.ParentCheckpointId, v2.DatasetId, v2.FineTuningJobId));
        Assert.Equal([3], (await client.ListFineTuningJobCheckpointsAsync(job.Id)).Data.Select(c => c.Step));
        Assert.True(job.Metrics.GetProperty("loss").GetDouble() > 0);
        Assert.Contains("<polyline", await client.GetFineTuningJobLossCurveAsync(job.Id));
        Assert.Contains(await ToListAsync(client.ListAllFineTuningJobsAsync()), j => j.Id == job.Id);

        var ended = await Assert.ThrowsAsync<VlaCloudApiException>(() => client.CancelFineTuningJobAsync(job.Id));
        Assert.Equal(HttpStatusCode.Conflict, ended.StatusCode);
        Assert.Contains("succeeded", ended.Problem.Detail);
        var missing = await Assert.ThrowsAsync<VlaCloudApiException>(() => ToListAsync(client.StreamFineTuningJobEventsAsync(Guid.NewGuid())));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task An_upload_refused_for_its_content_fails_at_once_and_is_cancelled()
    {
        await using var app = Trainer();
        var (tenant, key) = await app.CreateTenantAsync();
        var counting = new DropFirstTry(app.Server.CreateHandler(), "(none)");
        using var client = new VlaCloudClient(new VlaCloudClientOptions { BaseUrl = new Uri("http://localhost"), ApiKey = key, Handler = counting });
        var file = Path.Combine(root, "broken.tar");
        await File.WriteAllBytesAsync(file, SimDataset.Broken);

        // No such embodiment: refused at creation, nothing sent.
        var missing = await Assert.ThrowsAsync<VlaCloudApiException>(() => client.UploadFileAsync(file, new UploadFileOptions { Embodiment = "no-such-robot" }));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);

        // A checkpoint upload that completes is stored; the same bytes as a dataset without an embodiment are refused at completion and cancelled.
        var stored = await client.UploadFileAsync(file, new UploadFileOptions { Purpose = "checkpoint", PartSize = 1024 });
        Assert.Equal(5, stored.Parts.Count);
        Assert.Null(stored.DatasetId);
        var refused = await Assert.ThrowsAsync<VlaCloudApiException>(() => client.UploadFileAsync(file, new UploadFileOptions { PartSize = 4096 }));
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("embodiment", refused.Errors.Keys);
        Assert.Equal(2, counting.Paths.Count(p => p.EndsWith("/complete", StringComparison.Ordinal)));
        var statuses = await app.WithDbAsync(db => db.Uploads.IgnoreQueryFilters().Where(u => u.TenantId == tenant.Id)
            .OrderBy(u => u.CreatedAt).Select(u => u.Status).ToListAsync());
        Assert.Equal(["completed", "cancelled"], statuses);
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

    private static async Task<List<T>> ToListAsync<T>(IAsyncEnumerable<T> items)
    {
        var list = new List<T>();
        await foreach (var item in items) list.Add(item);
        return list;
    }

    /// <summary>
    /// Records every request path, and fails the first request whose path ends with <paramref name="path"/> as a
    /// dropped connection does, counting the tries of that path.
    /// </summary>
    private sealed class DropFirstTry(HttpMessageHandler inner, string path) : DelegatingHandler(inner)
    {
        public int Tries { get; private set; }

        public List<string> Paths { get; } = [];

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Paths.Add(request.RequestUri!.AbsolutePath);
            if (request.RequestUri.AbsolutePath.EndsWith(path, StringComparison.Ordinal) && ++Tries == 1)
                throw new HttpRequestException("The connection was reset (injected).");
            return base.SendAsync(request, cancellationToken);
        }
    }

    /// <summary>Breaks the first job event stream as a dropped connection does, once the client read from it.</summary>
    private sealed class CutFirstEventStream(HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        public int Connections { get; private set; }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            if (!request.RequestUri!.AbsolutePath.EndsWith("/events/stream", StringComparison.Ordinal) || ++Connections > 1) return response;
            var cut = new StreamContent(new BreaksAfterFirstRead(await response.Content.ReadAsStreamAsync(cancellationToken)));
            foreach (var (name, values) in response.Content.Headers) cut.Headers.TryAddWithoutValidation(name, values);
            response.Content = cut;
            return response;
        }
    }

    private sealed class BreaksAfterFirstRead(Stream inner) : Stream
    {
        private bool read;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (read) throw new IOException("The connection was reset (injected).");
            read = true;
            return await inner.ReadAsync(buffer, cancellationToken);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private sealed class SynchronousProgress(Action<long> report) : IProgress<long>
    {
        public void Report(long value) => report(value);
    }
}
