using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;
using VlaCloud.Registry;

namespace VlaCloud.Migrations;

/// <summary>
/// Lets <c>dotnet ef migrations add X --project migrations --startup-project migrations</c> build the
/// model without starting the host. Adding a migration needs no database; applying one uses
/// <c>ConnectionStrings__Registry</c> or the local default of <c>.ci/services</c>.
/// </summary>
public sealed class DesignTimeRegistryDbContextFactory : IDesignTimeDbContextFactory<RegistryDbContext>
{
    /// <inheritdoc />
    public RegistryDbContext CreateDbContext(string[] args)
    {
        var connectionString = Environment.GetEnvironmentVariable("ConnectionStrings__Registry")
            ?? "Host=127.0.0.1;Port=55432;Database=vlacloud;Username=vlacloud;Password=vlacloud";
        var options = new DbContextOptionsBuilder<RegistryDbContext>();
        RegistryServiceCollectionExtensions.ConfigureNpgsql(options, connectionString);
        return new RegistryDbContext(options.Options);
    }
}
