using System;
using System.Globalization;
using System.Linq;
using System.Management.Automation;
using System.Text;
using XFlowDelivery.Config;
using XFlowDelivery.Model;
using XFlowDelivery.Native;

namespace XFlowDelivery.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Shows the last run and last successful run, deliveries awaiting acknowledgement, quarantined deliveries, stalled importers and files left too long in an import folder; without a path, for every installation registered on this server.</para>
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "XFlowDeliveryStatus", DefaultParameterSetName = AllSet)]
    [OutputType(typeof(XFlowDeliveryStatus))]
    public sealed class GetXFlowDeliveryStatusCommand : XFlowCmdletBase
    {
        /// <summary>No path: every installation in the machine-wide registry.</summary>
        private const string AllSet = "All";

        /// <summary>A configuration file; its state folder and import folders are examined.</summary>
        [Parameter(Mandatory = true, Position = 0, ParameterSetName = ConfigSet)]
        [ValidateNotNullOrEmpty]
        public string ConfigPath { get; set; } = null!;

        /// <summary>The state folder (as given to Invoke-XFlowDelivery -StatePath).</summary>
        [Parameter(Mandatory = true, ParameterSetName = StateSet)]
        [ValidateNotNullOrEmpty]
        public string StatePath { get; set; } = null!;

        /// <summary>With -StatePath: the SD Løn import folder to look into for stale files.</summary>
        [Parameter(ParameterSetName = StateSet)]
        [ValidateNotNullOrEmpty]
        public string? SdLoenPath { get; set; }

        /// <summary>With -StatePath: the Prisme import folder to look into for stale files.</summary>
        [Parameter(ParameterSetName = StateSet)]
        [ValidateNotNullOrEmpty]
        public string? PrismePath { get; set; }

        /// <summary>A delivered file older than this many minutes still in an import folder is reported (default 60).</summary>
        [Parameter]
        [ValidateRange(1, 525600)]
        public int StaleAfterMinutes { get; set; } = 60;

        protected override void ProcessRecord()
        {
            if (ParameterSetName == AllSet)
            {
                var entries = Installations.Read();
                if (entries.Count == 0)
                {
                    WriteWarning($"No installation is registered on this server (in '{Installations.Directory}'): give -ConfigPath or -StatePath.");
                }
                foreach (var entry in entries)
                {
                    var status = StatusOf(entry.StatePath, entry.SdLoenPath, entry.PrismePath);
                    status.ConfigPath = entry.ConfigPath;
                    status.TaskName = entry.TaskName;
                    WriteObject(status);
                }
                return;
            }
            var statePath = StatePathFrom(StatePath, ConfigPath, out var config);
            var sdLoen = config != null ? config.SdLoenPath : (SdLoenPath == null ? null : ResolvePath(SdLoenPath, nameof(SdLoenPath)));
            var prisme = config != null ? config.PrismePath : (PrismePath == null ? null : ResolvePath(PrismePath, nameof(PrismePath)));
            var one = StatusOf(statePath, sdLoen, prisme);
            if (ConfigPath != null) one.ConfigPath = ResolvePath(ConfigPath, nameof(ConfigPath));
            WriteObject(one);
        }

        private XFlowDeliveryStatus StatusOf(string statePath, string? sdLoen, string? prisme)
        {
            var json = new StringBuilder("{\"op\":\"status\"");
            Member(json, "statePath", statePath);
            json.Append(",\"folders\":[");
            AppendFolder(json, "SDLoen", sdLoen, first: true);
            AppendFolder(json, "Prisme", prisme, first: sdLoen == null);
            json.Append("],\"staleAfterMinutes\":").Append(StaleAfterMinutes.ToString(CultureInfo.InvariantCulture)).Append('}');

            var answer = Call<StatusAnswer>(json.ToString());
            var status = new XFlowDeliveryStatus
            {
                StatePath = statePath,
                LastRun = XFlowRunRecord.From(answer.LastRun),
                LastSuccessfulRun = XFlowRunRecord.From(answer.LastSuccessfulRun),
                AwaitingAcknowledgement = answer.AwaitingAcknowledgement,
                InProgress = answer.InProgress,
                Quarantined = (answer.Quarantined ?? new System.Collections.Generic.List<RecordJson>()).Select(XFlowDeliveryRecord.From).ToArray(),
                StaleFiles = (answer.StaleFiles ?? new System.Collections.Generic.List<StaleFileJson>())
                    .Select(f => new XFlowStaleFile { System = f.System ?? "", Path = f.Path ?? "", AgeMinutes = f.AgeMinutes, Size = f.Size })
                    .ToArray(),
                FolderErrors = (answer.FolderErrors ?? new System.Collections.Generic.List<string>()).ToArray(),
                StateFolderExposure = answer.StateFolderExposure,
            };
            status.ImportStalls = status.LastRun?.Stalls ?? new XFlowImportStall[0];
            if (status.LastSuccessfulRun?.FinishedAt is DateTimeOffset finished)
            {
                status.MinutesSinceLastSuccess = Math.Round((DateTimeOffset.UtcNow - finished).TotalMinutes, 1);
            }
            status.Healthy = status.LastRun != null && status.LastRun.ExitCode == ExitCodes.Success
                             && status.Quarantined.Length == 0 && status.StaleFiles.Length == 0 && status.FolderErrors.Length == 0
                             && status.StateFolderExposure == null
                             && status.ImportStalls.Length == 0;
            foreach (var error in status.FolderErrors)
            {
                WriteWarning("Cannot look into an import folder: " + error);
            }
            if (status.StateFolderExposure != null)
            {
                WriteWarning($"Other accounts can read the state folder '{statePath}', which holds personal data ({status.StateFolderExposure}). The next run restricts it to its owner.");
            }
            return status;
        }

        private static void AppendFolder(StringBuilder json, string system, string? path, bool first)
        {
            if (path == null) return;
            if (!first) json.Append(',');
            json.Append("{\"system\":\"").Append(system).Append('"');
            Member(json, "path", path);
            json.Append('}');
        }
    }
}
