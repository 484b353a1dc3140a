using System;
using System.Globalization;
using System.IO;
using System.Management.Automation;
using System.Security;
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
    /// per published file. A failure of one delivery is a non-terminating error; a failure of the
    /// whole run (server unreachable, authentication, bad configuration) is a terminating error
    /// whose ErrorId names the cause.
    /// </para>
    /// </summary>
    [Cmdlet(VerbsLifecycle.Invoke, "XFlowDelivery")]
    [OutputType(typeof(XFlowDeliveredFile))]
    public sealed class InvokeXFlowDeliveryCommand : PSCmdlet
    {
        private const uint PollMilliseconds = 200;
        private const int ProgressActivityId = 1;

        private readonly object _gate = new object();
        private XfdRunHandle? _run;
        private bool _stopping;

        /// <summary>XFlow API base URL, e.g. https://xflow.example.dk/api/v1/. https only, unless -AllowInsecureHttp with a loopback address.</summary>
        [Parameter(Mandatory = true, Position = 0)]
        [ValidateNotNull]
        public Uri BaseUrl { get; set; } = null!;

        /// <summary>The XFlow public API token. Never written to any output, log or error.</summary>
        [Parameter(Mandatory = true)]
        [ValidateNotNull]
        public SecureString ApiToken { get; set; } = null!;

        /// <summary>Import folder of SD Løn. Omit if this server does not deliver to SD Løn.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? SdLoenPath { get; set; }

        /// <summary>Import folder of Prisme. Omit if this server does not deliver to Prisme.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? PrismePath { get; set; }

        /// <summary>Folder for the engine's own state (journal, lock).</summary>
        [Parameter(Mandatory = true)]
        [ValidateNotNullOrEmpty]
        public string StatePath { get; set; } = null!;

        /// <summary>PEM file with an extra CA certificate to trust for the XFlow server.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? CaCertificatePath { get; set; }

        /// <summary>Ack (default): acknowledge each delivery after it is published. None: do not acknowledge.</summary>
        [Parameter]
        [ValidateSet("Ack", "None")]
        public string AckMode { get; set; } = "Ack";

        /// <summary>Timeout of each HTTP request, in seconds (1–3600).</summary>
        [Parameter]
        [ValidateRange(1, 3600)]
        public int TimeoutSec { get; set; } = 100;

        /// <summary>Allow plain http, only to a loopback address (testing).</summary>
        [Parameter]
        public SwitchParameter AllowInsecureHttp { get; set; }

        protected override void BeginProcessing()
        {
            try
            {
                NativeLibraryLoader.EnsureLoaded();
            }
            catch (XFlowDeliveryLoadException ex)
            {
                ThrowTerminatingError(ErrorMapping.FromLoadFailure(ex));
            }
        }

        protected override void ProcessRecord()
        {
            if (!BaseUrl.IsAbsoluteUri)
            {
                ThrowTerminatingError(ErrorMapping.FromCmdlet("InvalidBaseUrl", ErrorCategory.InvalidArgument,
                    $"BaseUrl '{BaseUrl.OriginalString}' is not an absolute URL.", BaseUrl));
            }

            var values = new RunConfigValues
            {
                BaseUrl = BaseUrl.OriginalString,
                SdLoenPath = SdLoenPath == null ? null : ResolveFolder(SdLoenPath, nameof(SdLoenPath)),
                PrismePath = PrismePath == null ? null : ResolveFolder(PrismePath, nameof(PrismePath)),
                StatePath = ResolveFolder(StatePath, nameof(StatePath)),
                CaCertificatePath = CaCertificatePath == null ? null : ResolveFolder(CaCertificatePath, nameof(CaCertificatePath)),
                AckMode = AckMode,
                TimeoutSec = TimeoutSec,
                AllowInsecureHttp = AllowInsecureHttp.IsPresent,
                WhatIf = false,
            };
            if (values.SdLoenPath == null && values.PrismePath == null)
            {
                ThrowTerminatingError(ErrorMapping.FromCmdlet("NoImportFolder", ErrorCategory.InvalidArgument,
                    "Give -SdLoenPath, -PrismePath or both: without an import folder there is nothing to deliver to.", null));
            }

            WriteVerbose($"Fetching deliveries from {values.BaseUrl} (SD Løn: {values.SdLoenPath ?? "not configured"}; " +
                         $"Prisme: {values.PrismePath ?? "not configured"}; state: {values.StatePath}; ack: {values.AckMode}).");

            XfdRunHandle? run = null;
            try
            {
                using (var config = RunConfigJson.Create(values, ApiToken))
                {
                    run = NativeRun.Start(config);
                } // the config JSON (with the token) is zeroed and freed here
                lock (_gate)
                {
                    _run = run;
                    if (_stopping) run.Cancel();
                }
                Pump(run);
            }
            catch (XFlowDeliveryException ex)
            {
                ThrowTerminatingError(ErrorMapping.ToErrorRecord(ex));
            }
            finally
            {
                lock (_gate) _run = null;
                // xfd_run_free: cancels if still running (e.g. the pipeline was stopped), waits, frees.
                run?.Dispose();
            }
        }

        /// <summary>Ctrl+C / pipeline stop: runs on another thread; only asks the engine to cancel.</summary>
        protected override void StopProcessing()
        {
            XfdRunHandle? run;
            lock (_gate)
            {
                _stopping = true;
                run = _run;
            }
            run?.Cancel();
        }

        /// <summary>Pulls events on the pipeline thread; every Write* happens here.</summary>
        private void Pump(XfdRunHandle run)
        {
            EngineEvent? summary = null;
            bool progressShown = false;
            while (true)
            {
                var status = NativeRun.NextEvent(run, PollMilliseconds, out var engineEvent);
                if (status == XfdStatus.Timeout) continue;
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
                        WriteObject(ToDeliveredFile(engineEvent));
                        break;
                    case "warning":
                        WriteWarning(engineEvent.Message ?? "");
                        break;
                    case "error":
                        WriteError(ErrorMapping.ToErrorRecord(engineEvent.AsError()));
                        break;
                    case "summary":
                        summary = engineEvent;
                        WriteVerbose(DescribeSummary(engineEvent));
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
                ThrowTerminatingError(ErrorMapping.FromCmdlet("Internal", ErrorCategory.NotSpecified,
                    "The delivery engine finished without reporting a summary.", BaseUrl.OriginalString));
                return;
            }
            if (summary.Error != null)
            {
                lock (_gate)
                {
                    if (_stopping) throw new PipelineStoppedException();
                }
                ThrowTerminatingError(ErrorMapping.ToErrorRecord(summary.Error));
            }
        }

        private string ResolveFolder(string path, string parameterName)
        {
            string resolved;
            ProviderInfo provider;
            try
            {
                // Relative paths resolve against PowerShell's current location, not the process cwd.
                resolved = SessionState.Path.GetUnresolvedProviderPathFromPSPath(path, out provider, out _);
            }
            catch (Exception ex) when (ex is ItemNotFoundException || ex is System.Management.Automation.DriveNotFoundException
                                       || ex is ProviderNotFoundException || ex is NotSupportedException
                                       || ex is ArgumentException || ex is PSInvalidOperationException)
            {
                ThrowTerminatingError(ErrorMapping.FromCmdlet("InvalidPath", ErrorCategory.InvalidArgument,
                    $"-{parameterName} '{path}' is not a valid file system path: {ex.Message}", path));
                throw; // unreachable
            }

            if (!string.Equals(provider.Name, "FileSystem", StringComparison.OrdinalIgnoreCase))
            {
                ThrowTerminatingError(ErrorMapping.FromCmdlet("InvalidPath", ErrorCategory.InvalidArgument,
                    $"-{parameterName} '{path}' is on the {provider.Name} provider; give a file system path.", path));
            }
            if (!Path.IsPathRooted(resolved))
            {
                ThrowTerminatingError(ErrorMapping.FromCmdlet("InvalidPath", ErrorCategory.InvalidArgument,
                    $"-{parameterName} '{path}' does not resolve to an absolute path.", path));
            }
            return resolved;
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
            CreatedAt = ParseTime(e.CreatedAt),
        };

        internal static XFlowRunSummary ToSummary(EngineEvent e) => new XFlowRunSummary
        {
            RunId = e.RunId ?? "",
            Outcome = e.Outcome ?? "",
            Delivered = e.Delivered ?? 0,
            Failed = e.Failed ?? 0,
            StartedAt = ParseTime(e.StartedAt),
            Duration = TimeSpan.FromMilliseconds(e.DurationMs ?? 0),
            ErrorId = e.Error?.ErrorId,
            ErrorMessage = e.Error?.Message,
        };

        private static string DescribeSummary(EngineEvent e)
        {
            var s = ToSummary(e);
            return string.Format(CultureInfo.InvariantCulture,
                "Run {0}: {1}; {2} delivered, {3} failed in {4:0.0} s.",
                s.RunId, s.Outcome, s.Delivered, s.Failed, s.Duration.TotalSeconds);
        }

        private static DateTimeOffset? ParseTime(string? value)
        {
            if (string.IsNullOrEmpty(value)) return null;
            return DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed)
                ? parsed
                : (DateTimeOffset?)null;
        }
    }
}
