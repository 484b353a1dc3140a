using System;
using System.IO;
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
            PreflightAnswer answer;
            try
            {
                using (var request = RunConfigJson.Create(values, token, op: "preflight"))
                {
                    answer = EngineCall.Invoke<PreflightAnswer>(request);
                }
            }
            catch (XFlowDeliveryException ex)
            {
                Fail(ex);
                return;
            }
            finally
            {
                if (ownsToken) token.Dispose();
            }
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
