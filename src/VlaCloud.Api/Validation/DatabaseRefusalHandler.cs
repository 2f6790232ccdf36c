using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using VlaCloud.Registry;

namespace VlaCloud.Api.Validation;

/// <summary>
/// The last line behind request validation: when Postgres itself refuses what a request asked to store (a reference
/// to a row that does not exist, a duplicate, a text too long or not storable), the answer is the 4xx problem that
/// refusal means, with the field named where the database says which, instead of a 500. Handlers validate first;
/// reaching this means one missed a case, so it is logged.
/// </summary>
internal sealed class DatabaseRefusalHandler(IProblemDetailsService problems, ILogger<DatabaseRefusalHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        if ((exception as PostgresException ?? exception.InnerException as PostgresException) is not { } refusal) return false;
        var db = context.RequestServices.GetRequiredService<RegistryDbContext>();
        var field = FieldOf(db, refusal);
        var (status, title, detail) = refusal.SqlState switch
        {
            PostgresErrorCodes.ForeignKeyViolation => (StatusCodes.Status404NotFound, "Not found", $"{field ?? "A referenced id"} names nothing that exists for the caller."),
            PostgresErrorCodes.UniqueViolation => (StatusCodes.Status409Conflict, "Conflict", $"{field ?? "The request"} conflicts with an existing row."),
            PostgresErrorCodes.StringDataRightTruncation => (StatusCodes.Status400BadRequest, "Invalid request", "A text is longer than its field holds."),
            PostgresErrorCodes.CharacterNotInRepertoire or PostgresErrorCodes.UntranslatableCharacter or PostgresErrorCodes.InvalidTextRepresentation =>
                (StatusCodes.Status400BadRequest, "Invalid request", "A text holds a character that cannot be stored (a NUL, say)."),
            PostgresErrorCodes.NotNullViolation => (StatusCodes.Status400BadRequest, "Invalid request", $"{field ?? "A field"} is required."),
            PostgresErrorCodes.CheckViolation => (StatusCodes.Status400BadRequest, "Invalid request", $"{field ?? "A field"} is out of range."),
            _ => (0, "", ""),
        };
        if (status == 0) return false;
        logger.LogWarning(exception, "The database refused a request ({SqlState} on {Constraint}); answered {Status}", refusal.SqlState, refusal.ConstraintName, status);

        context.Response.StatusCode = status;
        var problem = new ProblemDetails { Status = status, Title = title, Detail = detail };
        if (field is not null) problem.Extensions["errors"] = new Dictionary<string, string[]> { [field] = [detail] };
        return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = context, ProblemDetails = problem, Exception = exception });
    }

    /// <summary>The request field behind a refusal: the column Postgres names, or the foreign key's column for its constraint.</summary>
    private static string? FieldOf(RegistryDbContext db, PostgresException refusal)
    {
        if (refusal.ColumnName is { Length: > 0 } column) return column;
        if (refusal.ConstraintName is not { Length: > 0 } constraint) return null;
        var key = db.Model.GetEntityTypes().SelectMany(e => e.GetForeignKeys()).FirstOrDefault(k => k.GetConstraintName() == constraint);
        // Columns are snake_case, as the API's field names are (EFCore.NamingConventions).
        return key?.Properties.Select(p => p.GetColumnName()).FirstOrDefault();
    }
}
