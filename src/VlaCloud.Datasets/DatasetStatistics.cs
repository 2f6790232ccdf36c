namespace VlaCloud.Datasets;

/// <summary>Per-dimension statistics of one numeric feature over every frame of a dataset.</summary>
/// <param name="Min">Minimum per dimension.</param>
/// <param name="Max">Maximum per dimension.</param>
/// <param name="Mean">Mean per dimension.</param>
/// <param name="Std">Population standard deviation per dimension.</param>
/// <param name="Q01">1st percentile per dimension (used by the q99 normalisation of the paper's code).</param>
/// <param name="Q99">99th percentile per dimension.</param>
/// <param name="Count">Number of frames.</param>
public sealed record FeatureStatistics(double[] Min, double[] Max, double[] Mean, double[] Std, double[] Q01, double[] Q99, long Count)
{
    /// <summary>Computes the statistics of <paramref name="rows"/> (one array per frame, all of one width).</summary>
    public static FeatureStatistics Compute(IReadOnlyList<float[]> rows)
    {
        if (rows.Count == 0) throw new ArgumentException("No frames to compute statistics from.", nameof(rows));
        var width = rows[0].Length;
        var result = new FeatureStatistics(new double[width], new double[width], new double[width], new double[width], new double[width], new double[width], rows.Count);
        var column = new double[rows.Count];
        for (var d = 0; d < width; d++)
        {
            for (var i = 0; i < rows.Count; i++) column[i] = rows[i][d];
            Array.Sort(column);
            var mean = column.Average();
            result.Min[d] = column[0];
            result.Max[d] = column[^1];
            result.Mean[d] = mean;
            result.Std[d] = Math.Sqrt(column.Sum(v => (v - mean) * (v - mean)) / column.Length);
            result.Q01[d] = Quantile(column, 0.01);
            result.Q99[d] = Quantile(column, 0.99);
        }
        return result;
    }

    /// <summary>Linear-interpolated quantile of sorted values (numpy's default method).</summary>
    private static double Quantile(double[] sorted, double q)
    {
        var position = q * (sorted.Length - 1);
        var lower = (int)Math.Floor(position);
        var upper = Math.Min(lower + 1, sorted.Length - 1);
        return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - lower);
    }
}

/// <summary>Normalisation statistics of a dataset: its state and action features.</summary>
/// <param name="State">Statistics of <c>observation.state</c>, when the dataset has one.</param>
/// <param name="Action">Statistics of <c>action</c>.</param>
public sealed record DatasetStatistics(FeatureStatistics? State, FeatureStatistics Action);
