// The command line grows with the API (datasets, jobs, checkpoints, act, stream); until then it says so.
Console.Error.WriteLine("vlacloud: no commands yet. See README.md for the HTTP API.");
return 2;
