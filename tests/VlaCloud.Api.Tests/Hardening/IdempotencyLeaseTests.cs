using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using VlaCloud.Api.Tests.FineTuning;
using StackExchange.Redis;
using VlaCloud.Api.Idempotency;
using VlaCloud.Registry;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.Hardening;

/// <summary>
/// Issue 18, item 6: the idempotency "pending" marker lived 24 h, so a crash mid-request blocked retries for a day; a
/// replayed <c>CreateApiKey</c> stored the plaintext key in Redis.
/// </summary>
[Collection(HardeningCollection.Name)]
public sealed class IdempotencyLeaseTests(ServicesFixture services)
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(3);

    private static readonly Dictionary<string, string?> ShortLease = new() { ["VlaCloud:IdempotencyPendingLease"] = Lease.ToString() };

    [Fact]
    public async Task The_marker_of_a_request_that_died_lapses_after_its_lease_and_the_retry_runs()
    {
        await using var app = new VlaCloudAppFactory(services, ShortLease);
        var (tenant, key) = await app.CreateTenantAsync();
        var client = app.CreateClient(key);
        var body = new CreateEmbodimentRequest($"arm-{Guid.NewGuid():N}"[..12], 7, 0, "joint_position", [new CameraDto("top", 64, 64)], 10, 8);

        // What a host that died inside this request leaves behind: its running marker, written as the middleware writes it.
        using (var fingerprint = IdempotencyMiddleware.StartFingerprint("POST", "/v1/embodiments"))
        {
            fingerprint.AppendData(JsonSerializer.SerializeToUtf8Bytes(body, new JsonSerializerOptions(JsonSerializerDefaults.Web)));
            var storeKey = IdempotencyMiddleware.StoreKey(app.Services.GetRequiredService<RedisKeyspace>(), tenant.Id.ToString(), "died-1");
            var marker = IdempotencyMiddleware.PendingMarker(Convert.ToHexStringLower(fingerprint.GetHashAndReset()));
            // Its lease, as the middleware sets it (the next test shows a running request's marker never lives longer).
            await app.Services.GetRequiredService<IConnectionMultiplexer>().GetDatabase().StringSetAsync(storeKey, marker, Lease);
        }

        // Refused while the marker lives (the first retry may come after it already lapsed on a busy machine), then run:
        // it used to block retries for 24 h.
        var answers = new List<HttpStatusCode>();
        await Eventually.TrueAsync(async () =>
        {
            answers.Add((await Send(client, "died-1", body)).StatusCode);
            return answers[^1] != HttpStatusCode.Conflict;
        }, Lease * 5, () => $"answers {string.Join(", ", answers)}");
        Assert.Equal(HttpStatusCode.Created, answers[^1]);
    }

    [Fact]
    public async Task A_request_running_longer_than_the_lease_keeps_its_marker_so_a_retry_meanwhile_gets_409_not_a_second_run()
    {
        await using var app = new VlaCloudAppFactory(services, ShortLease);
        var (_, key) = await app.CreateTenantAsync();
        var client = app.CreateClient(key);
        var name = $"arm-{Guid.NewGuid():N}"[..12];
        var body = new CreateEmbodimentRequest(name, 7, 0, "joint_position", [new CameraDto("top", 64, 64)], 10, 8);

        // Hold the request inside its INSERT: another session inserts the same (tenant, name) and does not commit yet.
        var tenantId = (await SessionClient.KeyOfAsync(app, key)).TenantId;
        await using var connection = new NpgsqlConnection(services.PostgresConnectionString);
        await connection.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var insert = new NpgsqlCommand(
            "INSERT INTO embodiments (id, tenant_id, name, action_dim, state_dim, action_space, action_names, state_names, cameras, control_hz, chunk_length, created_at) " +
            "VALUES (@id, @tenant, @name, 7, 0, 'joint_position', '{}', '{}', '[]', 10, 8, now())", connection, transaction))
        {
            insert.Parameters.AddWithValue("id", Guid.NewGuid());
            insert.Parameters.AddWithValue("tenant", tenantId!.Value);
            insert.Parameters.AddWithValue("name", name);
            await insert.ExecuteNonQueryAsync();
        }

        var first = Send(client, "slow-1", body);
        try
        {
            // Three leases into the request: only the renewal can have kept the marker.
            await Task.Delay(Lease * 3);
            Assert.False(first.IsCompleted);
            var storeKey = IdempotencyMiddleware.StoreKey(app.Services.GetRequiredService<RedisKeyspace>(), tenantId.Value.ToString(), "slow-1");
            var ttl = await app.Services.GetRequiredService<IConnectionMultiplexer>().GetDatabase().KeyTimeToLiveAsync(storeKey);
            Assert.True(ttl > TimeSpan.Zero && ttl <= Lease, $"the running marker lives {ttl}");
            var retry = await Send(client, "slow-1", body).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(HttpStatusCode.Conflict, retry.StatusCode);
            Assert.Contains("still running", await retry.Content.ReadAsStringAsync());
        }
        finally
        {
            await transaction.RollbackAsync();
        }
        Assert.Equal(HttpStatusCode.Created, (await first).StatusCode);
        var replay = await Send(client, "slow-1", body);
        Assert.Equal(HttpStatusCode.Created, replay.StatusCode);
        Assert.True(replay.Headers.Contains(IdempotencyMiddleware.ReplayedHeader));
    }

    [Fact]
    public async Task A_replayed_api_key_creation_answers_409_naming_the_key_and_redis_never_holds_the_secret()
    {
        await using var app = new VlaCloudAppFactory(services);
        var admin = app.CreateClient(await app.CreateAdminKeyAsync());
        var tenant = (await (await admin.PostAsJsonAsync("/v1/admin/tenants", new CreateTenantRequest($"t-{Guid.NewGuid():N}"[..16]))).Content.ReadFromJsonAsync<TenantResponse>())!;

        HttpRequestMessage Create() => new(HttpMethod.Post, $"/v1/admin/tenants/{tenant.Id}/api-keys")
        {
            Content = JsonContent.Create(new CreateApiKeyRequest("robot", [ApiScopes.Inference])),
            Headers = { { IdempotencyMiddleware.HeaderName, "key-1" } },
        };
        var first = await admin.SendAsync(Create());
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        var created = (await first.Content.ReadFromJsonAsync<CreatedApiKeyResponse>())!;

        var replay = await admin.SendAsync(Create());
        Assert.Equal(HttpStatusCode.Conflict, replay.StatusCode);
        Assert.True(replay.Headers.Contains(IdempotencyMiddleware.ReplayedHeader));
        Assert.Equal("application/problem+json", replay.Content.Headers.ContentType?.MediaType);
        var problem = await replay.Content.ReadAsStringAsync();
        Assert.Contains(created.Key.Id.ToString(), problem);
        Assert.DoesNotContain(created.PlainKey, problem);
        Assert.Single((await admin.GetFromJsonAsync<ListPage<ApiKeyResponse>>($"/v1/admin/tenants/{tenant.Id}/api-keys"))!.Data);

        var secret = created.PlainKey.Split('_')[2];
        var redis = app.Services.GetRequiredService<IConnectionMultiplexer>();
        var prefix = app.Services.GetRequiredService<RedisKeyspace>().Prefix;
        var keys = redis.GetServers().Single().Keys(pattern: $"{prefix}*").ToList();
        Assert.NotEmpty(keys);
        var replays = 0;
        foreach (var stored in keys)
        {
            if (await redis.GetDatabase().KeyTypeAsync(stored) != RedisType.String) continue;
            var value = (string?)await redis.GetDatabase().StringGetAsync(stored) ?? "";
            Assert.DoesNotContain(secret, value);
            // A stored response keeps its body as base64 inside JSON: look inside it too.
            if (!value.StartsWith('{') || !JsonDocument.Parse(value).RootElement.TryGetProperty("Body", out var body) || body.ValueKind != JsonValueKind.String) continue;
            replays++;
            Assert.DoesNotContain(secret, System.Text.Encoding.UTF8.GetString(body.GetBytesFromBase64()));
        }
        Assert.True(replays > 0, "no stored response found to inspect");
    }

    private static Task<HttpResponseMessage> Send(HttpClient client, string idempotencyKey, CreateEmbodimentRequest body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/embodiments") { Content = JsonContent.Create(body) };
        request.Headers.Add(IdempotencyMiddleware.HeaderName, idempotencyKey);
        return client.SendAsync(request);
    }
}
