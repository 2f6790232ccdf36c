using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace VlaCloud.Migrations.Migrations
{
    /// <inheritdoc />
    public partial class JobResumeSemantics : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.RenameColumn(
                name: "resume_step",
                table: "fine_tuning_jobs",
                newName: "last_saved_step");

            migrationBuilder.AddColumn<int>(
                name: "resumed_from_step",
                table: "fine_tuning_jobs",
                type: "integer",
                nullable: true);

            // resume_step was the last saved step, set on jobs that never resumed. A job resumed when an attempt said so
            // in its events; that is the only record of it, so the new column is filled from there.
            migrationBuilder.Sql("""
                UPDATE fine_tuning_jobs j SET resumed_from_step = r.step
                FROM (SELECT DISTINCT ON (job_id) job_id, (data->>'resumed_from_step')::int AS step
                      FROM job_events WHERE data ? 'resumed_from_step' ORDER BY job_id, id DESC) r
                WHERE r.job_id = j.id;
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "resumed_from_step",
                table: "fine_tuning_jobs");

            migrationBuilder.RenameColumn(
                name: "last_saved_step",
                table: "fine_tuning_jobs",
                newName: "resume_step");
        }
    }
}
