using System.Net;
using System.Net.Http.Headers;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using VlaCloud.Contracts;

namespace VlaCloud.Client;

/// <summary>How <see cref="VlaCloudClient.UploadFileAsync(string, UploadFileOptions?, IProgress{long}?, CancellationToken)"/> sends a file.</summary>
public sealed record UploadFileOptions
{
    /// <summary>Default part size: 8 MiB.</summary>
    public const int DefaultPartSize = 8 << 20;

    /// <summary><c>dataset</c> (the default), <c>checkpoint</c> or <c>checkpoint_import</c>.</summary>
    public string Purpose { get; init; } = "dataset";

    /// <summary>Embodiment (id or name) of a dataset.</summary>
    public string? Embodiment { get; init; }

    /// <summary>The name the server keeps (a dataset is named after it); null for the file's own name.</summary>
    public string? Filename { get; init; }

    /// <summary>Optional media type, e.g. <c>application/x-tar</c>.</summary>
    public string? MimeType { get; init; }

    /// <summary>Bytes per part (the server takes at most 64 MiB per part).</summary>
    public int PartSize { get; init; } = DefaultPartSize;

    /// <summary>Tries per part before the upload fails: a part that failed in transit (network, 5xx, 429) is sent again.</summary>
    public int MaxAttempts { get; init; } = 4;

    /// <summary>Wait before the first retry of a part; doubled for each further one (a server's <c>Retry-After</c> wins).</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);
}

public sealed partial class VlaCloudClient
{
    // ---- uploads

    /// <summary>Creates an upload for a file of known size and SHA-256; send its parts, then complete it.</summary>
    public Task<UploadResponse> CreateUploadAsync(CreateUploadRequest request, CancellationToken cancellationToken = default) =>
        SendAsync<UploadResponse>(HttpMethod.Post, "v1/uploads", request, cancellationToken);

    /// <summary>An upload with the parts received so far.</summary>
    public Task<UploadResponse> GetUploadAsync(Guid id, CancellationToken cancellationToken = default) =>
        SendAsync<UploadResponse>(HttpMethod.Get, $"v1/uploads/{id}", null, cancellationToken);

    /// <summary>Sends part <paramref name="partNumber"/> (from 1) of an upload; sending a part again replaces it.</summary>
    public async Task<UploadPartResponse> PutUploadPartAsync(
        Guid id, int partNumber, ReadOnlyMemory<byte> content, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        // No request time limit: a large part on a slow link takes as long as it takes; the token cancels it.
        using var body = MemoryMarshal.TryGetArray(content, out var segment)
            ? new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false)
            : new MemoryStream(content.ToArray(), writable: false);
        using var request = new HttpRequestMessage(HttpMethod.Put, $"v1/uploads/{id}/parts/{partNumber}") { Content = new ProgressStreamContent(body, progress) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var response = await http.SendAsync(request, cancellationToken);
        return await ReadAsync<UploadPartResponse>(response, cancellationToken);
    }

    /// <summary>
    /// Assembles the parts in order and verifies size and SHA-256; a dataset upload becomes a dataset in validation
    /// (its id is <see cref="UploadResponse.DatasetId"/>).
    /// </summary>
    public Task<UploadResponse> CompleteUploadAsync(Guid id, CompleteUploadRequest? request = null, CancellationToken cancellationToken = default) =>
        SendAsync<UploadResponse>(HttpMethod.Post, $"v1/uploads/{id}/complete", request ?? new CompleteUploadRequest(), cancellationToken);

    /// <summary>Cancels an incomplete upload and deletes its parts.</summary>
    public Task<UploadResponse> CancelUploadAsync(Guid id, CancellationToken cancellationToken = default) =>
        SendAsync<UploadResponse>(HttpMethod.Post, $"v1/uploads/{id}/cancel", null, cancellationToken);

    /// <summary>Uploads the file at <paramref name="path"/> in parts and completes it; see <see cref="UploadAsync"/>.</summary>
    public async Task<UploadResponse> UploadFileAsync(
        string path, UploadFileOptions? options = null, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new UploadFileOptions();
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
        return await UploadAsync(file, options.Filename ?? Path.GetFileName(path), options, progress, cancellationToken);
    }

    /// <summary>
    /// Uploads a seekable stream as <paramref name="filename"/>: hashes it, creates the upload, sends it in parts of
    /// <see cref="UploadFileOptions.PartSize"/> (a part that fails in transit is sent again, up to
    /// <see cref="UploadFileOptions.MaxAttempts"/> times), and completes it. <paramref name="progress"/> receives the
    /// bytes the server has (it falls back when a part is retried). When the upload cannot finish it is cancelled,
    /// so its parts do not linger until expiry.
    /// </summary>
    public async Task<UploadResponse> UploadAsync(
        Stream content, string filename, UploadFileOptions? options = null, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new UploadFileOptions();
        if (!content.CanSeek) throw new ArgumentException("The content must be seekable (it is read twice: to hash it, then to send it).", nameof(content));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.PartSize, 1, nameof(options.PartSize));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxAttempts, 1, nameof(options.MaxAttempts));

        var start = content.Position;
        var length = content.Length - start;
        var sha256 = Convert.ToHexStringLower(await SHA256.HashDataAsync(content, cancellationToken));
        var upload = await CreateUploadAsync(new CreateUploadRequest(filename, length, sha256, options.Purpose, options.MimeType, options.Embodiment), cancellationToken);
        try
        {
            content.Position = start;
            var buffer = new byte[(int)Math.Min(options.PartSize, Math.Max(1, length))];
            long done = 0;
            for (var n = 1; done < length; n++)
            {
                var size = (int)Math.Min(buffer.Length, length - done);
                await content.ReadExactlyAsync(buffer.AsMemory(0, size), cancellationToken);
                var partStart = done;
                await PutPartWithRetriesAsync(upload.Id, n, buffer.AsMemory(0, size), options,
                    progress is null ? null : new RelayProgress(sent => progress.Report(partStart + sent)), cancellationToken);
                done += size;
            }
            return await CompleteUploadAsync(upload.Id, null, cancellationToken);
        }
        catch (Exception)
        {
            await TryCancelAsync(upload.Id);
            throw;
        }
    }

    private async Task PutPartWithRetriesAsync(
        Guid id, int partNumber, ReadOnlyMemory<byte> part, UploadFileOptions options, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        var delay = options.RetryDelay;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await PutUploadPartAsync(id, partNumber, part, progress, cancellationToken);
                return;
            }
            catch (Exception e) when (attempt < options.MaxAttempts && IsTransient(e, cancellationToken))
            {
                progress?.Report(0);
                await Task.Delay(e is VlaCloudApiException { RetryAfter: { } after } && after > delay ? after : delay, cancellationToken);
                delay *= 2;
            }
        }
    }

    /// <summary>Whether a failed request may succeed when sent again: lost in transit, or refused for load (429, 5xx) rather than for its content.</summary>
    private static bool IsTransient(Exception e, CancellationToken cancellationToken) => e switch
    {
        VlaCloudApiException api => api.StatusCode is HttpStatusCode.TooManyRequests or HttpStatusCode.RequestTimeout || (int)api.StatusCode >= 500,
        HttpRequestException or IOException => true,
        OperationCanceledException => !cancellationToken.IsCancellationRequested,
        _ => false,
    };

    private async Task TryCancelAsync(Guid uploadId)
    {
        // Best effort with a fresh token: the caller's may be the reason we are here. The expiry job is the backstop.
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await CancelUploadAsync(uploadId, timeout.Token);
        }
        catch (Exception e) when (e is VlaCloudApiException or HttpRequestException or IOException or OperationCanceledException or TimeoutException)
        {
        }
    }

    // ---- datasets

    /// <summary>One page of the caller's datasets, newest first, optionally only those with <paramref name="status"/>.</summary>
    public Task<ListPage<DatasetResponse>> ListDatasetsAsync(string? status = null, Guid? after = null, int? limit = null, CancellationToken cancellationToken = default) =>
        SendAsync<ListPage<DatasetResponse>>(HttpMethod.Get, "v1/datasets" + Query(("status", status), ("after", after), ("limit", limit)), null, cancellationToken);

    /// <summary>Every dataset of the caller (optionally with <paramref name="status"/>), fetching pages as the enumeration goes.</summary>
    public IAsyncEnumerable<DatasetResponse> ListAllDatasetsAsync(string? status = null, CancellationToken cancellationToken = default) =>
        AllPagesAsync((after, ct) => ListDatasetsAsync(status, after, ApiPageLimit, ct), cancellationToken);

    /// <summary>One dataset with its validation problems and statistics.</summary>
    public Task<DatasetResponse> GetDatasetAsync(Guid id, CancellationToken cancellationToken = default) =>
        SendAsync<DatasetResponse>(HttpMethod.Get, $"v1/datasets/{id}", null, cancellationToken);

    /// <summary>
    /// Polls a dataset every <paramref name="pollInterval"/> (default 1 s) until its validation ends, and returns it:
    /// <c>ready</c>, or <c>failed</c> with its <see cref="DatasetResponse.Issues"/>. Bound the wait with the token.
    /// </summary>
    public async Task<DatasetResponse> WaitForDatasetAsync(Guid id, TimeSpan? pollInterval = null, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var dataset = await GetDatasetAsync(id, cancellationToken);
            if (dataset.Status != "validating") return dataset;
            await Task.Delay(pollInterval ?? TimeSpan.FromSeconds(1), cancellationToken);
        }
    }

    // ---- imports of released runs

    /// <summary>
    /// Starts the import of a released InternVLA-M1 run whose bundle was uploaded (purpose <c>checkpoint_import</c>) or
    /// stored; a trainer converts and registers it. Follow it with <see cref="WaitForCheckpointImportAsync"/>.
    /// </summary>
    public Task<CheckpointImportResponse> CreateCheckpointImportAsync(CreateCheckpointImportRequest request, CancellationToken cancellationToken = default) =>
        SendAsync<CheckpointImportResponse>(HttpMethod.Post, "v1/checkpoints/imports", request, cancellationToken);

    /// <summary>One import.</summary>
    public Task<CheckpointImportResponse> GetCheckpointImportAsync(Guid id, CancellationToken cancellationToken = default) =>
        SendAsync<CheckpointImportResponse>(HttpMethod.Get, $"v1/checkpoints/imports/{id}", null, cancellationToken);

    /// <summary>
    /// Uploads the bundle at <paramref name="bundlePath"/> (a tar of the run's <c>config.yaml</c>,
    /// <c>dataset_statistics.json</c>, <c>checkpoints/NAME.pt</c> and <c>qwen/config.json</c>, <c>qwen/tokenizer.json</c>)
    /// in parts and starts its import; <paramref name="request"/>'s upload is filled in.
    /// </summary>
    public async Task<CheckpointImportResponse> ImportCheckpointBundleAsync(
        string bundlePath, CreateCheckpointImportRequest request, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        var upload = await UploadFileAsync(bundlePath, new UploadFileOptions { Purpose = "checkpoint_import", MimeType = "application/x-tar" }, progress, cancellationToken);
        return await CreateCheckpointImportAsync(request with { Upload = upload.Id, ArtifactSha256 = null }, cancellationToken);
    }

    /// <summary>
    /// Polls an import every <paramref name="pollInterval"/> (default 1 s) until it ends, and returns it: <c>succeeded</c>
    /// with its checkpoint, or <c>failed</c> with its error. Bound the wait with the token.
    /// </summary>
    public async Task<CheckpointImportResponse> WaitForCheckpointImportAsync(Guid id, TimeSpan? pollInterval = null, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var import = await GetCheckpointImportAsync(id, cancellationToken);
            if (import.Status is "succeeded" or "failed") return import;
            await Task.Delay(pollInterval ?? TimeSpan.FromSeconds(1), cancellationToken);
        }
    }

    // ---- fine-tuning jobs

    /// <summary>Creates a fine-tuning job (base checkpoint + ready dataset → the next version of a model); it is queued for a trainer.</summary>
    public Task<FineTuningJobResponse> CreateFineTuningJobAsync(CreateFineTuningJobRequest request, CancellationToken cancellationToken = default) =>
        SendAsync<FineTuningJobResponse>(HttpMethod.Post, "v1/fine_tuning/jobs", request, cancellationToken);

    /// <summary>One page of the caller's jobs, newest first.</summary>
    public Task<ListPage<FineTuningJobResponse>> ListFineTuningJobsAsync(Guid? after = null, int? limit = null, CancellationToken cancellationToken = default) =>
        SendAsync<ListPage<FineTuningJobResponse>>(HttpMethod.Get, "v1/fine_tuning/jobs" + Query(("after", after), ("limit", limit)), null, cancellationToken);

    /// <summary>Every job of the caller, fetching pages as the enumeration goes.</summary>
    public IAsyncEnumerable<FineTuningJobResponse> ListAllFineTuningJobsAsync(CancellationToken cancellationToken = default) =>
        AllPagesAsync((after, ct) => ListFineTuningJobsAsync(after, ApiPageLimit, ct), cancellationToken);

    /// <summary>One job: status, progress, metrics, result.</summary>
    public Task<FineTuningJobResponse> GetFineTuningJobAsync(Guid id, CancellationToken cancellationToken = default) =>
        SendAsync<FineTuningJobResponse>(HttpMethod.Get, $"v1/fine_tuning/jobs/{id}", null, cancellationToken);

    /// <summary>Cancels a queued or running job (a running one stops within seconds and registers nothing); 409 when it already ended.</summary>
    public Task<FineTuningJobResponse> CancelFineTuningJobAsync(Guid id, CancellationToken cancellationToken = default) =>
        SendAsync<FineTuningJobResponse>(HttpMethod.Post, $"v1/fine_tuning/jobs/{id}/cancel", null, cancellationToken);

    /// <summary>One page of a job's events in order (oldest first), after sequence number <paramref name="after"/>.</summary>
    public Task<ListPage<JobEventResponse>> ListFineTuningJobEventsAsync(Guid id, long? after = null, int? limit = null, CancellationToken cancellationToken = default) =>
        SendAsync<ListPage<JobEventResponse>>(HttpMethod.Get, $"v1/fine_tuning/jobs/{id}/events" + Query(("after", after), ("limit", limit)), null, cancellationToken);

    /// <summary>Every event of a job so far (after <paramref name="after"/>), fetching pages as the enumeration goes.</summary>
    public async IAsyncEnumerable<JobEventResponse> ListAllFineTuningJobEventsAsync(
        Guid id, long? after = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var page = await ListFineTuningJobEventsAsync(id, after, ApiPageLimit, cancellationToken);
            foreach (var e in page.Data) yield return e;
            if (!page.HasMore || page.Data.Count == 0) yield break;
            after = page.Data[^1].Id;
        }
    }

    /// <summary>
    /// A job's events as they happen (Server-Sent Events), from after <paramref name="after"/> (default: the first),
    /// ending when the job has ended and every event was delivered. A connection that drops after it delivered events is
    /// resumed after the last event received (a few times in a row at most), so none is lost or repeated. Get the job afterwards for its
    /// final status and result.
    /// </summary>
    public async IAsyncEnumerable<JobEventResponse> StreamFineTuningJobEventsAsync(
        Guid id, long? after = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        const int maxReconnects = 5;
        var last = after ?? 0;
        var failures = 0;
        // The server says how long to wait before reconnecting (SSE "retry"); until it has, a pause that grows.
        TimeSpan? reconnectAfter = null;
        // Only a stream that worked is resumed; a first connection that fails is an error to report at once.
        var received = false;
        while (true)
        {
            var stream = OpenEventStreamAsync(id, last, cancellationToken);
            var enumerator = stream.GetAsyncEnumerator(cancellationToken);
            try
            {
                while (true)
                {
                    SseItem<string> message;
                    try
                    {
                        if (!await enumerator.MoveNextAsync()) break;
                        message = enumerator.Current;
                    }
                    catch (Exception e) when (e is HttpRequestException { StatusCode: null } or IOException && received && failures < maxReconnects)
                    {
                        break;
                    }
                    received = true;
                    if (message.ReconnectionInterval is { } interval) reconnectAfter = interval;
                    if (message.EventType == "done") yield break;
                    var item = JsonSerializer.Deserialize<JobEventResponse>(message.Data, Json)
                               ?? throw new InvalidDataException($"An empty '{message.EventType}' event arrived on the stream of job {id}.");
                    last = item.Id;
                    failures = 0;
                    yield return item;
                }
            }
            finally
            {
                await enumerator.DisposeAsync();
            }
            // The stream ended without "done": the connection dropped. Resume after the last event, after a pause.
            if (++failures > maxReconnects) throw new IOException($"The event stream of job {id} ended {failures} times in a row before the job did.");
            await Task.Delay(reconnectAfter ?? TimeSpan.FromSeconds(failures), cancellationToken);
        }
    }

    /// <summary>The messages of one connection to a job's event stream, parsed by the runtime's SSE parser.</summary>
    private async IAsyncEnumerable<SseItem<string>> OpenEventStreamAsync(Guid id, long after, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"v1/fine_tuning/jobs/{id}/events/stream" + Query(("after", after)));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        // Headers within the request time limit; the body flows for as long as the job runs.
        HttpResponseMessage response;
        using (var timeout = WithTimeout(cancellationToken))
        {
            try
            {
                response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"The event stream of job {id} did not start within {options.RequestTimeout.TotalSeconds:0.#} s.", e);
            }
        }
        using (response)
        {
            if (!response.IsSuccessStatusCode) throw await ErrorAsync(response, cancellationToken);
            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            await foreach (var item in SseParser.Create(body).EnumerateAsync(cancellationToken)) yield return item;
        }
    }

    /// <summary>One page of the training states a job saved, newest first, with their metrics.</summary>
    public Task<ListPage<JobCheckpointResponse>> ListFineTuningJobCheckpointsAsync(Guid id, Guid? after = null, int? limit = null, CancellationToken cancellationToken = default) =>
        SendAsync<ListPage<JobCheckpointResponse>>(HttpMethod.Get, $"v1/fine_tuning/jobs/{id}/checkpoints" + Query(("after", after), ("limit", limit)), null, cancellationToken);

    /// <summary>The job's training series: steps with losses and learning rates, evaluations, saved and resumed steps.</summary>
    public Task<JobMetricsResponse> GetFineTuningJobMetricsAsync(Guid id, CancellationToken cancellationToken = default) =>
        SendAsync<JobMetricsResponse>(HttpMethod.Get, $"v1/fine_tuning/jobs/{id}/metrics", null, cancellationToken);

    /// <summary>The job's training series as CSV (one row per step; docs in the metrics route).</summary>
    public async Task<string> GetFineTuningJobMetricsCsvAsync(Guid id, CancellationToken cancellationToken = default)
    {
        using var timeout = WithTimeout(cancellationToken);
        using var request = new HttpRequestMessage(HttpMethod.Get, $"v1/fine_tuning/jobs/{id}/metrics");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/csv"));
        using var response = await http.SendAsync(request, timeout.Token);
        if (!response.IsSuccessStatusCode) throw await ErrorAsync(response, timeout.Token);
        return await response.Content.ReadAsStringAsync(timeout.Token);
    }

    /// <summary>The job's loss curves as an SVG document.</summary>
    public async Task<string> GetFineTuningJobLossCurveAsync(Guid id, CancellationToken cancellationToken = default)
    {
        using var timeout = WithTimeout(cancellationToken);
        using var response = await http.GetAsync($"v1/fine_tuning/jobs/{id}/loss_curve", timeout.Token);
        if (!response.IsSuccessStatusCode) throw await ErrorAsync(response, timeout.Token);
        return await response.Content.ReadAsStringAsync(timeout.Token);
    }

    /// <summary>Forwards reports on the reporting thread (no synchronisation context hop, unlike <see cref="Progress{T}"/>).</summary>
    private sealed class RelayProgress(Action<long> report) : IProgress<long>
    {
        public void Report(long value) => report(value);
    }
}
