using VlaCloud.Testing;

namespace VlaCloud.Deploy.Tests;

/// <summary>Tests that run the host or the migrate command on a real Postgres and Redis.</summary>
[CollectionDefinition(Name)]
public sealed class DeployCollection : ICollectionFixture<ServicesFixture>
{
    public const string Name = "deploy";
}
