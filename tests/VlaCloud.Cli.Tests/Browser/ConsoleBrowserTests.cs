using System.Text.Json;
using System.Text.Json.Nodes;
using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using VlaCloud.Client;
using VlaCloud.Testing;

namespace VlaCloud.Cli.Tests.Browser;

/// <summary>
/// The tenant console in a real browser (Debian's chromium through chromedriver) against a live host: sign in, start a
/// fine-tuning job from the console, watch it train live, cancel it, and read every page. Each page is screenshotted
/// to .local/test-results/screenshots and checked with axe-core for serious or critical accessibility violations.
/// </summary>
[Collection(LiveCollection.Name)]
public sealed class ConsoleBrowserTests(LiveHost host)
{
    private static readonly string Screenshots = Path.Combine(RepositoryRoot.Path, ".local/test-results/screenshots");
    private readonly List<string> accessibility = [];

    [Trait("Category", "Slow")]
    [Fact]
    public async Task A_tenant_signs_in_starts_and_cancels_a_job_from_the_console_and_every_page_reads_and_passes_axe()
    {
        // A tenant's world, made as a user would with the CLI: an embodiment, a base checkpoint and a ready dataset.
        var env = new Dictionary<string, string> { ["VLACLOUD_CONFIG"] = Path.Combine(host.Folder, "console/config.json") };
        var embodiment = $"console-{Guid.NewGuid():N}"[..16];
        var model = $"console-{Guid.NewGuid():N}"[..14];
        await OkAsync(env, "login", "--url", host.Url, "--api-key", host.DemoKey);
        await OkAsync(env, "embodiments", "create", embodiment, "--sim");
        using (var policy = SimPolicy.Create(embodiment))
        {
            var tar = Path.Combine(host.Folder, $"{model}.tar");
            await File.WriteAllBytesAsync(tar, SimPolicy.Tar(policy));
            await OkAsync(env, "checkpoints", "put", tar, "--model", model, "--embodiment", embodiment);
        }
        var data = Path.Combine(host.Folder, $"{embodiment}-console.tar");
        await File.WriteAllBytesAsync(data, await SimDataset.Tar);
        await OkAsync(env, "datasets", "upload", data, "--embodiment", embodiment);
        var datasetId = (string)JsonNode.Parse((await OkAsync(env, "datasets", "list", "--status", "ready", "--json")).Out)!["data"]!.AsArray()
            .Single(d => (string)d!["name"]! == Path.GetFileName(data))!["id"]!;

        Directory.CreateDirectory(Screenshots);
        using var driver = StartChromium();
        driver.Navigate().GoToUrl($"{host.Url}/console");

        // Sign in: the key goes in a POST body once; the session is a cookie no script can read.
        var keyInput = Until(driver, () => driver.FindElement(By.Id("api-key")) is { Displayed: true } e ? e : null, "the sign-in form");
        await CheckPageAsync(driver, "01-sign-in");
        keyInput.SendKeys(host.DemoKey);
        driver.FindElement(By.CssSelector("#sign-in-form button[type=submit]")).Click();
        Until(driver, () => driver.FindElement(By.Id("nav")).Displayed, "the console after sign-in");
        Assert.DoesNotContain(host.DemoKey, driver.Url);
        Assert.DoesNotContain("vlacloud_console", ((IJavaScriptExecutor)driver).ExecuteScript("return document.cookie;") as string ?? "");
        Assert.Equal(0L, Convert.ToInt64(((IJavaScriptExecutor)driver).ExecuteScript("return localStorage.length + sessionStorage.length;")));
        Assert.Contains(driver.Manage().Cookies.AllCookies, c => c.Name == "vlacloud_console" && c.IsHttpOnly && c.SameSite == "Strict");

        // Checkpoints: the base is listed; its page shows lineage, versions and aliases.
        Until(driver, () => driver.FindElements(By.LinkText($"{model}@v1")).FirstOrDefault(), "the base checkpoint in the list").Click();
        Until(driver, () => driver.FindElement(By.Id("lineage")).Displayed, "the checkpoint page");
        Assert.Contains($"{model}@v1", driver.FindElement(By.Id("page-title")).Text);
        // Promote v1 to production from the console, and see the alias and its history.
        driver.FindElement(By.CssSelector("#promote-form button[type=submit]")).Click();
        Until(driver, () => driver.FindElements(By.XPath($"//table[caption[text()='History of {model}@production']]//td")).Count > 0, "the alias history");
        await CheckPageAsync(driver, "02-checkpoint");

        // Datasets: the uploaded one is ready, with its issues page.
        driver.Navigate().GoToUrl($"{host.Url}/console#/datasets");
        Until(driver, () => driver.FindElements(By.LinkText(Path.GetFileName(data))).FirstOrDefault(), "the dataset in the list");
        Assert.Contains("ready", driver.FindElement(By.TagName("table")).Text);
        await CheckPageAsync(driver, "03-datasets");

        // Jobs: create one from the form (long, so it is still running when cancelled), watch it train, cancel it.
        driver.Navigate().GoToUrl($"{host.Url}/console#/jobs");
        var form = Until(driver, () => driver.FindElement(By.Id("new-job")), "the new-job form");
        await CheckPageAsync(driver, "04-jobs");
        form.FindElement(By.Id("job-base")).SendKeys($"{model}@v1");
        form.FindElement(By.CssSelector($"#job-dataset option[value='{datasetId}']")).Click();
        form.FindElement(By.Id("job-model")).SendKeys(model);
        var steps = form.FindElement(By.Id("job-steps"));
        steps.Clear();
        steps.SendKeys("100000");
        form.FindElement(By.Id("job-interval")).SendKeys("1000");
        form.FindElement(By.CssSelector("button[type=submit]")).Click();
        Until(driver, () => driver.FindElements(By.Id("job-progress")).Count > 0, "the job page");
        var jobId = driver.Url[(driver.Url.LastIndexOf('/') + 1)..];
        // Live progress from the event stream, and the loss chart drawn from the metrics route.
        Until(driver, () => long.Parse(driver.FindElement(By.Id("job-progress")).GetAttribute("value") ?? "0") >= 3, "three trained steps shown live", TimeSpan.FromMinutes(5));
        Until(driver, () => driver.FindElements(By.CssSelector("#loss-chart polyline.smoothed")).Count > 0, "the loss chart", TimeSpan.FromMinutes(1));
        Assert.Contains("/ 100000 steps", driver.FindElement(By.Id("job-progress-text")).Text);
        Assert.Contains("running", driver.FindElement(By.Id("job-status")).Text);
        Assert.NotEmpty(driver.FindElements(By.CssSelector("#job-events li")));
        await CheckPageAsync(driver, "05-job-running");
        driver.FindElement(By.Id("cancel-job")).Click();
        Until(driver, () => driver.FindElement(By.Id("job-status")).Text == "cancelled", "the job cancelled", TimeSpan.FromMinutes(2));
        await CheckPageAsync(driver, "06-job-cancelled");
        using (var sdk = new VlaCloudClient(new Uri(host.Url), host.DemoKey))
            Assert.Equal("cancelled", (await sdk.GetFineTuningJobAsync(Guid.Parse(jobId))).Status);

        // Usage per day and per model, and the tenant's keys.
        driver.Navigate().GoToUrl($"{host.Url}/console#/usage");
        Until(driver, () => driver.FindElements(By.XPath("//caption[text()='Usage per model']")).Count > 0, "the usage page");
        await CheckPageAsync(driver, "07-usage");
        driver.Navigate().GoToUrl($"{host.Url}/console#/keys");
        Until(driver, () => driver.FindElements(By.XPath("//caption[text()='API keys']")).Count > 0, "the keys page");
        Assert.Contains(host.DemoKey[4..14], driver.FindElement(By.TagName("table")).Text);
        await CheckPageAsync(driver, "08-keys");

        // Signing out ends the session: the page asks for a key again, and the cookie is gone.
        driver.FindElement(By.Id("sign-out")).Click();
        Until(driver, () => driver.FindElement(By.Id("api-key")).Displayed, "the sign-in form after sign-out");
        Assert.DoesNotContain(driver.Manage().Cookies.AllCookies, c => c.Name == "vlacloud_console");

        Assert.True(accessibility.Count == 0, "axe found serious or critical violations:\n" + string.Join("\n", accessibility));
    }

    private static ChromeDriver StartChromium()
    {
        var options = new ChromeOptions { BinaryLocation = "/usr/bin/chromium" };
        options.AddArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1100", "--lang=en-US");
        // Debian's chromedriver, by path: Selenium Manager would otherwise try to download one.
        var service = ChromeDriverService.CreateDefaultService("/usr/bin", "chromedriver");
        service.SuppressInitialDiagnosticInformation = true;
        return new ChromeDriver(service, options, TimeSpan.FromMinutes(2));
    }

    /// <summary>Screenshots the page and runs axe-core on it, collecting serious and critical violations.</summary>
    private async Task CheckPageAsync(ChromeDriver driver, string name)
    {
        driver.GetScreenshot().SaveAsFile(Path.Combine(Screenshots, $"console-{name}.png"));
        var js = (IJavaScriptExecutor)driver;
        if (js.ExecuteScript("return typeof axe !== 'undefined';") is not true)
            js.ExecuteScript(await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "Browser", "axe", "axe.min.js")));
        driver.Manage().Timeouts().AsynchronousJavaScript = TimeSpan.FromMinutes(1);
        var json = js.ExecuteAsyncScript("""
            const done = arguments[arguments.length - 1];
            axe.run(document, { resultTypes: ["violations"] })
              .then(r => done(JSON.stringify(r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map(n => n.target.join(" ")) })))))
              .catch(e => done(JSON.stringify([{ id: "axe-error", impact: "critical", help: String(e), targets: [] }])));
            """) as string ?? throw new Xunit.Sdk.XunitException($"axe returned no result on {name}");
        foreach (var v in JsonDocument.Parse(json).RootElement.EnumerateArray())
        {
            var impact = v.GetProperty("impact").GetString();
            if (impact is "serious" or "critical")
                accessibility.Add($"{name}: {v.GetProperty("id").GetString()} ({impact}) {v.GetProperty("help").GetString()} at {string.Join(", ", v.GetProperty("targets").EnumerateArray())}");
        }
    }

    private static T Until<T>(ChromeDriver driver, Func<T?> find, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                var found = find();
                if (found is not null && found is not false) return found;
            }
            catch (Exception e) when (e is WebDriverException or FormatException)
            {
                last = e;
            }
            Thread.Sleep(200);
        }
        driver.GetScreenshot().SaveAsFile(Path.Combine(Screenshots, $"console-timeout-{what.Replace(' ', '-')}.png"));
        throw new Xunit.Sdk.XunitException($"Timed out waiting for {what} at {driver.Url}: {last?.Message}\n{driver.FindElement(By.TagName("body")).Text}");
    }

    private static async Task<CliRun> OkAsync(Dictionary<string, string> env, params string[] args)
    {
        var run = await Vlacloud.RunAsync(env, args);
        Assert.True(run.ExitCode == 0, $"vlacloud {string.Join(" ", args)}\n{run}");
        return run;
    }
}
