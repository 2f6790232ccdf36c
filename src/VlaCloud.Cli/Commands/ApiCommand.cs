using System.CommandLine;
using System.Net.Sockets;
using System.Text.Json;
using Spectre.Console;
using VlaCloud.Client;

namespace VlaCloud.Cli.Commands;

/// <summary>What an API command runs with: its parse result, a client for the resolved profile, and output helpers.</summary>
internal sealed class ApiContext(ParseResult parse, VlaCloudClient client, ResolvedProfile profile)
{
    public ParseResult Parse { get; } = parse;
    public VlaCloudClient Client { get; } = client;
    public ResolvedProfile Profile { get; } = profile;

    /// <summary>Whether to print the API's JSON instead of tables (<c>--json</c>).</summary>
    public bool Json => Parse.GetValue(ApiCommand.JsonOption);

    public T? Get<T>(Option<T> option) => Parse.GetValue(option);

    public T? Get<T>(Argument<T> argument) => Parse.GetValue(argument);

    /// <summary>
    /// Prints one page of a list route exactly as the API answers it (the page object: <c>data</c>, <c>first_id</c>,
    /// <c>last_id</c>, <c>has_more</c>), for <c>--json</c> on list commands; <paramref name="query"/> parameters without
    /// a value are left out.
    /// </summary>
    public async Task WriteApiPageAsync(string path, CancellationToken cancellationToken, params (string Name, object? Value)[] query)
    {
        var parts = query.Where(q => q.Value is not null)
            .Select(q => $"{q.Name}={Uri.EscapeDataString(Convert.ToString(q.Value, System.Globalization.CultureInfo.InvariantCulture)!)}").ToList();
        Console.Out.WriteLine(await Client.GetRawJsonAsync(parts.Count == 0 ? path : $"{path}?{string.Join("&", parts)}", cancellationToken));
    }

    /// <summary>Prints <paramref name="value"/> as indented JSON (the contracts' snake_case names).</summary>
    public static void WriteJson<T>(T value) =>
        Console.Out.WriteLine(JsonSerializer.Serialize(value, PrettyJson));

    /// <summary>Prints <paramref name="value"/> as one line of JSON (for streams of objects: JSON Lines).</summary>
    public static void WriteJsonLine<T>(T value) =>
        Console.Out.WriteLine(JsonSerializer.Serialize(value, VlaCloudClient.Json));

    private static readonly JsonSerializerOptions PrettyJson = new(VlaCloudClient.Json) { WriteIndented = true };
}

/// <summary>
/// Shared plumbing of the commands that call the API: the recursive <c>--profile</c> and <c>--json</c> options,
/// and one place that turns failures into readable messages and exit codes
/// (1: the server refused, 2: a local mistake, 3: the server could not be reached, 4: accepted work ended
/// unsuccessfully: a dataset failed validation, a followed job failed or was cancelled).
/// </summary>
internal static class ApiCommand
{
    public const int Refused = 1;
    public const int LocalError = 2;
    public const int Unreachable = 3;
    public const int Unsuccessful = 4;

    /// <summary><c>--profile NAME</c>: which saved server to use.</summary>
    public static readonly Option<string?> ProfileOption = new("--profile")
    {
        Description = "Saved profile to use (default: the one marked default; env VLACLOUD_PROFILE)",
        Recursive = true,
    };

    /// <summary><c>--json</c>: machine-readable output.</summary>
    public static readonly Option<bool> JsonOption = new("--json")
    {
        Description = "Print the API's JSON instead of tables",
        Recursive = true,
    };

    /// <summary>Sets <paramref name="action"/> as the command's action, with a client for the resolved profile.</summary>
    public static void SetApiAction(this Command command, Func<ApiContext, CancellationToken, Task<int>> action) =>
        command.SetAction((parse, cancellationToken) => RunAsync(() => RunWithClientAsync(parse, action, cancellationToken)));

    /// <summary>Runs <paramref name="action"/> with a client for the resolved profile (for a command that is local unless asked otherwise).</summary>
    public static async Task<int> RunWithClientAsync(ParseResult parse, Func<ApiContext, CancellationToken, Task<int>> action, CancellationToken cancellationToken)
    {
        var profile = CliConfig.Resolve(parse.GetValue(ProfileOption));
        using var client = new VlaCloudClient(profile.Url, profile.ApiKey);
        try
        {
            return await action(new ApiContext(parse, client, profile), cancellationToken);
        }
        catch (HttpRequestException e) when (e.StatusCode is null)
        {
            Error($"Cannot reach {profile.Url}: {e.InnerException?.Message ?? e.Message}");
            return Unreachable;
        }
    }

    /// <summary>
    /// Sets <paramref name="action"/> as the action of a command that runs locally (no server). A value the
    /// libraries refuse (<see cref="ArgumentException"/>, e.g. <c>--frames-per-episode 0</c>) is a local mistake:
    /// its message and exit 2, like the other local errors, not a stack trace.
    /// </summary>
    public static void SetLocalAction(this Command command, Func<ParseResult, CancellationToken, Task<int>> action) =>
        command.SetAction((parse, cancellationToken) => RunAsync(async () =>
        {
            try
            {
                return await action(parse, cancellationToken);
            }
            catch (ArgumentException e)
            {
                Error(e.Message);
                return LocalError;
            }
        }));

    /// <summary>Runs <paramref name="action"/>, printing refusals and local errors readably.</summary>
    public static async Task<int> RunAsync(Func<Task<int>> action)
    {
        try
        {
            return await action();
        }
        catch (VlaCloudApiException e)
        {
            PrintProblem(e);
            return Refused;
        }
        catch (CliException e)
        {
            Error(e.Message);
            return LocalError;
        }
        catch (HttpRequestException e) when (e.InnerException is SocketException socket)
        {
            Error($"Cannot reach the server: {socket.Message}");
            return Unreachable;
        }
        catch (TimeoutException e)
        {
            Error(e.Message);
            return Unreachable;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or InvalidDataException)
        {
            Error(e.Message);
            return LocalError;
        }
    }

    /// <summary>Prints a problem: title and status in red, the detail, each invalid field, and when to retry.</summary>
    public static void PrintProblem(VlaCloudApiException e)
    {
        var problem = e.Problem;
        var err = ErrorConsole;
        err.MarkupLine($"[red bold]error:[/] [bold]{Markup.Escape(problem.Title ?? e.StatusCode.ToString())}[/] [grey](HTTP {(int)e.StatusCode})[/]");
        if (!string.IsNullOrEmpty(problem.Detail)) err.MarkupLine($"  {Markup.Escape(problem.Detail)}");
        foreach (var (field, messages) in e.Errors)
            err.MarkupLine($"  [yellow]{Markup.Escape(field)}[/]: {Markup.Escape(string.Join(" ", messages))}");
        if (e.RetryAfter is { } retry) err.MarkupLine($"  retry after {retry.TotalSeconds:0.#} s");
        if ((int)e.StatusCode == 401) err.MarkupLine("  [grey]Check the API key: vlacloud login --url URL --api-key KEY (or VLACLOUD_API_KEY).[/]");
    }

    /// <summary>Prints a one-line error.</summary>
    public static void Error(string message) => ErrorConsole.MarkupLine($"[red bold]error:[/] {Markup.Escape(message)}");

    /// <summary>Spectre console on standard error, so errors never mix into --json output.</summary>
    public static IAnsiConsole ErrorConsole { get; } = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
}
