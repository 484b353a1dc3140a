using System;

namespace XFlowDelivery.Native
{
    /// <summary>
    /// xfd_call_*: one JSON question, one JSON answer (history, status, preflight, release),
    /// answered on an engine thread so that it can be cancelled and abandoned like a run. Buffer
    /// ownership and status codes are handled here, like NativeRun does for runs.
    /// </summary>
    internal static unsafe class EngineCall
    {
        /// <summary>
        /// Starts a call. The engine copies the request (into memory it zeroes when the call ends),
        /// so a request holding the token can be zeroed as soon as this returns.
        /// </summary>
        internal static XfdCallHandle Start(byte* request, int length)
        {
            var handle = new XfdCallHandle();
            void* call = null;
            XfdBuffer error = default;
            int status = NativeMethods.xfd_call_start(request, (UIntPtr)(uint)length, &call, &error);
            try
            {
                if (status == NativeMethods.XFD_OK && call != null)
                {
                    handle.Attach(call);
                    return handle;
                }
                handle.Dispose();
                throw NativeRun.FailureFrom(status, error, "xfd_call_start");
            }
            finally
            {
                if (error.ptr != null) NativeMethods.xfd_buffer_free(error);
            }
        }

        /// <summary>
        /// Waits up to <paramref name="timeoutMs"/> for the answer: true with it, false when it has
        /// not come yet. An engine error (Cancelled among them) is an <see cref="XFlowDeliveryException"/>.
        /// </summary>
        internal static bool TryTake<T>(XfdCallHandle call, uint timeoutMs, EngineJson.Reader<T> read, out T? answer) where T : class
        {
            answer = null;
            bool added = false;
            XfdBuffer buffer = default;
            try
            {
                call.DangerousAddRef(ref added);
                int status = NativeMethods.xfd_call_next((void*)call.DangerousGetHandle(), timeoutMs, &buffer);
                switch (status)
                {
                    case NativeMethods.XFD_OK:
                        answer = read(buffer.ptr, (long)(ulong)buffer.len);
                        return true;
                    case NativeMethods.XFD_TIMEOUT:
                        return false;
                    default:
                        // XFD_FINISHED never comes first: the one answer is taken above.
                        throw NativeRun.FailureFrom(status, buffer, "xfd_call_next");
                }
            }
            finally
            {
                if (buffer.ptr != null) NativeMethods.xfd_buffer_free(buffer);
                if (added) call.DangerousRelease();
            }
        }
    }
}
