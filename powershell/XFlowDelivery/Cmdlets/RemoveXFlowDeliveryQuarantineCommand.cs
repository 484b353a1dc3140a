using System.Management.Automation;
using System.Text;
using XFlowDelivery.Model;
using XFlowDelivery.Native;

namespace XFlowDelivery.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Releases a quarantined delivery once an administrator has dealt with it, so it is no longer reported on every run.</para>
    /// </summary>
    [Cmdlet(VerbsCommon.Remove, "XFlowDeliveryQuarantine", DefaultParameterSetName = StateSet,
        SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
    [OutputType(typeof(XFlowDeliveryRecord))]
    public sealed class RemoveXFlowDeliveryQuarantineCommand : XFlowCmdletBase
    {
        /// <summary>The XFlow id of the quarantined delivery (from Get-XFlowDeliveryStatus or Get-XFlowDeliveryHistory -State Quarantined).</summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        public string Id { get; set; } = null!;

        /// <summary>The state folder.</summary>
        [Parameter(Mandatory = true, ParameterSetName = StateSet)]
        [ValidateNotNullOrEmpty]
        public string StatePath { get; set; } = null!;

        /// <summary>A configuration file; its state folder is used.</summary>
        [Parameter(Mandatory = true, ParameterSetName = ConfigSet)]
        [ValidateNotNullOrEmpty]
        public string ConfigPath { get; set; } = null!;

        /// <summary>Write the released record.</summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }

        protected override void ProcessRecord()
        {
            var statePath = StatePathFrom(StatePath, ConfigPath, out _);
            var query = new StringBuilder("{\"op\":\"history\",\"state\":\"quarantined\",\"limit\":1");
            Member(query, "statePath", statePath);
            Member(query, "id", Id);
            var found = Call(query.Append('}').ToString(), HistoryJson.Reader).Deliveries;
            if (found == null || found.Count == 0)
            {
                // Checked here so that a typo is "not found", not the engine's generic configuration error.
                WriteError(ErrorMapping.FromCmdlet("NotQuarantined", ErrorCategory.ObjectNotFound,
                    $"No quarantined delivery has id '{Id}' in '{statePath}'.", Id));
                return;
            }
            var record = found[0];
            if (!ShouldProcess($"{record.System} delivery '{record.Id}' ({record.RequestedName}; quarantined: {record.Reason})",
                    "Release from quarantine (it will no longer be reported)"))
            {
                return;
            }
            var release = new StringBuilder("{\"op\":\"releaseQuarantined\"");
            Member(release, "statePath", statePath);
            Member(release, "id", Id);
            var released = Call<RecordJson>(release.Append('}').ToString());
            WriteVerbose($"Released quarantined delivery {Id}.");
            if (PassThru) WriteObject(XFlowDeliveryRecord.From(released));
        }
    }
}
