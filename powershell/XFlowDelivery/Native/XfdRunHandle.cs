using System;
using System.Runtime.InteropServices;

namespace XFlowDelivery.Native
{
    /// <summary>
    /// Owns one native run (void* from xfd_run_start). ReleaseHandle calls xfd_run_free exactly once,
    /// which cancels the run if it is still going, waits for its thread and frees it.
    /// Cancel may be called from any thread (StopProcessing): AddRef/Release keep the handle alive
    /// for the duration of the call even if the pipeline thread disposes it concurrently.
    /// </summary>
    internal sealed unsafe class XfdRunHandle : SafeHandle
    {
        public XfdRunHandle() : base(IntPtr.Zero, ownsHandle: true) { }

        public override bool IsInvalid => handle == IntPtr.Zero;

        internal void Attach(void* run) => SetHandle((IntPtr)run);

        protected override bool ReleaseHandle()
        {
            NativeMethods.xfd_run_free((void*)handle);
            return true;
        }

        /// <summary>Asks the run to stop. Thread-safe, idempotent; a no-op once the handle is closed.</summary>
        internal void Cancel()
        {
            bool added = false;
            try
            {
                DangerousAddRef(ref added);
                NativeMethods.xfd_run_cancel((void*)DangerousGetHandle());
            }
            catch (ObjectDisposedException)
            {
                // Already freed: nothing left to cancel.
            }
            finally
            {
                if (added) DangerousRelease();
            }
        }
    }
}
