using Microsoft.EntityFrameworkCore;
using VlaCloud.Policy;
using VlaCloud.Registry;
using VlaCloud.Registry.Artifacts;
using VlaCloud.Registry.Checkpoints;
using VlaCloud.Registry.Entities;
using VlaCloud.Sim;

namespace VlaCloud.Training.Jobs;

/// <summary>
/// The promotion gate of a fine-tuning job: the result takes the alias only when it beats the current holder (closed-loop
/// success in the simulator first, action error on demonstrations on a tie or off the simulator).
/// </summary>
internal sealed class AliasPromotion(RegistryDbContext db, AliasService aliases, IArtifactStore store, FineTuningJobOptions settings)
{
    /// <summary>
    /// Moves the job's <c>promote_to</c> alias to <paramref name="result"/> when it beats the alias's holder, scored on the
    /// same episodes and frames as <paramref name="score"/>; records the decision on the job either way. Returns whether
    /// the alias points at the result.
    /// </summary>
    public async Task<bool> PromoteAsync(FineTuningJob job, Checkpoint result, TrainingData? data, PolicyScore? score, JobEventSink sink, CancellationToken cancellationToken)
    {
        var alias = job.PromoteTo!;
        var holder = await db.Aliases.AsNoTracking().Include(a => a.Checkpoint)
            .Where(a => a.TenantId == job.TenantId && a.ModelName == job.Model && a.Name == alias).FirstOrDefaultAsync(cancellationToken);
        if (holder?.CheckpointId == result.Id)
        {
            sink.Message($"{job.Model}@{alias} already points at the result.");
            return true;
        }
        PolicyScore? theirs = null;
        PromotionDecision decision;
        if (holder is null)
        {
            decision = new PromotionDecision(PromotionDecision.NoIncumbent, true);
        }
        else if (data is null || score is null)
        {
            decision = new PromotionDecision(PromotionDecision.NotComparable, false);
        }
        else
        {
            var embodiment = await db.Embodiments.AsNoTracking().SingleAsync(e => e.Id == job.EmbodimentId, cancellationToken);
            try
            {
                // Scored exactly as the result was: the same simulator episodes (seeds), noise and demonstration frames.
                using var current = await JobArtifacts.LoadPolicyAsync(store, holder.Checkpoint!, settings.Device, cancellationToken);
                theirs = await Task.Factory.StartNew(() => PolicyEvaluation.Score(current, data, score.SuccessRate is not null,
                    settings.EvaluationEpisodesOf(job), settings.EvaluationInferenceSteps, cancellationToken, score.SeedBase ?? SimSplits.DevelopmentSeedBase),
                    cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            }
            catch (Exception e) when (e is ArgumentException or KeyNotFoundException or CheckpointException)
            {
                sink.Message($"The current holder of {job.Model}@{alias} cannot act for {embodiment.Name} ({e.Message}); it counts as beaten.", "warn");
            }
            decision = theirs is null ? new PromotionDecision(PromotionDecision.IncumbentUnscorable, true) : score.Against(theirs);
        }

        var promotion = decision.ToData(alias, holder?.CheckpointId, settings.EvaluationEpisodesOf(job), score, theirs);
        await RecordPromotionAsync(job, promotion);
        var target = $"{job.Model}@{alias}";
        sink.Message(decision.DecidedBy switch
        {
            PromotionDecision.NotComparable => $"Not promoted: the result of an earlier attempt cannot be compared with {target} any more.",
            PromotionDecision.NoIncumbent => $"The result takes {target}, which was unset.",
            _ when decision.Promoted => $"The result beats {target} ({decision}).",
            _ => $"Not promoted: the result does not beat {target} ({decision}).",
        }, decision.DecidedBy == PromotionDecision.NotComparable ? "warn" : "info", promotion);
        if (!decision.Promoted) return false;
        var reason = $"fine-tuning job {job.Id}: {decision}";
        try
        {
            await aliases.SetAsync(job.Model, alias, result.Id.ToString(), reason.Length > 500 ? reason[..500] : reason, job.CreatedByKeyId, cancellationToken);
        }
        catch (RegistryException e)
        {
            sink.Message($"Not promoted: {e.Message}", "warn");
            return false;
        }
        sink.Message($"Promoted {target} to v{result.Version}.");
        return true;
    }

    /// <summary>Adds the promotion decision to the job's evaluation object, next to the result's scores.</summary>
    private async Task RecordPromotionAsync(FineTuningJob job, object decision)
    {
        var evaluation = await db.FineTuningJobs.Where(j => j.Id == job.Id).Select(j => j.Evaluation).SingleAsync(CancellationToken.None);
        var merged = (evaluation is null ? null : System.Text.Json.Nodes.JsonNode.Parse(evaluation) as System.Text.Json.Nodes.JsonObject) ?? [];
        merged["promotion"] = System.Text.Json.JsonSerializer.SerializeToNode(decision);
        var json = merged.ToJsonString();
        await db.FineTuningJobs.Where(j => j.Id == job.Id).ExecuteUpdateAsync(s => s.SetProperty(j => j.Evaluation, json), CancellationToken.None);
    }
}
