using VlaCloud.Registry;

namespace VlaCloud.Api.Hosting;

/// <summary>
/// <c>VlaCloud.Api --create-admin-key NAME</c>: creates a platform administrator's key (scope <c>admin</c>, no tenant),
/// prints it once and exits. How a cluster, where demo seeding is off, gets its first key for <c>/v1/admin</c> and the
/// job dashboard: <c>kubectl exec deploy/vlacloud-api -- dotnet VlaCloud.Api.dll --create-admin-key ops</c>.
/// </summary>
public static class AdminKeyCommand
{
    /// <summary>The command-line switch that selects this mode; the next argument names the key.</summary>
    public const string Switch = "--create-admin-key";

    /// <summary>Whether <paramref name="args"/> ask for this mode.</summary>
    public static bool IsRequested(IEnumerable<string> args) => args.Contains(Switch, StringComparer.OrdinalIgnoreCase);

    /// <summary>Creates the key in the database named by <c>ConnectionStrings:Registry</c>; returns the process exit code.</summary>
    public static async Task<int> RunAsync(string[] args, CancellationToken cancellationToken = default)
    {
        var at = Array.FindIndex(args, a => a.Equals(Switch, StringComparison.OrdinalIgnoreCase));
        var name = at + 1 < args.Length && !args[at + 1].StartsWith('-') ? args[at + 1] : null;
        if (name is null || name.Length > 100)
        {
            await Console.Error.WriteLineAsync($"usage: VlaCloud.Api {Switch} NAME   (NAME: 1-100 characters, says who the key is for)");
            return 2;
        }
        var rest = args.Where((_, i) => i != at && i != at + 1).ToArray();
        var builder = Host.CreateApplicationBuilder(rest);
        builder.Services.AddRegistry();
        using var host = builder.Build();
        await using var scope = host.Services.CreateAsyncScope();
        try
        {
            var (_, key) = await scope.ServiceProvider.GetRequiredService<ApiKeyIssuer>().IssuePlatformAdminAsync(name, null, cancellationToken);
            DatabaseInitializer.Announce($"Platform administrator's key '{name}' created (shown once; scope admin):", key, null);
            return 0;
        }
        catch (Exception e) when (DependencyFailure.IsUnavailable(e) || e is InvalidOperationException)
        {
            await Console.Error.WriteLineAsync($"Could not create the key: {e.GetBaseException().Message}");
            return 1;
        }
    }
}
