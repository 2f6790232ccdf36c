using VlaCloud.Api.Hosting;

if (MigrateCommand.IsRequested(args)) return await MigrateCommand.RunAsync(args);
if (AdminKeyCommand.IsRequested(args)) return await AdminKeyCommand.RunAsync(args);

var builder = WebApplication.CreateBuilder(args);
builder.AddVlaCloud();

var app = builder.Build();
app.MapVlaCloud();
app.Run();
return 0;

/// <summary>The host's entry point; public so integration tests can start it.</summary>
public partial class Program;
