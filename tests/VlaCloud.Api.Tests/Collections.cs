using VlaCloud.Testing;

namespace VlaCloud.Api.Tests;

/// <summary>Tests of the host itself: health, OpenAPI, dashboard, seeding.</summary>
[CollectionDefinition(Name)]
public sealed class HostCollection : ICollectionFixture<ServicesFixture>
{
    public const string Name = "host";
}
