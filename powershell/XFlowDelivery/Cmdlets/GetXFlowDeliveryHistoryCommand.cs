using System;
using System.Globalization;
using System.Management.Automation;
using System.Text;
using XFlowDelivery.Model;
using XFlowDelivery.Native;

namespace XFlowDelivery.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Lists deliveries from the journal of a state folder, newest first, filtered by time, system, id and state.</para>
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "XFlowDeliveryHistory", DefaultParameterSetName = StateSet)]
    [OutputType(typeof(XFlowDeliveryRecord))]
    public sealed class GetXFlowDeliveryHistoryCommand : XFlowCmdletBase
    {
        /// <summary>The state folder (as given to Invoke-XFlowDelivery -StatePath).</summary>
        [Parameter(Mandatory = true, Position = 0, ParameterSetName = StateSet)]
        [ValidateNotNullOrEmpty]
        public string StatePath { get; set; } = null!;

        /// <summary>A configuration file; its state folder is read.</summary>
        [Parameter(Mandatory = true, ParameterSetName = ConfigSet)]
        [ValidateNotNullOrEmpty]
        public string ConfigPath { get; set; } = null!;

        /// <summary>Only deliveries received at or after this time.</summary>
        [Parameter]
        public DateTime? Since { get; set; }

        /// <summary>Only deliveries received at or before this time.</summary>
        [Parameter]
        public DateTime? Until { get; set; }

        /// <summary>Only deliveries for this system.</summary>
        [Parameter]
        [ValidateSet("SDLoen", "Prisme")]
        public string? System { get; set; }

        /// <summary>Only the delivery with this XFlow id.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? Id { get; set; }

        /// <summary>Only deliveries in this state.</summary>
        [Parameter]
        [ValidateSet("Received", "Publishing", "Published", "Acknowledged", "Quarantined")]
        public string? State { get; set; }

        /// <summary>At most this many deliveries (default 1000).</summary>
        [Parameter]
        [ValidateRange(1, 1000000)]
        public int First { get; set; } = 1000;

        protected override void ProcessRecord()
        {
            if (Since is DateTime s && Until is DateTime u && s > u)
            {
                Fail("InvalidTimeRange", ErrorCategory.InvalidArgument, $"-Since ({s:o}) is after -Until ({u:o}).", Since);
            }
            var statePath = StatePathFrom(StatePath, ConfigPath, out _);
            var json = new StringBuilder("{\"op\":\"history\"");
            Member(json, "statePath", statePath);
            Member(json, "since", Since is DateTime since ? Time.ToRfc3339(since) : null);
            Member(json, "until", Until is DateTime until ? Time.ToRfc3339(until) : null);
            Member(json, "system", System);
            Member(json, "id", Id);
            Member(json, "state", State?.ToLowerInvariant());
            json.Append(",\"limit\":").Append(First.ToString(CultureInfo.InvariantCulture)).Append('}');
            var answer = Call(json.ToString(), HistoryJson.Reader);
            foreach (var record in answer.Deliveries ?? new System.Collections.Generic.List<RecordJson>())
            {
                WriteObject(XFlowDeliveryRecord.From(record));
            }
        }
    }
}
