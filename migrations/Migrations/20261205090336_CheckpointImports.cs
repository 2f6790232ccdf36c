using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace VlaCloud.Migrations.Migrations
{
    /// <inheritdoc />
    public partial class CheckpointImports : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AlterColumn<string>(
                name: "purpose",
                table: "uploads",
                type: "character varying(32)",
                maxLength: 32,
                nullable: false,
                oldClrType: typeof(string),
                oldType: "character varying(16)",
                oldMaxLength: 16);

            migrationBuilder.CreateTable(
                name: "checkpoint_imports",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    tenant_id = table.Column<Guid>(type: "uuid", nullable: true),
                    model = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    embodiment_id = table.Column<Guid>(type: "uuid", nullable: false),
                    embodiments = table.Column<string>(type: "jsonb", nullable: false),
                    checkpoint_file = table.Column<string>(type: "character varying(255)", maxLength: 255, nullable: true),
                    upload_id = table.Column<Guid>(type: "uuid", nullable: true),
                    artifact_sha256 = table.Column<string>(type: "character(64)", fixedLength: true, maxLength: 64, nullable: false),
                    size_bytes = table.Column<long>(type: "bigint", nullable: false),
                    status = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    error = table.Column<string>(type: "character varying(2000)", maxLength: 2000, nullable: true),
                    checkpoint_id = table.Column<Guid>(type: "uuid", nullable: true),
                    created_by_key_id = table.Column<Guid>(type: "uuid", nullable: true),
                    created_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    started_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    finished_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_checkpoint_imports", x => x.id);
                    table.ForeignKey(
                        name: "fk_checkpoint_imports_checkpoints_checkpoint_id",
                        column: x => x.checkpoint_id,
                        principalTable: "checkpoints",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Restrict);
                    table.ForeignKey(
                        name: "fk_checkpoint_imports_embodiments_embodiment_id",
                        column: x => x.embodiment_id,
                        principalTable: "embodiments",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Restrict);
                    table.ForeignKey(
                        name: "fk_checkpoint_imports_tenants_tenant_id",
                        column: x => x.tenant_id,
                        principalTable: "tenants",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "ix_checkpoint_imports_checkpoint_id",
                table: "checkpoint_imports",
                column: "checkpoint_id");

            migrationBuilder.CreateIndex(
                name: "ix_checkpoint_imports_embodiment_id",
                table: "checkpoint_imports",
                column: "embodiment_id");

            migrationBuilder.CreateIndex(
                name: "ix_checkpoint_imports_tenant_id_id",
                table: "checkpoint_imports",
                columns: new[] { "tenant_id", "id" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "checkpoint_imports");

            migrationBuilder.AlterColumn<string>(
                name: "purpose",
                table: "uploads",
                type: "character varying(16)",
                maxLength: 16,
                nullable: false,
                oldClrType: typeof(string),
                oldType: "character varying(32)",
                oldMaxLength: 32);
        }
    }
}
