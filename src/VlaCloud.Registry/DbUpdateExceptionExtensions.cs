using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace VlaCloud.Registry;

/// <summary>Recognises the database refusals callers turn into answers instead of errors.</summary>
public static class DbUpdateExceptionExtensions
{
    /// <summary>
    /// True when Postgres refused the write because a unique index already holds the row: another request or run got
    /// there first, which callers usually answer with 409 or by reading the winner's row.
    /// </summary>
    public static bool IsUniqueViolation(this DbUpdateException exception) =>
        exception.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation };
}
