using System.Management.Automation;
using XFlowDelivery.Config;
using XFlowDelivery.Model;

namespace XFlowDelivery.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Shows an XFlowDelivery configuration file; the token is never shown, only whether one is set and how it is protected.</para>
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "XFlowDeliveryConfig")]
    [OutputType(typeof(XFlowDeliveryConfig))]
    public sealed class GetXFlowDeliveryConfigCommand : XFlowCmdletBase
    {
        /// <summary>The configuration file.</summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("ConfigPath")]
        [ValidateNotNullOrEmpty]
        public string Path { get; set; } = null!;

        protected override void ProcessRecord()
        {
            var doc = LoadConfig(Path, out var resolved);
            WriteObject(ConfigStore.Describe(resolved, doc));
        }
    }
}
