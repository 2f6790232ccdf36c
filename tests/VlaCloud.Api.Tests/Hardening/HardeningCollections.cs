using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.Hardening;

/// <summary>Sessions that end with their key and keep their slot by the server's heartbeat (issue 18, item 2).</summary>
[CollectionDefinition(Name)]
public sealed class SessionsCollection : ICollectionFixture<ServicesFixture>
{
    public const string Name = "sessions";
}

/// <summary>Postgres and Redis going away under a running host (issue 18, item 4; usage billing).</summary>
[CollectionDefinition(Name)]
public sealed class DependencyCollection : ICollectionFixture<ServicesFixture>
{
    public const string Name = "dependencies";
}

/// <summary>Auth, lineage, idempotency, trainer limits and storage (issue 18, items 3 and 6).</summary>
[CollectionDefinition(Name)]
public sealed class HardeningCollection : ICollectionFixture<ServicesFixture>
{
    public const string Name = "hardening";
}
