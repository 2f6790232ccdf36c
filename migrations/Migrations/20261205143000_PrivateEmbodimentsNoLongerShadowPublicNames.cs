using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace VlaCloud.Migrations.Migrations
{
    /// <inheritdoc />
    public partial class PrivateEmbodimentsNoLongerShadowPublicNames : Migration
    {
        /// <summary>
        /// Renames every tenant embodiment created before the name-clash rule whose name is a public embodiment's to
        /// NAME-private (NAME-private-2, -3, … when the tenant already has that name, or a public embodiment does), cut so
        /// the name stays within its 100 characters. Ids stay: checkpoints, datasets, jobs and imports point at the
        /// embodiment by id, so they stay attached under the new name. Oldest first, so the numbering is deterministic.
        /// </summary>
        private const string RenameShadowingEmbodiments = """
            DO $$
            DECLARE
              shadowing record;
              suffix text;
              candidate text;
              n int;
            BEGIN
              FOR shadowing IN
                SELECT e.id, e.tenant_id, e.name FROM embodiments e
                WHERE e.tenant_id IS NOT NULL
                  AND EXISTS (SELECT 1 FROM embodiments p WHERE p.tenant_id IS NULL AND p.name = e.name)
                ORDER BY e.created_at, e.id
              LOOP
                n := 1;
                LOOP
                  suffix := '-private' || CASE WHEN n > 1 THEN '-' || n ELSE '' END;
                  candidate := left(shadowing.name, 100 - length(suffix)) || suffix;
                  EXIT WHEN NOT EXISTS (SELECT 1 FROM embodiments x
                                        WHERE x.name = candidate AND (x.tenant_id = shadowing.tenant_id OR x.tenant_id IS NULL));
                  n := n + 1;
                END LOOP;
                UPDATE embodiments SET name = candidate WHERE id = shadowing.id;
              END LOOP;
            END $$;
            """;

        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            // Before the rule a tenant could create an embodiment with a public one's name; from then on that name meant
            // two embodiments for the tenant (uploads and versions landed on either, model@vN was ambiguous). The API now
            // refuses such a name (409), and the ones already there are renamed (docs/tenants.md says what tenants see).
            migrationBuilder.Sql(RenameShadowingEmbodiments);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            // The old names are not given back: they would shadow the public embodiments again, which the API refuses.
        }
    }
}
