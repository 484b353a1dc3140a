using System;
using System.IO;
using System.Linq;
using System.Management.Automation;
using XFlowDelivery.Model;
using XFlowDelivery.Native;

namespace XFlowDelivery.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Checks, as the current account, everything a scheduled run needs: name resolution, TCP, TLS and the certificate chain, the token, each folder, the state folder, and (Windows) the Task Scheduler history log.</para>
    /// <para type="description">Nothing is fetched and no file an importer could pick up is created; the token is proven with an empty acknowledgement.</para>
    /// </summary>
    [Cmdlet(VerbsDiagnostic.Test, "XFlowDeliveryConnection", DefaultParameterSetName = ConfigSet)]
    [OutputType(typeof(XFlowConnectionCheck))]
    public sealed class TestXFlowDeliveryConnectionCommand : XFlowRunCmdletBase
    {
        private const string TaskHistoryLog = "Microsoft-Windows-TaskScheduler/Operational";

        protected override void ProcessRecord()
        {
            var values = ReadRunSettings(out var token, out bool ownsToken);
            XfdCallHandle call;
            try
            {
                using (var request = RunConfigJson.Create(values, token, op: "preflight"))
                {
                    unsafe { call = StartCall(request.Pointer, request.Length); }
                } // the request (with the token) is zeroed and freed here; the engine zeroes its copy
            }
            finally
            {
                if (ownsToken) token.Dispose();
            }
            var answer = Ask<PreflightAnswer>(call);
            foreach (var check in answer.Checks ?? new System.Collections.Generic.List<CheckJson>())
            {
                WriteObject(new XFlowConnectionCheck
                {
                    Check = check.Check ?? "",
                    Target = check.Target ?? "",
                    Status = check.Status ?? "",
                    Detail = check.Detail ?? "",
                    Remedy = check.Remedy,
                });
            }
            WriteObject(TaskHistoryCheck());
            WriteObject(DotNetFrameworkCheck());
            WriteObject(ModuleFilesCheck());
        }

        private static XFlowConnectionCheck Skipped(XFlowConnectionCheck row, string why)
        {
            row.Status = "Skipped";
            row.Detail = why;
            return row;
        }

        /// <summary>
        /// NOT RUN HERE (Windows PowerShell 5.1 only): the installed .NET Framework, from its Release
        /// value. The manifest's DotNetFrameworkVersion refuses to import below 4.7.2 (Windows Server
        /// 2016 ships 4.6.2, which cannot load a netstandard2.0 assembly without facades).
        /// </summary>
        private XFlowConnectionCheck DotNetFrameworkCheck()
        {
            const string Key = @"HKLM:\SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full";
            var row = new XFlowConnectionCheck { Check = ".NET Framework", Target = Key };
            if (!NativeLibraryLoader.IsWindows) return Skipped(row, "Windows only.");
            if (SessionState.PSVariable.GetValue("PSEdition")?.ToString() != "Desktop")
            {
                return Skipped(row, $"PowerShell 7 runs on .NET {Environment.Version}; .NET Framework 4.7.2 or newer matters to Windows PowerShell 5.1 only.");
            }
            const string remedy = "Install .NET Framework 4.8 (Windows Server 2016 ships 4.6.2); Windows PowerShell 5.1 needs 4.7.2 or newer for this module.";
            try
            {
                var result = InvokeCommand.InvokeScript($"(Get-ItemProperty -LiteralPath '{Key}' -Name Release -ErrorAction Stop).Release");
                int release = Convert.ToInt32(result[0].BaseObject, System.Globalization.CultureInfo.InvariantCulture);
                bool enough = release >= WindowsPrerequisites.Release472;
                row.Status = enough ? "Passed" : "Failed";
                row.Detail = $"{WindowsPrerequisites.FrameworkVersion(release)} (Release {release})";
                if (!enough) row.Remedy = remedy;
            }
            catch (Exception ex) when (ex is RuntimeException || ex is FormatException || ex is InvalidCastException || ex is ArgumentOutOfRangeException)
            {
                row.Status = "Failed";
                row.Detail = "could not read the Release value: " + ex.Message;
                row.Remedy = remedy;
            }
            return row;
        }

        /// <summary>
        /// NOT RUN HERE (Windows only): module files copied out of a downloaded ZIP carry the mark of
        /// the web (a Zone.Identifier stream), and under RemoteSigned or AllSigned the task then fails
        /// to import the module without a line in any log. Reports that, with the execution policy
        /// the task runs under.
        /// </summary>
        private XFlowConnectionCheck ModuleFilesCheck()
        {
            var dir = NativeLibraryLoader.ModuleDirectory;
            var row = new XFlowConnectionCheck { Check = "Module files and execution policy", Target = dir };
            if (!NativeLibraryLoader.IsWindows) return Skipped(row, "Windows only: Linux has no execution policy and no mark of the web.");
            try
            {
                var quoted = dir.Replace("'", "''");
                var marked = InvokeCommand.InvokeScript(
                        $"Get-ChildItem -LiteralPath '{quoted}' -Recurse -File | Where-Object {{ Get-Item -LiteralPath $_.FullName -Stream Zone.Identifier -ErrorAction SilentlyContinue }} | ForEach-Object {{ $_.FullName }}")
                    .Select(o => o.BaseObject.ToString()!);
                var relative = WindowsPrerequisites.Relative(marked, dir);
                var policies = InvokeCommand.InvokeScript("'MachinePolicy', 'UserPolicy', 'LocalMachine' | ForEach-Object { [string](Get-ExecutionPolicy -Scope $_) }")
                    .Select(o => o.BaseObject.ToString() ?? "").ToArray();
                var policy = WindowsPrerequisites.TaskPolicy(policies[0], policies[1], policies[2]);
                var problem = WindowsPrerequisites.ModuleLoadProblem(policy, relative, dir, out var remedy);
                row.Status = problem == null ? "Passed" : "Failed";
                row.Detail = problem ?? $"the task runs under execution policy {policy}; " +
                    (relative.Count == 0 ? "no module file carries the mark of the web" : $"{relative.Count} module files carry the mark of the web, harmless under {policy}");
                row.Remedy = remedy;
            }
            catch (RuntimeException ex)
            {
                row.Status = "Failed";
                row.Detail = "could not inspect the module's files: " + ex.Message;
                row.Remedy = "Check with Get-Item -Stream Zone.Identifier and Get-ExecutionPolicy -List.";
            }
            return row;
        }

        /// <summary>
        /// NOT RUN HERE (Windows only): reads the log's "enabled:" line from wevtutil (inbox; the
        /// EventLogConfiguration API is not in netstandard2.0). Without the history log, Task
        /// Scheduler events 201 (with the result code) are not recorded.
        /// </summary>
        private static XFlowConnectionCheck TaskHistoryCheck()
        {
            var row = new XFlowConnectionCheck { Check = "Task Scheduler history", Target = TaskHistoryLog };
            if (!NativeLibraryLoader.IsWindows)
            {
                row.Status = "Skipped";
                row.Detail = "Windows only; on Linux the systemd journal records every run and its exit code.";
                return row;
            }
            try
            {
                var wevtutil = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.System), "wevtutil.exe");
                ProcessRunner.Run(wevtutil, "get-log " + TaskHistoryLog, out var output);
                bool enabled = output.IndexOf("enabled: true", StringComparison.OrdinalIgnoreCase) >= 0;
                row.Status = enabled ? "Passed" : "Failed";
                row.Detail = enabled ? "enabled" : "disabled (or unreadable): Task Scheduler records no event 201 with the run's result code";
                if (!enabled) row.Remedy = $"As administrator: wevtutil set-log {TaskHistoryLog} /enabled:true (or Task Scheduler > Enable All Tasks History).";
            }
            catch (Exception ex) when (ex is System.ComponentModel.Win32Exception || ex is InvalidOperationException)
            {
                row.Status = "Failed";
                row.Detail = "could not query the log: " + ex.Message;
                row.Remedy = "Check manually in Event Viewer: Applications and Services Logs > Microsoft > Windows > TaskScheduler > Operational.";
            }
            return row;
        }
    }
}
