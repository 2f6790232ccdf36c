using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace VlaCloud.Migrations.Migrations
{
    /// <inheritdoc />
    public partial class Registry : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<int>(
                name: "burst",
                table: "tenants",
                type: "integer",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "max_concurrent_streams",
                table: "tenants",
                type: "integer",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "monthly_compute_ms_quota",
                table: "tenants",
                type: "bigint",
                nullable: true);

            migrationBuilder.AddColumn<double>(
                name: "requests_per_second",
                table: "tenants",
                type: "double precision",
                nullable: true);

            migrationBuilder.AddColumn<uint>(
                name: "xmin",
                table: "tenants",
                type: "xid",
                rowVersion: true,
                nullable: false,
                defaultValue: 0u);

            migrationBuilder.AddColumn<uint>(
                name: "xmin",
                table: "api_keys",
                type: "xid",
                rowVersion: true,
                nullable: false,
                defaultValue: 0u);

            migrationBuilder.CreateTable(
                name: "alias_moves",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    tenant_id = table.Column<Guid>(type: "uuid", nullable: true),
                    model_name = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    alias = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    from_checkpoint_id = table.Column<Guid>(type: "uuid", nullable: true),
                    to_checkpoint_id = table.Column<Guid>(type: "uuid", nullable: true),
                    moved_by_key_id = table.Column<Guid>(type: "uuid", nullable: true),
                    moved_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    reason = table.Column<string>(type: "character varying(500)", maxLength: 500, nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_alias_moves", x => x.id);
                    table.ForeignKey(
                        name: "fk_alias_moves_tenants_tenant_id",
                        column: x => x.tenant_id,
                        principalTable: "tenants",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "artifacts",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    tenant_id = table.Column<Guid>(type: "uuid", nullable: true),
                    sha256 = table.Column<string>(type: "character(64)", fixedLength: true, maxLength: 64, nullable: false),
                    size_bytes = table.Column<long>(type: "bigint", nullable: false),
                    uri = table.Column<string>(type: "character varying(1000)", maxLength: 1000, nullable: false),
                    kind = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: false),
                    created_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_artifacts", x => x.id);
                    table.ForeignKey(
                        name: "fk_artifacts_tenants_tenant_id",
                        column: x => x.tenant_id,
                        principalTable: "tenants",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "embodiments",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    tenant_id = table.Column<Guid>(type: "uuid", nullable: true),
                    name = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    description = table.Column<string>(type: "character varying(1000)", maxLength: 1000, nullable: true),
                    action_dim = table.Column<int>(type: "integer", nullable: false),
                    state_dim = table.Column<int>(type: "integer", nullable: false),
                    action_space = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    action_names = table.Column<string[]>(type: "text[]", nullable: false),
                    state_names = table.Column<string[]>(type: "text[]", nullable: false),
                    control_hz = table.Column<double>(type: "double precision", nullable: false),
                    chunk_length = table.Column<int>(type: "integer", nullable: false),
                    created_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    cameras = table.Column<string>(type: "jsonb", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_embodiments", x => x.id);
                    table.ForeignKey(
                        name: "fk_embodiments_tenants_tenant_id",
                        column: x => x.tenant_id,
                        principalTable: "tenants",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "model_version_counters",
                columns: table => new
                {
                    owner_id = table.Column<Guid>(type: "uuid", nullable: false),
                    embodiment_id = table.Column<Guid>(type: "uuid", nullable: false),
                    model_name = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    last_version = table.Column<int>(type: "integer", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_model_version_counters", x => new { x.owner_id, x.embodiment_id, x.model_name });
                });

            migrationBuilder.CreateTable(
                name: "usage_days",
                columns: table => new
                {
                    tenant_id = table.Column<Guid>(type: "uuid", nullable: false),
                    day = table.Column<DateOnly>(type: "date", nullable: false),
                    checkpoint_id = table.Column<Guid>(type: "uuid", nullable: false),
                    requests = table.Column<long>(type: "bigint", nullable: false),
                    actions = table.Column<long>(type: "bigint", nullable: false),
                    compute_ms = table.Column<long>(type: "bigint", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_usage_days", x => new { x.tenant_id, x.day, x.checkpoint_id });
                    table.ForeignKey(
                        name: "fk_usage_days_tenants_tenant_id",
                        column: x => x.tenant_id,
                        principalTable: "tenants",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "checkpoints",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    tenant_id = table.Column<Guid>(type: "uuid", nullable: true),
                    embodiment_id = table.Column<Guid>(type: "uuid", nullable: false),
                    model_name = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    version = table.Column<int>(type: "integer", nullable: false),
                    artifact_uri = table.Column<string>(type: "character varying(1000)", maxLength: 1000, nullable: false),
                    sha256 = table.Column<string>(type: "character(64)", fixedLength: true, maxLength: 64, nullable: false),
                    size_bytes = table.Column<long>(type: "bigint", nullable: false),
                    config = table.Column<string>(type: "jsonb", nullable: false),
                    normalization_stats = table.Column<string>(type: "jsonb", nullable: false),
                    metrics = table.Column<string>(type: "jsonb", nullable: true),
                    parent_checkpoint_id = table.Column<Guid>(type: "uuid", nullable: true),
                    dataset_id = table.Column<Guid>(type: "uuid", nullable: true),
                    fine_tuning_job_id = table.Column<Guid>(type: "uuid", nullable: true),
                    created_by_key_id = table.Column<Guid>(type: "uuid", nullable: true),
                    created_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_checkpoints", x => x.id);
                    table.ForeignKey(
                        name: "fk_checkpoints_checkpoints_parent_checkpoint_id",
                        column: x => x.parent_checkpoint_id,
                        principalTable: "checkpoints",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Restrict);
                    table.ForeignKey(
                        name: "fk_checkpoints_embodiments_embodiment_id",
                        column: x => x.embodiment_id,
                        principalTable: "embodiments",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Restrict);
                    table.ForeignKey(
                        name: "fk_checkpoints_tenants_tenant_id",
                        column: x => x.tenant_id,
                        principalTable: "tenants",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "aliases",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "uuid", nullable: false),
                    tenant_id = table.Column<Guid>(type: "uuid", nullable: true),
                    model_name = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: false),
                    name = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    checkpoint_id = table.Column<Guid>(type: "uuid", nullable: false),
                    updated_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    xmin = table.Column<uint>(type: "xid", rowVersion: true, nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_aliases", x => x.id);
                    table.ForeignKey(
                        name: "fk_aliases_checkpoints_checkpoint_id",
                        column: x => x.checkpoint_id,
                        principalTable: "checkpoints",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Restrict);
                    table.ForeignKey(
                        name: "fk_aliases_tenants_tenant_id",
                        column: x => x.tenant_id,
                        principalTable: "tenants",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "ix_alias_moves_tenant_id_model_name_alias_id",
                table: "alias_moves",
                columns: new[] { "tenant_id", "model_name", "alias", "id" });

            migrationBuilder.CreateIndex(
                name: "ix_aliases_checkpoint_id",
                table: "aliases",
                column: "checkpoint_id");

            migrationBuilder.CreateIndex(
                name: "ix_aliases_tenant_id_model_name_name",
                table: "aliases",
                columns: new[] { "tenant_id", "model_name", "name" },
                unique: true)
                .Annotation("Npgsql:NullsDistinct", false);

            migrationBuilder.CreateIndex(
                name: "ix_artifacts_tenant_id_sha256",
                table: "artifacts",
                columns: new[] { "tenant_id", "sha256" },
                unique: true)
                .Annotation("Npgsql:NullsDistinct", false);

            migrationBuilder.CreateIndex(
                name: "ix_checkpoints_dataset_id",
                table: "checkpoints",
                column: "dataset_id");

            migrationBuilder.CreateIndex(
                name: "ix_checkpoints_embodiment_id",
                table: "checkpoints",
                column: "embodiment_id");

            migrationBuilder.CreateIndex(
                name: "ix_checkpoints_fine_tuning_job_id",
                table: "checkpoints",
                column: "fine_tuning_job_id");

            migrationBuilder.CreateIndex(
                name: "ix_checkpoints_parent_checkpoint_id",
                table: "checkpoints",
                column: "parent_checkpoint_id");

            migrationBuilder.CreateIndex(
                name: "ix_checkpoints_tenant_id_embodiment_id_model_name_version",
                table: "checkpoints",
                columns: new[] { "tenant_id", "embodiment_id", "model_name", "version" },
                unique: true)
                .Annotation("Npgsql:NullsDistinct", false);

            migrationBuilder.CreateIndex(
                name: "ix_checkpoints_tenant_id_model_name",
                table: "checkpoints",
                columns: new[] { "tenant_id", "model_name" });

            migrationBuilder.CreateIndex(
                name: "ix_embodiments_tenant_id_name",
                table: "embodiments",
                columns: new[] { "tenant_id", "name" },
                unique: true)
                .Annotation("Npgsql:NullsDistinct", false);

            // Checkpoints are immutable: a trigger refuses updates even from code that bypasses the context.
            migrationBuilder.Sql("""
                CREATE FUNCTION checkpoints_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                  RAISE EXCEPTION 'checkpoints are immutable (id %)', OLD.id USING ERRCODE = 'integrity_constraint_violation';
                END $$;
                CREATE TRIGGER checkpoints_immutable BEFORE UPDATE ON checkpoints
                  FOR EACH ROW EXECUTE FUNCTION checkpoints_refuse_update();
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("DROP TRIGGER checkpoints_immutable ON checkpoints; DROP FUNCTION checkpoints_refuse_update();");

            migrationBuilder.DropTable(
                name: "alias_moves");

            migrationBuilder.DropTable(
                name: "aliases");

            migrationBuilder.DropTable(
                name: "artifacts");

            migrationBuilder.DropTable(
                name: "model_version_counters");

            migrationBuilder.DropTable(
                name: "usage_days");

            migrationBuilder.DropTable(
                name: "checkpoints");

            migrationBuilder.DropTable(
                name: "embodiments");

            migrationBuilder.DropColumn(
                name: "burst",
                table: "tenants");

            migrationBuilder.DropColumn(
                name: "max_concurrent_streams",
                table: "tenants");

            migrationBuilder.DropColumn(
                name: "monthly_compute_ms_quota",
                table: "tenants");

            migrationBuilder.DropColumn(
                name: "requests_per_second",
                table: "tenants");

            migrationBuilder.DropColumn(
                name: "xmin",
                table: "tenants");

            migrationBuilder.DropColumn(
                name: "xmin",
                table: "api_keys");
        }
    }
}
