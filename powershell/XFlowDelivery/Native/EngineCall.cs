using System.IO;
using System.Runtime.Serialization.Json;
using System.Text;

namespace XFlowDelivery.Native
{
    /// <summary>
    /// xfd_call: one JSON question, one JSON answer (history, status, preflight, release). Buffer
    /// ownership and status codes are handled here, like NativeRun does for runs.
    /// </summary>
    internal static unsafe class EngineCall
    {
        /// <summary>Sends a request without secrets (built as a managed string).</summary>
        internal static T Invoke<T>(string requestJson) where T : class
        {
            var bytes = Encoding.UTF8.GetBytes(requestJson);
            fixed (byte* ptr = bytes)
            {
                return Invoke<T>(ptr, bytes.Length);
            }
        }

        /// <summary>Sends a request that holds the token (unmanaged, zeroed by the caller).</summary>
        internal static T Invoke<T>(RunConfigJson request) where T : class => Invoke<T>(request.Pointer, request.Length);

        private static T Invoke<T>(byte* request, int length) where T : class
        {
            XfdBuffer answer = default;
            try
            {
                int status = NativeMethods.xfd_call(request, (System.UIntPtr)(uint)length, &answer);
                if (status != NativeMethods.XFD_OK)
                {
                    throw NativeRun.FailureFrom(status, answer, "xfd_call");
                }
                var serializer = new DataContractJsonSerializer(typeof(T));
                using (var stream = new UnmanagedMemoryStream(answer.ptr, (long)(ulong)answer.len))
                {
                    return (T)serializer.ReadObject(stream)
                        ?? throw new InvalidDataException("the native engine answered JSON null");
                }
            }
            finally
            {
                if (answer.ptr != null) NativeMethods.xfd_buffer_free(answer);
            }
        }
    }
}
