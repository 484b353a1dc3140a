using System;

namespace XFlowDelivery.Native
{
    /// <summary>Status codes of the C ABI (version 1).</summary>
    internal enum XfdStatus
    {
        Ok = 0,
        Timeout = 1,
        Finished = 2,
        Error = -1,
        Panic = -2,
        BadArgument = -3,
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
            int status = NativeMethods.xfd_run_start(config.Pointer, (nuint)config.Length, &run, &error);
            try
            {
                if (status == (int)XfdStatus.Ok && run != null)
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
                    case (int)XfdStatus.Ok:
                        engineEvent = EngineJson.ReadEvent(buffer.ptr, (long)buffer.len);
                        return XfdStatus.Ok;
                    case (int)XfdStatus.Timeout:
                        return XfdStatus.Timeout;
                    case (int)XfdStatus.Finished:
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

        private static XFlowDeliveryException FailureFrom(int status, XfdBuffer buffer, string function)
        {
            EngineError? error = null;
            if (buffer.ptr != null && buffer.len != 0)
            {
                try
                {
                    error = EngineJson.ReadError(buffer.ptr, (long)buffer.len);
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
                    (int)XfdStatus.Panic => "the native engine panicked",
                    (int)XfdStatus.BadArgument => "the native engine rejected an argument (bad argument)",
                    (int)XfdStatus.Ok => "the native engine returned no run handle",
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
