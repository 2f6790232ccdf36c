using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace VlaCloud.Migrations.Migrations
{
    /// <inheritdoc />
    public partial class PlatformAdminAndStorageQuota : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<long>(
                name: "storage_quota_bytes",
                table: "tenants",
                type: "bigint",
                nullable: true);

            migrationBuilder.AlterColumn<Guid>(
                name: "tenant_id",
                table: "api_keys",
                type: "uuid",
                nullable: true,
                oldClrType: typeof(Guid),
                oldType: "uuid");

            // The admin scope is the platform's now: tenant keys that held it (the demo key had every scope) lose it.
            // A platform administrator's key is made by the demo seeding or `--create-admin-key`.
            migrationBuilder.Sql("UPDATE api_keys SET scopes = array_remove(scopes, 'admin') WHERE tenant_id IS NOT NULL AND 'admin' = ANY(scopes);");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "storage_quota_bytes",
                table: "tenants");

            // Platform keys have no tenant to fall back to.
            migrationBuilder.Sql("DELETE FROM api_keys WHERE tenant_id IS NULL;");

            migrationBuilder.AlterColumn<Guid>(
                name: "tenant_id",
                table: "api_keys",
                type: "uuid",
                nullable: false,
                defaultValue: new Guid("00000000-0000-0000-0000-000000000000"),
                oldClrType: typeof(Guid),
                oldType: "uuid",
                oldNullable: true);
        }
    }
}
