using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace VlaCloud.Migrations.Migrations
{
    /// <inheritdoc />
    public partial class JobWorkerHeartbeat : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "heartbeat_at",
                table: "fine_tuning_jobs",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "worker_id",
                table: "fine_tuning_jobs",
                type: "character varying(200)",
                maxLength: 200,
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "ix_fine_tuning_jobs_status_heartbeat_at",
                table: "fine_tuning_jobs",
                columns: new[] { "status", "heartbeat_at" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_fine_tuning_jobs_status_heartbeat_at",
                table: "fine_tuning_jobs");

            migrationBuilder.DropColumn(
                name: "heartbeat_at",
                table: "fine_tuning_jobs");

            migrationBuilder.DropColumn(
                name: "worker_id",
                table: "fine_tuning_jobs");
        }
    }
}
