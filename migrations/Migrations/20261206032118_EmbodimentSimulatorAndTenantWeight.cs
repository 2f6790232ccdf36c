using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace VlaCloud.Migrations.Migrations
{
    /// <inheritdoc />
    public partial class EmbodimentSimulatorAndTenantWeight : Migration
    {
        /// <summary>
        /// The guesses the code made until now, applied once to the rows already there, so existing embodiments behave as
        /// before; from here on only the columns are read. Binary action dimensions: those whose action name contains
        /// "gripper" (case-insensitive). The simulator: an embodiment named sim-tabletop with 3 actions, 3 state values and
        /// the cameras main and wrist of 64×64 (the old FineTuneJob.IsSim), whose gripper dimension is 2 (the simulator's
        /// training data options). Camera entries are the EF JSON of EmbodimentCamera (Name, Width, Height).
        /// </summary>
        private const string ApplyTheOldGuessesOnce = """
            UPDATE embodiments e SET binary_action_dims = ARRAY(
              SELECT (n.ordinality - 1)::int FROM unnest(e.action_names) WITH ORDINALITY AS n(name, ordinality)
              WHERE n.name ILIKE '%gripper%' ORDER BY n.ordinality);
            UPDATE embodiments SET simulator = 'sim-tabletop', binary_action_dims = '{2}'
            WHERE name = 'sim-tabletop' AND action_dim = 3 AND state_dim = 3
              AND cameras @> '[{"Name": "main", "Width": 64, "Height": 64}, {"Name": "wrist", "Width": 64, "Height": 64}]'::jsonb;
            """;

        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<double>(
                name: "inference_weight",
                table: "tenants",
                type: "double precision",
                nullable: false,
                defaultValue: 1.0);

            migrationBuilder.AddColumn<int[]>(
                name: "binary_action_dims",
                table: "embodiments",
                type: "integer[]",
                nullable: false,
                defaultValue: new int[0]);

            migrationBuilder.AddColumn<string>(
                name: "simulator",
                table: "embodiments",
                type: "character varying(64)",
                maxLength: 64,
                nullable: true);

            migrationBuilder.AddCheckConstraint(
                name: "ck_tenants_inference_weight",
                table: "tenants",
                sql: "inference_weight >= 0.1 AND inference_weight <= 100");

            // Existing tenants weigh 1, as every tenant not listed in the removed VlaCloud:Inference:TenantWeights did; a
            // deployment that listed some sets them once through PATCH /v1/admin/tenants/{id} (docs/tenants.md).
            migrationBuilder.Sql(ApplyTheOldGuessesOnce);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropCheckConstraint(
                name: "ck_tenants_inference_weight",
                table: "tenants");

            migrationBuilder.DropColumn(
                name: "inference_weight",
                table: "tenants");

            migrationBuilder.DropColumn(
                name: "binary_action_dims",
                table: "embodiments");

            migrationBuilder.DropColumn(
                name: "simulator",
                table: "embodiments");
        }
    }
}
