// libtorch already uses every core for one model; test classes training side by side only compete.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
