using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using VlaCloud.Api.Tests.Registry;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.Console;

/// <summary>The console's sign-in: an API key exchanged for an HttpOnly, SameSite=Strict cookie, CSRF on changes, and a session that ends with its key.</summary>
[Collection(RegistryCollection.Name)]
public sealed class ConsoleSessionTests(ServicesFixture services)
{
    [Fact]
    public async Task The_console_page_and_its_files_are_served_with_a_strict_content_security_policy_and_nothing_else_is()
    {
        await using var app = new VlaCloudAppFactory(services);
        var browser = app.CreateClient();

        var page = await browser.GetAsync("/console");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType!.MediaType);
        var csp = page.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("script-src 'self'", csp);
        Assert.Contains("frame-ancestors 'none'", csp);
        Assert.Contains("<script src=\"/console/app.js\"", await page.Content.ReadAsStringAsync());
        Assert.Equal("text/javascript", (await browser.GetAsync("/console/app.js")).Content.Headers.ContentType!.MediaType);
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/console/app.css")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await browser.GetAsync("/console/appsettings.json")).StatusCode);
    }

    [Fact]
    public async Task A_key_becomes_an_httponly_strict_cookie_that_authenticates_reads_needs_the_csrf_token_for_changes_and_ends_with_the_key()
    {
        await using var app = new VlaCloudAppFactory(services);
        var (tenant, key) = await app.CreateTenantAsync();
        var browser = app.CreateClient();

        var signIn = await browser.PostAsJsonAsync("/console/session", new { api_key = key });

        Assert.Equal(HttpStatusCode.OK, signIn.StatusCode);
        var cookie = signIn.Headers.GetValues("Set-Cookie").Single();
        Assert.StartsWith("vlacloud_console=", cookie);
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(key, cookie);
        var body = await signIn.Content.ReadAsStringAsync();
        Assert.DoesNotContain(key, body);
        var session = JsonDocument.Parse(body).RootElement;
        Assert.Equal(tenant.Id, session.GetProperty("tenant_id").GetGuid());
        var csrf = session.GetProperty("csrf_token").GetString()!;

        // Reads need only the cookie; a reload gets the same CSRF token back.
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/v1/checkpoints")).StatusCode);
        Assert.Equal(csrf, (await browser.GetFromJsonAsync<JsonElement>("/console/session")).GetProperty("csrf_token").GetString());

        // A change without the token (what a forged request would be) is refused; with it, it goes through.
        var forged = await browser.PostAsJsonAsync("/v1/embodiments", new CreateEmbodimentRequest("console-arm", 3, 0, "joint", [new CameraDto("main", 64, 64)], 10, 8));
        Assert.Equal(HttpStatusCode.Unauthorized, forged.StatusCode);
        using (var wrong = new HttpRequestMessage(HttpMethod.Post, "/v1/embodiments") { Content = JsonContent.Create(new CreateEmbodimentRequest("console-arm", 3, 0, "joint", [new CameraDto("main", 64, 64)], 10, 8)) })
        {
            wrong.Headers.Add("X-CSRF-Token", new string('0', 64));
            Assert.Equal(HttpStatusCode.Unauthorized, (await browser.SendAsync(wrong)).StatusCode);
        }
        using (var real = new HttpRequestMessage(HttpMethod.Post, "/v1/embodiments") { Content = JsonContent.Create(new CreateEmbodimentRequest("console-arm", 3, 0, "joint", [new CameraDto("main", 64, 64)], 10, 8)) })
        {
            real.Headers.Add("X-CSRF-Token", csrf);
            Assert.Equal(HttpStatusCode.Created, (await browser.SendAsync(real)).StatusCode);
        }

        // The tenant's keys page lists this key; revoking it ends the session at the next request.
        var keys = await browser.GetFromJsonAsync<ListPage<ApiKeyResponse>>("/v1/api-keys");
        var own = Assert.Single(keys!.Data);
        Assert.StartsWith($"vlc_{own.Prefix}", key);
        var admin = app.CreateClient(await app.CreateAdminKeyAsync());
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/v1/admin/tenants/{tenant.Id}/api-keys/{own.Id}")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await browser.GetAsync("/v1/checkpoints")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await browser.GetAsync("/console/session")).StatusCode);
    }

    [Fact]
    public async Task Sign_in_refuses_an_unknown_key_and_a_platform_key_naming_the_field_and_a_tampered_cookie_is_no_session()
    {
        await using var app = new VlaCloudAppFactory(services);
        var browser = app.CreateClient();

        var unknown = await browser.PostAsJsonAsync("/console/session", new { api_key = "vlc_nope_nope" });
        Assert.Equal(HttpStatusCode.Unauthorized, unknown.StatusCode);
        Assert.Contains("api_key", await unknown.Content.ReadAsStringAsync());
        var missing = await browser.PostAsJsonAsync("/console/session", new { api_key = new string('x', 300) });
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        Assert.Contains("api_key", await missing.Content.ReadAsStringAsync());
        var platform = await browser.PostAsJsonAsync("/console/session", new { api_key = await app.CreateAdminKeyAsync() });
        Assert.Equal(HttpStatusCode.Forbidden, platform.StatusCode);
        Assert.False(platform.Headers.Contains("Set-Cookie"));

        using var tampered = new HttpRequestMessage(HttpMethod.Get, "/v1/checkpoints");
        tampered.Headers.Add("Cookie", "vlacloud_console=CfDJ8not-a-real-session");
        Assert.Equal(HttpStatusCode.Unauthorized, (await app.CreateClient().SendAsync(tampered)).StatusCode);
    }
}
