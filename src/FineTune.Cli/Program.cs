using FineTune.Cli;

return await CliApp.RunAsync(args);
