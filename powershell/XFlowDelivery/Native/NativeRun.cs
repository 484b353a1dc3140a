using System;

namespace XFlowDelivery.Native
{
    /// <summary>What xfd_run_next_event reported (the failure codes become exceptions).</summary>
    internal enum XfdStatus
    {
        Ok,
        Timeout,
        Finished,
    }

    /// <summary>
    /// The only code that calls NativeMethods for runs: buffer ownership (every XfdBuffer the engine
    /// fills is freed exactly once with xfd_buffer_free), status codes → results or exceptions.
    /// If the generated bindings change shape, this is the file to adapt.
    /// </summary>
    internal static unsafe class NativeRun
    {
        internal static XfdRunHandle Start(RunConfigJson config)
        {
            var handle = new XfdRunHandle();
            void* run = null;
            XfdBuffer error = default;
            int status = NativeMethods.xfd_run_start(config.Pointer, (UIntPtr)(uint)config.Length, &run, &error);
            try
            {
                if (status == NativeMethods.XFD_OK && run != null)
                {
                    handle.Attach(run);
                    return handle;
                }
                handle.Dispose();
                throw FailureFrom(status, error, "xfd_run_start");
            }
            finally
            {
                Free(error);
            }
        }

        /// <summary>
        /// Waits up to <paramref name="timeoutMs"/> for the next event. Returns Ok with an event,
        /// Timeout or Finished with null; throws <see cref="XFlowDeliveryException"/> on an engine failure.
        /// </summary>
        internal static XfdStatus NextEvent(XfdRunHandle handle, uint timeoutMs, out EngineEvent? engineEvent)
        {
            engineEvent = null;
            bool added = false;
            XfdBuffer buffer = default;
            try
            {
                handle.DangerousAddRef(ref added);
                int status = NativeMethods.xfd_run_next_event((void*)handle.DangerousGetHandle(), timeoutMs, &buffer);
                switch (status)
                {
                    case NativeMethods.XFD_OK:
                        engineEvent = EngineJson.ReadEvent(buffer.ptr, (long)(ulong)buffer.len);
                        return XfdStatus.Ok;
                    case NativeMethods.XFD_TIMEOUT:
                        return XfdStatus.Timeout;
                    case NativeMethods.XFD_FINISHED:
                        return XfdStatus.Finished;
                    default:
                        throw FailureFrom(status, buffer, "xfd_run_next_event");
                }
            }
            finally
            {
                Free(buffer);
                if (added) handle.DangerousRelease();
            }
        }

        internal static XFlowDeliveryException FailureFrom(int status, XfdBuffer buffer, string function)
        {
            EngineError? error = null;
            if (buffer.ptr != null && (ulong)buffer.len != 0)
            {
                try
                {
                    error = EngineJson.ReadError(buffer.ptr, (long)(ulong)buffer.len);
                }
                catch (Exception)
                {
                    error = null;
                }
            }
            if (error == null || string.IsNullOrEmpty(error.ErrorId))
            {
                string what = status switch
                {
                    NativeMethods.XFD_PANIC => "the native engine panicked",
                    NativeMethods.XFD_BAD_ARGUMENT => "the native engine rejected an argument (bad argument)",
                    NativeMethods.XFD_OK => "the native engine returned no run handle",
                    _ => $"the native engine failed with status {status}",
                };
                error = new EngineError
                {
                    ErrorId = "Internal",
                    Category = "NotSpecified",
                    Message = $"{what} in {function}",
                };
            }
            return new XFlowDeliveryException(error);
        }

        private static void Free(XfdBuffer buffer)
        {
            if (buffer.ptr != null) NativeMethods.xfd_buffer_free(buffer);
        }
    }
}
