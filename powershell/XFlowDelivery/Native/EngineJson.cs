using System;
using System.IO;
using System.Runtime.Serialization;
using System.Runtime.Serialization.Json;
using System.Text;

namespace XFlowDelivery.Native
{
    /// <summary>
    /// The engine's error JSON: {"errorId","category","message","target"}. Shared by the error
    /// buffers of xfd_run_start / xfd_run_next_event, by "error" events and by summary.error.
    /// </summary>
    [DataContract]
    internal sealed class EngineError
    {
        [DataMember(Name = "errorId")] public string? ErrorId { get; set; }
        [DataMember(Name = "category")] public string? Category { get; set; }
        [DataMember(Name = "message")] public string? Message { get; set; }
        [DataMember(Name = "target")] public string? Target { get; set; }
    }

    /// <summary>
    /// One event from xfd_run_next_event. All kinds share one contract; "kind" says which fields
    /// are set. Unknown members are ignored, so the engine may add fields without breaking us.
    /// </summary>
    [DataContract]
    internal sealed class EngineEvent
    {
        [DataMember(Name = "kind")] public string? Kind { get; set; }

        // verbose, warning, error
        [DataMember(Name = "message")] public string? Message { get; set; }

        // progress
        [DataMember(Name = "activity")] public string? Activity { get; set; }
        [DataMember(Name = "status")] public string? Status { get; set; }
        [DataMember(Name = "current")] public long? Current { get; set; }
        [DataMember(Name = "total")] public long? Total { get; set; }

        // delivered
        [DataMember(Name = "id")] public string? Id { get; set; }
        [DataMember(Name = "system")] public string? System { get; set; }
        [DataMember(Name = "fileName")] public string? FileName { get; set; }
        [DataMember(Name = "path")] public string? Path { get; set; }
        [DataMember(Name = "sha256")] public string? Sha256 { get; set; }
        [DataMember(Name = "size")] public long? Size { get; set; }
        [DataMember(Name = "createdAt")] public string? CreatedAt { get; set; }

        // error
        [DataMember(Name = "errorId")] public string? ErrorId { get; set; }
        [DataMember(Name = "category")] public string? Category { get; set; }
        [DataMember(Name = "target")] public string? Target { get; set; }

        // summary
        [DataMember(Name = "runId")] public string? RunId { get; set; }
        [DataMember(Name = "outcome")] public string? Outcome { get; set; }
        [DataMember(Name = "delivered")] public long? Delivered { get; set; }
        [DataMember(Name = "failed")] public long? Failed { get; set; }
        [DataMember(Name = "skipped")] public long? Skipped { get; set; }
        [DataMember(Name = "reacknowledged")] public long? Reacknowledged { get; set; }
        [DataMember(Name = "pages")] public long? Pages { get; set; }
        [DataMember(Name = "startedAt")] public string? StartedAt { get; set; }
        [DataMember(Name = "durationMs")] public long? DurationMs { get; set; }
        [DataMember(Name = "error")] public EngineError? Error { get; set; }
        [DataMember(Name = "stalls")] public System.Collections.Generic.List<ImportStallJson>? Stalls { get; set; }

        internal EngineError AsError() => new EngineError
        {
            ErrorId = ErrorId,
            Category = Category,
            Message = Message,
            Target = Target,
        };
    }

    internal static class EngineJson
    {
        private static readonly DataContractJsonSerializer EventSerializer = new DataContractJsonSerializer(typeof(EngineEvent));
        private static readonly DataContractJsonSerializer ErrorSerializer = new DataContractJsonSerializer(typeof(EngineError));

        /// <summary>ErrorId of JSON from the engine that cannot be read (the engine sends ASCII-only JSON, so this means a defect).</summary>
        internal const string UnreadableId = "UnreadableEngineOutput";

        internal static unsafe EngineEvent ReadEvent(byte* ptr, long len) => Read<EngineEvent>(EventSerializer, ptr, len, "an event");

        internal static unsafe EngineError ReadError(byte* ptr, long len) => Read<EngineError>(ErrorSerializer, ptr, len, "an error");

        /// <summary>
        /// Reads JSON straight from the Rust-owned buffer (freed by the caller afterwards). Anything
        /// unreadable becomes an <see cref="XFlowDeliveryException"/> with ErrorId
        /// UnreadableEngineOutput, never an unnamed SerializationException.
        /// </summary>
        internal static unsafe T Read<T>(DataContractJsonSerializer serializer, byte* ptr, long len, string what) where T : class
        {
            string problem;
            if (ptr == null || len <= 0)
            {
                problem = "an empty buffer";
            }
            else
            {
                try
                {
                    using (var stream = new UnmanagedMemoryStream(ptr, len))
                    {
                        if (serializer.ReadObject(stream) is T result) return result;
                        problem = "JSON null";
                    }
                }
                catch (Exception ex) when (ex is SerializationException || ex is System.Xml.XmlException
                                           || ex is InvalidCastException || ex is ArgumentException || ex is IOException)
                {
                    problem = ex.Message;
                }
            }
            throw Unreadable(what, len, problem);
        }

        /// <summary>Reads an answer of type T from the Rust-owned buffer.</summary>
        internal unsafe delegate T Reader<T>(byte* ptr, long len);

        /// <summary>Reads an answer with DataContractJsonSerializer (every answer but the history's).</summary>
        internal static unsafe T ReadAnswer<T>(byte* ptr, long len) where T : class
            => Read<T>(new DataContractJsonSerializer(typeof(T)), ptr, len, "an answer");

        internal static XFlowDeliveryException Unreadable(string what, long len, string problem)
            => new XFlowDeliveryException(UnreadableId, "InvalidData",
                $"The native engine sent {what} this module cannot read ({len} bytes): {problem}", null);

        /// <summary>Appends a JSON string literal (with quotes) for a managed string.</summary>
        internal static void AppendString(StringBuilder sb, string? value)
        {
            if (value == null)
            {
                sb.Append("null");
                return;
            }
            sb.Append('"');
            foreach (var c in value)
            {
                switch (c)
                {
                    case '"': sb.Append("\\\""); break;
                    case '\\': sb.Append("\\\\"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    default:
                        if (c < 0x20 || c == '\u2028' || c == '\u2029')
                        {
                            sb.Append("\\u").Append(((int)c).ToString("x4"));
                        }
                        else
                        {
                            sb.Append(c);
                        }
                        break;
                }
            }
            sb.Append('"');
        }
    }
}
