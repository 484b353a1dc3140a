using System.Management.Automation;

namespace XFlowFloor
{
    /// <summary>Does nothing but answer: the work-free cmdlet of the idle floor.</summary>
    [Cmdlet(VerbsLifecycle.Invoke, "XFlowFloor")]
    [OutputType(typeof(int))]
    public sealed class InvokeXFlowFloorCommand : PSCmdlet
    {
        protected override void ProcessRecord() => WriteObject(0);
    }
}
