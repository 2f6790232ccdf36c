using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using VlaCloud.Contracts;

namespace VlaCloud.Client;

/// <summary>
/// The VlaCloud REST API, typed: health, embodiments, checkpoints, aliases, usage, admin, act, and
/// <see cref="ConnectStreamAsync"/> for closed-loop WebSocket sessions. Every refusal surfaces as a
/// <see cref="VlaCloudApiException"/> carrying the server's problem details. Thread-safe; keep one per server.
/// </summary>
public sealed partial class VlaCloudClient : IDisposable
{
    /// <summary>How the API's JSON is read and written (snake_case names are on the contracts).</summary>
    public static JsonSerializerOptions Json { get; } = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    private readonly HttpClient http;
    private readonly VlaCloudClientOptions options;

    /// <summary>A client for <paramref name="baseUrl"/> authenticating with <paramref name="apiKey"/>.</summary>
    public VlaCloudClient(Uri baseUrl, string? apiKey)
        : this(new VlaCloudClientOptions { BaseUrl = baseUrl, ApiKey = apiKey })
    {
    }

    /// <summary>A client configured by <paramref name="options"/>.</summary>
    public VlaCloudClient(VlaCloudClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options.BaseUrl);
        this.options = options;
        var baseUrl = options.BaseUrl.AbsoluteUri.EndsWith('/') ? options.BaseUrl : new Uri(options.BaseUrl.AbsoluteUri + "/");
        http = new HttpClient(options.Handler ?? new SocketsHttpHandler(), disposeHandler: options.Handler is null)
        {
            BaseAddress = baseUrl,
            Timeout = System.Threading.Timeout.InfiniteTimeSpan,
        };
        http.DefaultRequestHeaders.UserAgent.ParseAdd(options.UserAgent);
        if (!string.IsNullOrEmpty(options.ApiKey)) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", options.ApiKey);
    }

    /// <summary>The server's base URL.</summary>
    public Uri BaseUrl => http.BaseAddress!;

    // ---- system

    /// <summary><c>GET /healthz</c>: whether the process serves HTTP.</summary>
    public Task<HealthReportResponse> GetHealthAsync(CancellationToken cancellationToken = default) =>
        SendAsync<HealthReportResponse>(HttpMethod.Get, "healthz", null, cancellationToken);

    /// <summary><c>GET /readyz</c>: Postgres and Redis answer. A 503 is returned as a report with status <c>Unhealthy</c>, not thrown.</summary>
    public async Task<HealthReportResponse> GetReadinessAsync(CancellationToken cancellationToken = default)
    {
        using var timeout = WithTimeout(cancellationToken);
        using var response = await http.GetAsync("readyz", timeout.Token);
        if (response.StatusCode == HttpStatusCode.ServiceUnavailable && await TryReadAsync<HealthReportResponse>(response, timeout.Token) is { } report)
            return report;
        return await ReadAsync<HealthReportResponse>(response, timeout.Token);
    }

    // ---- embodiments

    /// <summary>One page of the caller's and the public embodiments, newest first.</summary>
    public Task<ListPage<EmbodimentResponse>> ListEmbodimentsAsync(Guid? after = null, int? limit = null, CancellationToken cancellationToken = default) =>
        SendAsync<ListPage<EmbodimentResponse>>(HttpMethod.Get, "v1/embodiments" + Query(("after", after), ("limit", limit)), null, cancellationToken);

    /// <summary>Every visible embodiment, fetching pages as the enumeration goes.</summary>
    public IAsyncEnumerable<EmbodimentResponse> ListAllEmbodimentsAsync(CancellationToken cancellationToken = default) =>
        AllPagesAsync((after, ct) => ListEmbodimentsAsync(after, ApiPageLimit, ct), cancellationToken);

    /// <summary>One embodiment by id.</summary>
    public Task<EmbodimentResponse> GetEmbodimentAsync(Guid id, CancellationToken cancellationToken = default) =>
        SendAsync<EmbodimentResponse>(HttpMethod.Get, $"v1/embodiments/{id}", null, cancellationToken);

    /// <summary>Creates an embodiment owned by the caller's tenant.</summary>
    public Task<EmbodimentResponse> CreateEmbodimentAsync(CreateEmbodimentRequest request, CancellationToken cancellationToken = default) =>
        SendAsync<EmbodimentResponse>(HttpMethod.Post, "v1/embodiments", request, cancellationToken);

    // ---- checkpoints

    /// <summary>One page of visible checkpoints, newest first, optionally of one model and/or embodiment (id or name).</summary>
    public Task<ListPage<CheckpointResponse>> ListCheckpointsAsync(
        string? model = null, string? embodiment = null, Guid? after = null, int? limit = null, CancellationToken cancellationToken = default) =>
        SendAsync<ListPage<CheckpointResponse>>(HttpMethod.Get,
            "v1/checkpoints" + Query(("model", model), ("embodiment", embodiment), ("after", after), ("limit", limit)), null, cancellationToken);

    /// <summary>Every visible checkpoint (optionally of one model and/or embodiment), fetching pages as the enumeration goes.</summary>
    public IAsyncEnumerable<CheckpointResponse> ListAllCheckpointsAsync(string? model = null, string? embodiment = null, CancellationToken cancellationToken = default) =>
        AllPagesAsync((after, ct) => ListCheckpointsAsync(model, embodiment, after, ApiPageLimit, ct), cancellationToken);

    /// <summary>One checkpoint by id.</summary>
    public Task<CheckpointResponse> GetCheckpointAsync(Guid id, CancellationToken cancellationToken = default) =>
        SendAsync<CheckpointResponse>(HttpMethod.Get, $"v1/checkpoints/{id}", null, cancellationToken);

    /// <summary>Resolves a reference (id, <c>model@vN</c> or <c>model@alias</c>) as inference does.</summary>
    public Task<CheckpointResponse> ResolveCheckpointAsync(string reference, string? embodiment = null, CancellationToken cancellationToken = default) =>
        SendAsync<CheckpointResponse>(HttpMethod.Get, "v1/checkpoints/resolve" + Query(("ref", reference), ("embodiment", embodiment)), null, cancellationToken);

    /// <summary>
    /// Downloads checkpoint <paramref name="id"/>'s artifact (the policy tar; docs/export.md) to <paramref name="path"/>,
    /// resumably: the bytes land in <c>path.part</c> first, and a later call with the same path continues from its end with a
    /// range request guarded by <c>If-Range</c> on the artifact's SHA-256 (so a different artifact restarts the download
    /// instead of being spliced onto the old bytes). The finished file is checked against the SHA-256 before it is renamed
    /// to <paramref name="path"/>. <paramref name="progress"/> receives (bytes on disk, total bytes).
    /// </summary>
    /// <exception cref="InvalidDataException">The downloaded bytes do not hash to the checkpoint's SHA-256 (the part file is deleted).</exception>
    public async Task<CheckpointDownload> DownloadCheckpointAsync(Guid id, string path, IProgress<(long Done, long Total)>? progress = null,
        CancellationToken cancellationToken = default)
    {
        var checkpoint = await GetCheckpointAsync(id, cancellationToken);
        var part = path + ".part";
        var resumeFrom = File.Exists(part) ? new FileInfo(part).Length : 0;
        if (resumeFrom > checkpoint.SizeBytes) resumeFrom = 0;
        using var request = new HttpRequestMessage(HttpMethod.Get, $"v1/checkpoints/{id}/content");
        if (resumeFrom > 0)
        {
            request.Headers.Range = new RangeHeaderValue(resumeFrom, null);
            request.Headers.IfRange = new RangeConditionHeaderValue(new EntityTagHeaderValue($"\"{checkpoint.Sha256}\""));
        }
        long resumed = 0;
        // A part file that is already whole asks for a range past the end; the server's 416 means "nothing left to fetch".
        using (var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken))
        {
            if (response.StatusCode != HttpStatusCode.RequestedRangeNotSatisfiable || resumeFrom != checkpoint.SizeBytes)
            {
                if (!response.IsSuccessStatusCode) throw await ErrorAsync(response, cancellationToken);
                var append = response.StatusCode == HttpStatusCode.PartialContent;
                resumed = append ? resumeFrom : 0;
                var total = response.Content.Headers.ContentRange?.Length ?? response.Content.Headers.ContentLength ?? checkpoint.SizeBytes;
                await using var source = await response.Content.ReadAsStreamAsync(cancellationToken);
                await using var target = new FileStream(part, append ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
                var buffer = new byte[1 << 20];
                var done = resumed;
                int read;
                while ((read = await source.ReadAsync(buffer, cancellationToken)) > 0)
                {
                    await target.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                    done += read;
                    progress?.Report((done, total));
                }
            }
        }
        string actual;
        await using (var written = File.OpenRead(part))
            actual = Convert.ToHexStringLower(await System.Security.Cryptography.SHA256.HashDataAsync(written, cancellationToken));
        if (actual != checkpoint.Sha256)
        {
            File.Delete(part);
            throw new InvalidDataException($"The download of checkpoint {id} hashes to {actual}, not its sha256 {checkpoint.Sha256}; download it again.");
        }
        File.Move(part, path, overwrite: true);
        return new CheckpointDownload(checkpoint, Path.GetFullPath(path), resumed);
    }

    /// <summary>
    /// Stores a checkpoint file (a policy tar) read from <paramref name="content"/>; register it with
    /// <see cref="RegisterCheckpointAsync"/>. <paramref name="progress"/> receives the bytes sent so far.
    /// </summary>
    public async Task<ArtifactResponse> PutArtifactAsync(Stream content, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/checkpoints/artifacts") { Content = new ProgressStreamContent(content, progress) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var response = await http.SendAsync(request, cancellationToken);
        return await ReadAsync<ArtifactResponse>(response, cancellationToken);
    }

    /// <summary>Registers a stored artifact as the next version of a model for an embodiment.</summary>
    public Task<CheckpointResponse> RegisterCheckpointAsync(RegisterCheckpointRequest request, CancellationToken cancellationToken = default)
    {
        // An absent metrics object is sent as JSON null (a default JsonElement cannot be written).
        if (request.Metrics.ValueKind == JsonValueKind.Undefined) request = request with { Metrics = JsonNull };
        return SendAsync<CheckpointResponse>(HttpMethod.Post, "v1/checkpoints", request, cancellationToken);
    }

    // ---- aliases

    /// <summary>The aliases of a model.</summary>
    public Task<ListPage<AliasResponse>> ListAliasesAsync(string model, CancellationToken cancellationToken = default) =>
        SendAsync<ListPage<AliasResponse>>(HttpMethod.Get, $"v1/models/{Esc(model)}/aliases", null, cancellationToken);

    /// <summary>One alias and the checkpoint it points at.</summary>
    public Task<AliasResponse> GetAliasAsync(string model, string alias, CancellationToken cancellationToken = default) =>
        SendAsync<AliasResponse>(HttpMethod.Get, $"v1/models/{Esc(model)}/aliases/{Esc(alias)}", null, cancellationToken);

    /// <summary>Creates or moves <c>model@alias</c> to <paramref name="checkpoint"/> (an id, <c>model@vN</c> or another alias): promotion.</summary>
    public Task<AliasResponse> SetAliasAsync(string model, string alias, string checkpoint, string? reason = null, CancellationToken cancellationToken = default) =>
        SendAsync<AliasResponse>(HttpMethod.Put, $"v1/models/{Esc(model)}/aliases/{Esc(alias)}", new SetAliasRequest(checkpoint, reason), cancellationToken);

    /// <summary>Moves an alias back to where it pointed before its last move.</summary>
    public Task<AliasResponse> RollbackAliasAsync(string model, string alias, string? reason = null, CancellationToken cancellationToken = default) =>
        SendAsync<AliasResponse>(HttpMethod.Post, $"v1/models/{Esc(model)}/aliases/{Esc(alias)}/rollback", new RollbackAliasRequest(reason), cancellationToken);

    /// <summary>One page of an alias's moves, newest first.</summary>
    public Task<ListPage<AliasMoveResponse>> GetAliasHistoryAsync(string model, string alias, Guid? after = null, int? limit = null, CancellationToken cancellationToken = default) =>
        SendAsync<ListPage<AliasMoveResponse>>(HttpMethod.Get, $"v1/models/{Esc(model)}/aliases/{Esc(alias)}/history" + Query(("after", after), ("limit", limit)), null, cancellationToken);

    /// <summary>Deletes an alias (the deletion stays in its history).</summary>
    public Task DeleteAliasAsync(string model, string alias, CancellationToken cancellationToken = default) =>
        SendAsync<object>(HttpMethod.Delete, $"v1/models/{Esc(model)}/aliases/{Esc(alias)}", null, cancellationToken);

    // ---- usage

    /// <summary>Metered use per UTC day and checkpoint between <paramref name="from"/> and <paramref name="to"/> (default: this month), with the compute quota.</summary>
    public Task<UsageResponse> GetUsageAsync(DateOnly? from = null, DateOnly? to = null, CancellationToken cancellationToken = default) =>
        SendAsync<UsageResponse>(HttpMethod.Get, "v1/usage" + Query(("from", from), ("to", to)), null, cancellationToken);

    // ---- admin (a platform administrator's key: scope admin, no tenant)

    /// <summary>Creates a tenant.</summary>
    public Task<TenantResponse> CreateTenantAsync(CreateTenantRequest request, CancellationToken cancellationToken = default) =>
        SendAsync<TenantResponse>(HttpMethod.Post, "v1/admin/tenants", request, cancellationToken);

    /// <summary>One page of tenants, newest first.</summary>
    public Task<ListPage<TenantResponse>> ListTenantsAsync(Guid? after = null, int? limit = null, CancellationToken cancellationToken = default) =>
        SendAsync<ListPage<TenantResponse>>(HttpMethod.Get, "v1/admin/tenants" + Query(("after", after), ("limit", limit)), null, cancellationToken);

    /// <summary>One tenant.</summary>
    public Task<TenantResponse> GetTenantAsync(Guid id, CancellationToken cancellationToken = default) =>
        SendAsync<TenantResponse>(HttpMethod.Get, $"v1/admin/tenants/{id}", null, cancellationToken);

    /// <summary>Changes a tenant's display name or limits.</summary>
    public Task<TenantResponse> UpdateTenantAsync(Guid id, UpdateTenantRequest request, CancellationToken cancellationToken = default) =>
        SendAsync<TenantResponse>(HttpMethod.Patch, $"v1/admin/tenants/{id}", request, cancellationToken);

    /// <summary>Creates an API key for a tenant; the response is the only place its secret appears.</summary>
    public Task<CreatedApiKeyResponse> CreateApiKeyAsync(Guid tenantId, CreateApiKeyRequest request, CancellationToken cancellationToken = default) =>
        SendAsync<CreatedApiKeyResponse>(HttpMethod.Post, $"v1/admin/tenants/{tenantId}/api-keys", request, cancellationToken);

    /// <summary>A tenant's keys (never their secrets).</summary>
    public Task<ListPage<ApiKeyResponse>> ListApiKeysAsync(Guid tenantId, CancellationToken cancellationToken = default) =>
        SendAsync<ListPage<ApiKeyResponse>>(HttpMethod.Get, $"v1/admin/tenants/{tenantId}/api-keys", null, cancellationToken);

    /// <summary>Revokes a key.</summary>
    public Task RevokeApiKeyAsync(Guid tenantId, Guid keyId, CancellationToken cancellationToken = default) =>
        SendAsync<object>(HttpMethod.Delete, $"v1/admin/tenants/{tenantId}/api-keys/{keyId}", null, cancellationToken);

    /// <summary>Creates another platform administrator's key; the response is the only place its secret appears.</summary>
    public Task<CreatedApiKeyResponse> CreateAdminKeyAsync(CreateAdminKeyRequest request, CancellationToken cancellationToken = default) =>
        SendAsync<CreatedApiKeyResponse>(HttpMethod.Post, "v1/admin/api-keys", request, cancellationToken);

    /// <summary>The platform administrators' keys (never their secrets).</summary>
    public Task<ListPage<ApiKeyResponse>> ListAdminKeysAsync(CancellationToken cancellationToken = default) =>
        SendAsync<ListPage<ApiKeyResponse>>(HttpMethod.Get, "v1/admin/api-keys", null, cancellationToken);

    /// <summary>Revokes a platform administrator's key.</summary>
    public Task RevokeAdminKeyAsync(Guid keyId, CancellationToken cancellationToken = default) =>
        SendAsync<object>(HttpMethod.Delete, $"v1/admin/api-keys/{keyId}", null, cancellationToken);

    // ---- inference

    /// <summary><c>POST /v1/act</c>: one observation in, one action chunk out.</summary>
    public Task<ActResponse> ActAsync(ActRequest request, CancellationToken cancellationToken = default) =>
        SendAsync<ActResponse>(HttpMethod.Post, "v1/act", request, cancellationToken);

    // ---- plumbing

    /// <summary>
    /// <c>GET</c> of an API path relative to the base URL (e.g. <c>v1/checkpoints?limit=10</c>), returning the body exactly
    /// as the server sent it, for tools that pass the API's JSON through (the CLI's <c>--json</c>). A refusal throws
    /// <see cref="VlaCloudApiException"/> like every other call.
    /// </summary>
    public async Task<string> GetRawJsonAsync(string relativePath, CancellationToken cancellationToken = default)
    {
        using var timeout = WithTimeout(cancellationToken);
        using var response = await http.GetAsync(relativePath.TrimStart('/'), timeout.Token);
        if (!response.IsSuccessStatusCode) throw await ErrorAsync(response, timeout.Token);
        return await response.Content.ReadAsStringAsync(timeout.Token);
    }

    /// <summary>Page size used by the <c>ListAll…</c> enumerations (the API's maximum).</summary>
    public const int ApiPageLimit = 100;

    private static readonly JsonElement JsonNull = JsonDocument.Parse("null").RootElement.Clone();

    private async Task<T> SendAsync<T>(HttpMethod method, string path, object? body, CancellationToken cancellationToken)
    {
        using var timeout = WithTimeout(cancellationToken);
        using var request = new HttpRequestMessage(method, path);
        if (body is not null) request.Content = JsonContent.Create(body, body.GetType(), options: Json);
        try
        {
            using var response = await http.SendAsync(request, timeout.Token);
            return await ReadAsync<T>(response, timeout.Token);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"{method} {path} got no answer within {options.RequestTimeout.TotalSeconds:0.#} s.", e);
        }
    }

    private CancellationTokenSource WithTimeout(CancellationToken cancellationToken)
    {
        var source = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        source.CancelAfter(options.RequestTimeout);
        return source;
    }

    /// <summary>The body of a successful response as <typeparamref name="T"/>; a <see cref="VlaCloudApiException"/> otherwise.</summary>
    internal static async Task<T> ReadAsync<T>(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (!response.IsSuccessStatusCode) throw await ErrorAsync(response, cancellationToken);
        if (response.StatusCode == HttpStatusCode.NoContent || typeof(T) == typeof(object)) return default!;
        return await response.Content.ReadFromJsonAsync<T>(Json, cancellationToken)
               ?? throw new InvalidDataException($"The server answered {(int)response.StatusCode} with an empty body.");
    }

    private static async Task<T?> TryReadAsync<T>(HttpResponseMessage response, CancellationToken cancellationToken) where T : class
    {
        try
        {
            return await response.Content.ReadFromJsonAsync<T>(Json, cancellationToken);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The exception for a refused request, with its problem details (or ones made from the status).</summary>
    internal static async Task<VlaCloudApiException> ErrorAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        ApiProblem? problem = null;
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (text.Length > 0)
        {
            try
            {
                problem = JsonSerializer.Deserialize<ApiProblem>(text, Json);
            }
            catch (JsonException)
            {
            }
        }
        if (problem?.Title is null && problem?.Detail is null)
            problem = new ApiProblem(null, response.ReasonPhrase ?? response.StatusCode.ToString(), (int)response.StatusCode,
                text.Length is > 0 and < 500 ? text : null);
        TimeSpan? retryAfter = response.Headers.RetryAfter switch
        {
            { Delta: { } delta } => delta,
            { Date: { } date } => date - DateTimeOffset.UtcNow,
            _ => null,
        };
        return new VlaCloudApiException(response.StatusCode, problem, retryAfter);
    }

    private static async IAsyncEnumerable<T> AllPagesAsync<T>(
        Func<Guid?, CancellationToken, Task<ListPage<T>>> page, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        Guid? after = null;
        while (true)
        {
            var current = await page(after, cancellationToken);
            foreach (var item in current.Data) yield return item;
            if (!current.HasMore || current.LastId is null) yield break;
            after = Guid.Parse(current.LastId, CultureInfo.InvariantCulture);
        }
    }

    private static string Esc(string segment) => Uri.EscapeDataString(segment);

    /// <summary>A query string of the parameters that have a value.</summary>
    internal static string Query(params (string Name, object? Value)[] parameters)
    {
        var parts = parameters.Where(p => p.Value is not null)
            .Select(p => $"{p.Name}={Uri.EscapeDataString(p.Value switch
            {
                DateOnly d => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
                IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
                var v => v!.ToString()!,
            })}").ToList();
        return parts.Count == 0 ? "" : "?" + string.Join("&", parts);
    }

    /// <inheritdoc />
    public void Dispose() => http.Dispose();

    /// <summary>Request content read from a stream in 1 MiB pieces, reporting the bytes sent.</summary>
    private sealed class ProgressStreamContent(Stream source, IProgress<long>? progress) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            var buffer = new byte[1 << 20];
            long sent = 0;
            int read;
            while ((read = await source.ReadAsync(buffer, cancellationToken)) > 0)
            {
                await stream.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                sent += read;
                progress?.Report(sent);
            }
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
            SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override bool TryComputeLength(out long length)
        {
            length = source.CanSeek ? source.Length - source.Position : -1;
            return source.CanSeek;
        }
    }
}
