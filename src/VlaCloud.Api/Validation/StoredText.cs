using System.Linq.Expressions;
using VlaCloud.Registry;

namespace VlaCloud.Api.Validation;

/// <summary>
/// Checks request text against the column it is stored in. The length limits come from the EF model
/// (<see cref="RegistryDbContext"/>'s <c>HasMaxLength</c>), the one place they are written: a longer text is a 400
/// naming the field here instead of a 500 from Postgres.
/// </summary>
internal static class StoredText
{
    /// <summary>The longest text the column behind <paramref name="property"/> holds.</summary>
    /// <exception cref="InvalidOperationException">The property has no maximum length in the model (a programming error).</exception>
    public static int MaxLength<TEntity>(this RegistryDbContext db, Expression<Func<TEntity, string?>> property)
    {
        var name = ((MemberExpression)property.Body).Member.Name;
        return db.Model.FindEntityType(typeof(TEntity))?.FindProperty(name)?.GetMaxLength()
               ?? throw new InvalidOperationException($"{typeof(TEntity).Name}.{name} has no maximum length in the registry model.");
    }

    /// <summary>Adds an error for <paramref name="field"/> when <paramref name="value"/> is longer than its column holds; false then.</summary>
    public static bool CheckLength<TEntity>(this Dictionary<string, string[]> errors, RegistryDbContext db, Expression<Func<TEntity, string?>> property,
        string field, string? value)
    {
        var max = db.MaxLength(property);
        if (value is null || value.Length <= max) return true;
        errors[field] = [$"{field} must be at most {max} characters (it has {value.Length})."];
        return false;
    }
}
