using VlaCloud.Testing;

namespace VlaCloud.Api.Tests;

/// <summary>Tests of the host itself: health, OpenAPI, dashboard, seeding.</summary>
[CollectionDefinition(Name)]
public sealed class HostCollection : ICollectionFixture<ServicesFixture>
{
    public const string Name = "host";
}

/// <summary>Tests of the registry endpoints: tenants, keys, embodiments, checkpoints, aliases, limits.</summary>
[CollectionDefinition(Name)]
public sealed class RegistryCollection : ICollectionFixture<ServicesFixture>
{
    public const string Name = "registry";
}

/// <summary>Tests of limits and metering, in their own collection so their Redis buckets start empty.</summary>
[CollectionDefinition(Name)]
public sealed class LimitsCollection : ICollectionFixture<ServicesFixture>
{
    public const string Name = "limits";
}
