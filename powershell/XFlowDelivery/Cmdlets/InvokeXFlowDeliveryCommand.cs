using System;
using System.Globalization;
using System.IO;
using System.Management.Automation;
using System.Security;
using XFlowDelivery.Config;
using XFlowDelivery.Model;
using XFlowDelivery.Native;

namespace XFlowDelivery.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Pulls pending XFlow deliveries and writes each into the SD Løn or Prisme import folder.</para>
    /// <para type="description">
    /// Every file is downloaded, checked against the SHA-256 the server announced, written to a hidden
    /// temporary file in the target folder and then published under its final name in one atomic step;
    /// only after that is it acknowledged to XFlow (with -AckMode Ack). Writes one XFlowDeliveredFile
    /// per published file, then one XFlowRunSummary. A failure of one delivery is a non-terminating
    /// error; a failure of the whole run (server unreachable, authentication, bad configuration) is a
    /// terminating error whose ErrorId names the cause. With -WhatIf nothing changes anywhere
    /// (folders, journal, spool, server): with -AckMode Ack the first page is fetched (the server keeps it
    /// pending) and each delivery is reported as "What if: Deliver …"; with -AckMode None nothing is
    /// fetched, since the server forgets what it hands out; what recovery would do is reported too.
    /// </para>
    /// </summary>
    [Cmdlet(VerbsLifecycle.Invoke, "XFlowDelivery", DefaultParameterSetName = ExplicitSet, SupportsShouldProcess = true)]
    [OutputType(typeof(XFlowDeliveredFile), typeof(XFlowRunSummary), typeof(int))]
    public sealed class InvokeXFlowDeliveryCommand : XFlowRunCmdletBase
    {
        private const int ProgressActivityId = 1;

        /// <summary>How SD Løn files are checked before they are published: Off, Warn (default: deliver, and report each finding as a warning) or Quarantine (keep the file out of the folder until released). SD Løn's format is not public: only an empty file or bytes not valid in the declared encoding are found.</summary>
        [Parameter(ParameterSetName = ExplicitSet)]
        [ValidateSet("Off", "Warn", "Quarantine")]
        public string SdLoenValidation { get; set; } = "Warn";

        /// <summary>How Prisme files (G69 postings, G68 payments) are checked before they are published: Off, Warn (default) or Quarantine.</summary>
        [Parameter(ParameterSetName = ExplicitSet)]
        [ValidateSet("Off", "Warn", "Quarantine")]
        public string PrismeValidation { get; set; } = "Warn";

        /// <summary>Importer-stall alarm for SD Løn: a file this module published still in the import folder after this many minutes ends the run with exit code 7. Off unless set.</summary>
        [Parameter(ParameterSetName = ExplicitSet)]
        [ValidateRange(1, 525600)]
        public int? SdLoenStallAfterMinutes { get; set; }

        /// <summary>Importer-stall alarm for Prisme (minutes); off unless set.</summary>
        [Parameter(ParameterSetName = ExplicitSet)]
        [ValidateRange(1, 525600)]
        public int? PrismeStallAfterMinutes { get; set; }

        /// <summary>
        /// Runs as the scheduled task does (the task's command line and the entry script
        /// XFlowDelivery.Task.ps1 call it), handed first to a newer installed copy if there is one
        /// (TaskHandover; not under -WhatIf): a line
        /// per delivered file and then the run's line on standard output, errors and warnings as
        /// usual, on Windows that line in the Application log, and as the only output the task's exit
        /// code. A failure ends nothing but the run: it is printed, named in the line and mapped to
        /// the exit code, never thrown. Only with -ConfigPath.
        /// </summary>
        [Parameter(ParameterSetName = ConfigSet)]
        public SwitchParameter AsScheduledTask { get; set; }

        /// <summary>The task's report while -AsScheduledTask runs; null otherwise.</summary>
        private TaskReport? _task;

        /// <summary>
        /// How long a run that is still going when the cmdlet ends (stopped, or failed) is given
        /// to release the state folder's lock before it is left to finish in the background: short
        /// enough that Ctrl+C always comes back within 2 s.
        /// </summary>
        private const uint ReleaseWaitMilliseconds = 1000;

        protected override void ProcessRecord()
        {
            if (!AsScheduledTask)
            {
                Deliver();
                return;
            }
            if (TaskHandover.Newer() is InstalledModule newer && HandOver(newer)) return;
            _task = new TaskReport();
            try
            {
                Deliver();
            }
            catch (RunEnded ended)
            {
                _task.Ended(ended.Record);
            }
            catch (Exception ex) when (!(ex is PipelineStoppedException))
            {
                // A defect, not a run's failure: still a line and exit code 1 rather than no result.
                _task.Ended(new ErrorRecord(ex, "Unexpected", ErrorCategory.NotSpecified, ConfigPath));
            }
            WriteObject(_task.Finish(InvokeCommand));
        }

        /// <summary>
        /// Hands the run to a newer installed copy (TaskHandover) and writes its exit code; false,
        /// with a warning, when it cannot be started, so that this copy still runs, and under
        /// -WhatIf.
        /// </summary>
        private bool HandOver(InstalledModule newer)
        {
            // Under -WhatIf this copy previews the run: the newer one would deliver for real.
            if (!ShouldProcess($"XFlowDelivery {newer.Version} ('{newer.AssemblyPath}')", "Hand the run to the newer installed copy")) return false;
            try
            {
                WriteObject(TaskHandover.Run(newer, SessionState.Path.GetUnresolvedProviderPathFromPSPath(ConfigPath)));
                return true;
            }
            catch (Exception ex) when (ex is System.ComponentModel.Win32Exception || ex is InvalidOperationException || ex is IOException)
            {
                WriteWarning($"The run could not be handed to XFlowDelivery {newer.Version} ('{newer.AssemblyPath}'): {ex.Message}. This copy runs it; run Register-XFlowDeliveryTask -Force to name the newer one in the task.");
                return false;
            }
        }

        private protected override void Terminate(ErrorRecord record)
        {
            if (_task != null) throw new RunEnded(record);
            base.Terminate(record);
        }

        /// <summary>Carries a failure to ProcessRecord under -AsScheduledTask.</summary>
        private sealed class RunEnded : Exception
        {
            internal RunEnded(ErrorRecord record) : base(record.Exception?.Message) => Record = record;

            internal ErrorRecord Record { get; }
        }

        private void Deliver()
        {
            var values = ReadRunSettings(out var token, out bool ownsToken);
            if (ParameterSetName == ExplicitSet)
            {
                values.SdLoenValidation = SdLoenValidation;
                values.PrismeValidation = PrismeValidation;
                values.SdLoenStallAfterMinutes = SdLoenStallAfterMinutes;
                values.PrismeStallAfterMinutes = PrismeStallAfterMinutes;
            }
            try
            {
                RefuseConflicts(values);
                var folders = $"SD Løn: {values.SdLoenPath ?? "not configured"}; Prisme: {values.PrismePath ?? "not configured"}";
                if (!ShouldProcess(
                        $"Fetch pending deliveries from {values.BaseUrl}, write them into the import folders ({folders}) and acknowledge them (ack mode {values.AckMode}).",
                        $"Fetch pending deliveries from {values.BaseUrl} and write them into the import folders ({folders})?",
                        "Invoke-XFlowDelivery",
                        out var reason))
                {
                    if (reason != ShouldProcessReason.WhatIf) return; // declined at -Confirm
                    values.WhatIf = true; // fetch and validate only; nothing written or acknowledged
                }
                values.Verbose = VerboseShown();
                WriteVerbose($"Fetching deliveries from {values.BaseUrl} ({folders}; state: {values.StatePath}; ack: {values.AckMode}" +
                             (values.WhatIf ? "; WhatIf: nothing is written or acknowledged" : "") + ").");
                Run(values, token);
            }
            finally
            {
                if (ownsToken) token.Dispose();
            }
        }

        private void Run(RunConfigValues values, SecureString token)
        {
            // A Ctrl+C pressed while the configuration was read (or -Confirm asked) starts nothing.
            if (StopRequested) throw new PipelineStoppedException();
            XfdRunHandle? run = null;
            try
            {
                using (var config = RunConfigJson.Create(values, token))
                {
                    run = NativeRun.Start(config);
                } // the config JSON (with the token) is zeroed and freed here
                Track(run);
                Pump(run, values.BaseUrl, values.Verbose);
            }
            catch (XFlowDeliveryException ex)
            {
                Fail(ex);
            }
            finally
            {
                Track(null);
                if (run != null) Release(run, values.StatePath);
            }
        }

        /// <summary>
        /// Another installation on this server (the machine-wide registry) must not own this state
        /// folder or deliver the same system into the same folder (ErrorId InstallationConflict).
        /// </summary>
        private void RefuseConflicts(RunConfigValues values)
        {
            var installation = new InstallationEntry
            {
                ConfigPath = ConfigFile,
                BaseUrl = values.BaseUrl,
                StatePath = values.StatePath,
                SdLoenPath = values.SdLoenPath,
                PrismePath = values.PrismePath,
            };
            if (Installations.FindConflict(installation, Installations.Read()) is XFlowDeliveryException conflict)
            {
                Fail(conflict);
            }
        }

        /// <summary>
        /// Frees the run without hanging. One still going (the pipeline was stopped, or an error
        /// ended the pump) is cancelled and given <see cref="ReleaseWaitMilliseconds"/> to release
        /// the state folder's lock; a run blocked in a system call (an fsync on a hung share) is
        /// then left to finish in the background, and the administrator is told.
        /// </summary>
        private void Release(XfdRunHandle run, string statePath)
        {
            using (run) // xfd_run_free: never waits
            {
                run.Cancel();
                if (run.WaitEnded(ReleaseWaitMilliseconds)) return;
            }
            var message = $"The run did not stop within {ReleaseWaitMilliseconds / 1000.0:0.#} s: it is blocked in a file system or network call " +
                          $"and finishes in the background. Until it does, it holds the lock on the state folder '{statePath}', " +
                          "so a run started there meanwhile ends at once with outcome Locked. If this PowerShell process ends first, " +
                          "the run ends with it, and the next run recovers whatever it left unfinished.";
            // A stopped pipeline takes no more output; the console host still shows the warning.
            if (StopRequested) Host?.UI?.WriteWarningLine(message);
            else WriteWarning(message);
        }

        /// <summary>
        /// Whether WriteVerbose output is shown or collected (-Verbose, or $VerbosePreference): when
        /// it is not, the engine is asked for no verbose messages, which halves the events a drain
        /// sends across the boundary.
        /// </summary>
        private bool VerboseShown()
        {
            if (MyInvocation.BoundParameters.TryGetValue("Verbose", out var bound) && bound is SwitchParameter verbose)
            {
                return verbose.IsPresent;
            }
            return !(GetVariableValue("VerbosePreference") is ActionPreference preference)
                || (preference != ActionPreference.SilentlyContinue && preference != ActionPreference.Ignore);
        }

        /// <summary>Pulls events on the pipeline thread; every Write* happens here.</summary>
        /// <param name="verboseShown">Whether verbose output is shown (<see cref="VerboseShown"/>): a
        /// fresh process pays about 13 ms for its first WriteVerbose, even one nobody sees.</param>
        private void Pump(XfdRunHandle run, string baseUrl, bool verboseShown)
        {
            EngineEvent? summary = null;
            bool progressShown = false;
            long planned = 0;
            XFlowDeliveryException? unreadable = null;
            while (true)
            {
                XfdStatus status;
                EngineEvent? engineEvent;
                try
                {
                    status = NativeRun.NextEvent(run, PollMilliseconds, out engineEvent);
                }
                catch (XFlowDeliveryException ex) when (ex.ErrorId == EngineJson.UnreadableId)
                {
                    // One event lost, not the run: the events after it and the summary still come.
                    unreadable = ex;
                    Report(ErrorMapping.ToErrorRecord(ex));
                    continue;
                }
                if (status == XfdStatus.Timeout)
                {
                    // Stopped while the run is busy (or blocked): leave now; Release cancels it.
                    if (StopRequested) throw new PipelineStoppedException();
                    continue;
                }
                if (status == XfdStatus.Finished) break;
                if (engineEvent == null) continue;

                switch (engineEvent.Kind)
                {
                    case "verbose":
                        WriteVerbose(engineEvent.Message ?? "");
                        break;
                    case "progress":
                        WriteProgress(ToProgress(engineEvent));
                        progressShown = true;
                        break;
                    case "delivered":
                        if (_task != null) _task.Delivered(ToDeliveredFile(engineEvent));
                        else WriteObject(ToDeliveredFile(engineEvent));
                        break;
                    case "planned":
                        planned++;
                        // Under -WhatIf this only prints "What if: Deliver …"; it never returns true.
                        ShouldProcess($"Deliver '{engineEvent.FileName}' ({engineEvent.Size} bytes, {engineEvent.System}) to '{engineEvent.Path}'.", "", "");
                        break;
                    case "preview":
                        // What a real run would change besides delivering (recovery, acknowledgements),
                        // or why the preview stopped: printed as "What if: …" like the deliveries.
                        ShouldProcess(engineEvent.Message ?? "", "", "");
                        break;
                    case "warning":
                        WriteWarning(engineEvent.Message ?? "");
                        break;
                    case "error":
                        Report(ErrorMapping.ToErrorRecord(engineEvent.AsError()));
                        break;
                    case "summary":
                        summary = engineEvent;
                        if (verboseShown) WriteVerbose(DescribeSummary(engineEvent));
                        break;
                    default:
                        WriteDebug($"Ignoring engine event of unknown kind '{engineEvent.Kind}'.");
                        break;
                }
            }

            if (progressShown)
            {
                WriteProgress(new ProgressRecord(ProgressActivityId, "XFlow delivery", "Done") { RecordType = ProgressRecordType.Completed });
            }

            if (summary == null)
            {
                if (unreadable != null) Fail(unreadable);
                Fail("Internal", ErrorCategory.NotSpecified, "The delivery engine finished without reporting a summary.", baseUrl);
                return;
            }
            if (StopRequested) throw new PipelineStoppedException();
            var result = ToSummary(summary);
            result.Planned = planned;
            if (_task != null) _task.Summary(result);
            else WriteObject(result);
            if (summary.Error != null)
            {
                Terminate(ErrorMapping.ToErrorRecord(summary.Error));
            }
        }

        /// <summary>A non-terminating error: written, and under -AsScheduledTask remembered for the line.</summary>
        private void Report(ErrorRecord record)
        {
            _task?.Error(record);
            WriteError(record);
        }

        private static ProgressRecord ToProgress(EngineEvent e)
        {
            var activity = string.IsNullOrEmpty(e.Activity) ? "XFlow delivery" : e.Activity!;
            var status = string.IsNullOrEmpty(e.Status) ? "Working" : e.Status!;
            var record = new ProgressRecord(ProgressActivityId, activity, status);
            if (e.Total is long total && total > 0 && e.Current is long current)
            {
                record.PercentComplete = (int)Math.Max(0, Math.Min(100, current * 100 / total));
            }
            return record;
        }

        private static XFlowDeliveredFile ToDeliveredFile(EngineEvent e) => new XFlowDeliveredFile
        {
            Id = e.Id ?? "",
            System = e.System ?? "",
            FileName = e.FileName ?? "",
            Path = e.Path ?? "",
            Sha256 = e.Sha256 ?? "",
            Size = e.Size ?? 0,
            CreatedAt = Time.Parse(e.CreatedAt),
        };

        internal static XFlowRunSummary ToSummary(EngineEvent e) => new XFlowRunSummary
        {
            RunId = e.RunId ?? "",
            Outcome = e.Outcome ?? "",
            Delivered = e.Delivered ?? 0,
            Failed = e.Failed ?? 0,
            Skipped = e.Skipped ?? 0,
            Reacknowledged = e.Reacknowledged ?? 0,
            Pages = e.Pages ?? 0,
            StartedAt = Time.Parse(e.StartedAt),
            Duration = TimeSpan.FromMilliseconds(e.DurationMs ?? 0),
            ErrorId = e.Error?.ErrorId,
            ErrorMessage = e.Error?.Message,
            Stalls = XFlowImportStall.From(e.Stalls),
        };

        private static string DescribeSummary(EngineEvent e)
        {
            var s = ToSummary(e);
            return string.Format(CultureInfo.InvariantCulture,
                "Run {0}: {1}; {2} delivered, {3} failed, {4} skipped, {5} acknowledged again in {6:0.0} s.",
                s.RunId, s.Outcome, s.Delivered, s.Failed, s.Skipped, s.Reacknowledged, s.Duration.TotalSeconds);
        }
    }
}
