using System;
using System.Diagnostics;
using System.IO;
using System.Management.Automation;

namespace XFlowDelivery
{
    /// <summary>
    /// A scheduled run started in an older installed copy while a newer one is installed (an
    /// update since the task was registered; its command line names the copy that was newest
    /// then): the run is handed to the newest copy, in a new process of this PowerShell running
    /// the task's command line for that copy, whose output is passed on to this process's and
    /// whose exit code is the task's. Invoke-XFlowDelivery -AsScheduledTask asks first.
    /// </summary>
    internal static class TaskHandover
    {
        /// <summary>The newer installed copy the run goes to, or null to run here.</summary>
        internal static InstalledModule? Newer() =>
            InstalledModule.NewerThan(typeof(TaskHandover).Assembly.Location, InstalledModule.All(Environment.GetEnvironmentVariable("PSModulePath")));

        /// <summary>Runs the task's command line for <paramref name="newer"/>; returns its exit code.</summary>
        internal static int Run(InstalledModule newer, string configPath)
        {
            var arguments = XFlowDeliveryTaskDefinition.Arguments(new XFlowTaskSettings { ConfigPath = configPath, ModuleAssemblyPath = newer.AssemblyPath });
            string executable;
            using (var self = Process.GetCurrentProcess()) executable = self.MainModule!.FileName;
            // Under `dotnet pwsh.dll` (the .NET tool) this process is dotnet itself.
            if (string.Equals(Path.GetFileNameWithoutExtension(executable), "dotnet", StringComparison.OrdinalIgnoreCase))
            {
                arguments = "\"" + Path.Combine(Path.GetDirectoryName(typeof(PSObject).Assembly.Location)!, "pwsh.dll") + "\" " + arguments;
            }
            // Its output is passed on line by line rather than left to handle inheritance, which on
            // Windows depends on how this process's own handles were set up (Task Scheduler, a pipe).
            // Both processes encode for the same console, so its code page reads the child's text.
            var start = new ProcessStartInfo(executable, arguments)
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                StandardOutputEncoding = Console.OutputEncoding,
                StandardErrorEncoding = Console.OutputEncoding,
            };
            using (var process = new Process { StartInfo = start })
            {
                process.OutputDataReceived += (_, e) => { if (e.Data != null) Console.Out.WriteLine(e.Data); };
                process.ErrorDataReceived += (_, e) => { if (e.Data != null) Console.Error.WriteLine(e.Data); };
                process.Start();
                process.BeginOutputReadLine();
                process.BeginErrorReadLine();
                process.WaitForExit(); // without a timeout it also waits for both streams' end
                return process.ExitCode;
            }
        }
    }
}
