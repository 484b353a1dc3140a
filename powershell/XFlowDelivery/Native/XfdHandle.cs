using System;
using System.Runtime.InteropServices;

namespace XFlowDelivery.Native
{
    /// <summary>
    /// Owns one native handle that does its work on an engine thread: a run (xfd_run_start) or a
    /// call (xfd_call_start). ReleaseHandle frees it exactly once; freeing cancels work still going
    /// and never waits for it (a thread blocked on a hung share would hold Dispose, and Ctrl+C,
    /// with it). Cancel may be called from any thread (StopProcessing): AddRef/Release keep the
    /// handle alive for the duration of the call even if the pipeline thread disposes it concurrently.
    /// </summary>
    internal abstract unsafe class XfdHandle : SafeHandle
    {
        protected XfdHandle() : base(IntPtr.Zero, ownsHandle: true) { }

        public override bool IsInvalid => handle == IntPtr.Zero;

        internal void Attach(void* native) => SetHandle((IntPtr)native);

        private protected abstract void FreeNative(void* native);

        private protected abstract void CancelNative(void* native);

        protected override bool ReleaseHandle()
        {
            FreeNative((void*)handle);
            return true;
        }

        /// <summary>Asks the work to stop. Thread-safe, idempotent; a no-op once the handle is closed.</summary>
        internal void Cancel()
        {
            bool added = false;
            try
            {
                DangerousAddRef(ref added);
                CancelNative((void*)DangerousGetHandle());
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

    /// <summary>A run (xfd_run_*).</summary>
    internal sealed unsafe class XfdRunHandle : XfdHandle
    {
        private protected override void FreeNative(void* native) => NativeMethods.xfd_run_free(native);

        private protected override void CancelNative(void* native) => NativeMethods.xfd_run_cancel(native);

        /// <summary>
        /// Waits up to <paramref name="timeoutMs"/> for the run's thread to end, i.e. for the run to
        /// release the state folder's lock; events still coming are discarded. Does not cancel.
        /// </summary>
        internal bool WaitEnded(uint timeoutMs)
        {
            bool added = false;
            try
            {
                DangerousAddRef(ref added);
                return NativeMethods.xfd_run_wait((void*)DangerousGetHandle(), timeoutMs) == NativeMethods.XFD_FINISHED;
            }
            finally
            {
                if (added) DangerousRelease();
            }
        }
    }

    /// <summary>A question to the engine (xfd_call_*).</summary>
    internal sealed unsafe class XfdCallHandle : XfdHandle
    {
        private protected override void FreeNative(void* native) => NativeMethods.xfd_call_free(native);

        private protected override void CancelNative(void* native) => NativeMethods.xfd_call_cancel(native);
    }
}
