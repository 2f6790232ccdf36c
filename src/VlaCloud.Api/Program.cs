using VlaCloud.Api.Hosting;

var builder = WebApplication.CreateBuilder(args);
builder.AddVlaCloud();

var app = builder.Build();
app.MapVlaCloud();
app.Run();

/// <summary>The host's entry point; public so integration tests can start it.</summary>
public partial class Program;
