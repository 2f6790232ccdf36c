using System.CommandLine;
using Spectre.Console;
using VlaCloud.Client;

namespace VlaCloud.Cli.Commands;

/// <summary><c>vlacloud login</c>: checks a server URL and API key, then saves them as a profile.</summary>
internal static class LoginCommand
{
    public static Command Create()
    {
        var url = new Option<string>("--url") { Description = "Server URL", DefaultValueFactory = _ => "http://127.0.0.1:5080" };
        var key = new Option<string?>("--api-key") { Description = "API key (vlc_...); asked for when missing, or read from standard input" };
        var noVerify = new Option<bool>("--no-verify") { Description = "Save without checking the key against the server" };
        var makeDefault = new Option<bool>("--default") { Description = "Make this profile the default one (the first profile saved always is)" };
        var command = new Command("login", "Save a server URL and API key as a profile (~/.config/vlacloud/config.json, mode 600)")
        {
            url, key, noVerify, makeDefault,
        };
        command.SetAction((parse, cancellationToken) => ApiCommand.RunAsync(async () =>
        {
            var name = parse.GetValue(ApiCommand.ProfileOption) ?? CliConfig.DefaultProfileName;
            var server = CliConfig.ParseUrl(parse.GetValue(url)!);
            var apiKey = parse.GetValue(key) ?? ReadKey();
            if (!apiKey.StartsWith("vlc_", StringComparison.Ordinal)) throw new CliException("An API key starts with 'vlc_'.");

            if (!parse.GetValue(noVerify))
            {
                using var client = new VlaCloudClient(server, apiKey);
                // Any authenticated read proves the key; listing one embodiment is the cheapest.
                await client.ListEmbodimentsAsync(limit: 1, cancellationToken: cancellationToken);
            }
            var path = CliConfig.Save(name, new CliProfile(server.AbsoluteUri.TrimEnd('/'), apiKey), parse.GetValue(makeDefault));
            AnsiConsole.MarkupLine($"Logged in to [bold]{Markup.Escape(server.AbsoluteUri)}[/] as profile [bold]{Markup.Escape(name)}[/] " +
                                   $"(key {Markup.Escape(apiKey[..Math.Min(16, apiKey.Length)])}…); saved in {Markup.Escape(path)}");
            return 0;
        }));
        return command;
    }

    private static string ReadKey()
    {
        if (!Console.IsInputRedirected && AnsiConsole.Profile.Capabilities.Interactive)
            return AnsiConsole.Prompt(new TextPrompt<string>("API key:").Secret()).Trim();
        return Console.In.ReadLine()?.Trim() is { Length: > 0 } line ? line : throw new CliException("No API key: pass --api-key or pipe it to standard input.");
    }
}
