using System;
using System.Collections.Generic;
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
        /// <summary>ErrorId of JSON from the engine that cannot be read (the engine sends ASCII-only JSON, so this means a defect).</summary>
        internal const string UnreadableId = "UnreadableEngineOutput";

        /// <summary>Reads an event: on every run, so with <see cref="JsonScanner"/>, not the serializer.</summary>
        internal static unsafe EngineEvent ReadEvent(byte* ptr, long len)
            => JsonScanner.TryRead(ptr, len, ReadEvent, out var problem) ?? throw Unreadable("an event", len, problem);

        internal static unsafe EngineError ReadError(byte* ptr, long len)
            => JsonScanner.TryRead(ptr, len, ReadError, out var problem) ?? throw Unreadable("an error", len, problem);

        private static EngineEvent ReadEvent(ref JsonScanner json)
        {
            var e = new EngineEvent();
            json.Expect('{');
            for (bool first = true; json.NextMember(ref first) is string name;)
            {
                switch (name)
                {
                    case "kind": e.Kind = json.ReadText(); break;
                    case "message": e.Message = json.ReadText(); break;
                    case "activity": e.Activity = json.ReadText(); break;
                    case "status": e.Status = json.ReadText(); break;
                    case "current": e.Current = json.ReadNullableInteger(); break;
                    case "total": e.Total = json.ReadNullableInteger(); break;
                    case "id": e.Id = json.ReadText(); break;
                    case "system": e.System = json.ReadText(); break;
                    case "fileName": e.FileName = json.ReadText(); break;
                    case "path": e.Path = json.ReadText(); break;
                    case "sha256": e.Sha256 = json.ReadText(); break;
                    case "size": e.Size = json.ReadNullableInteger(); break;
                    case "createdAt": e.CreatedAt = json.ReadText(); break;
                    case "errorId": e.ErrorId = json.ReadText(); break;
                    case "category": e.Category = json.ReadText(); break;
                    case "target": e.Target = json.ReadText(); break;
                    case "runId": e.RunId = json.ReadText(); break;
                    case "outcome": e.Outcome = json.ReadText(); break;
                    case "delivered": e.Delivered = json.ReadNullableInteger(); break;
                    case "failed": e.Failed = json.ReadNullableInteger(); break;
                    case "skipped": e.Skipped = json.ReadNullableInteger(); break;
                    case "reacknowledged": e.Reacknowledged = json.ReadNullableInteger(); break;
                    case "pages": e.Pages = json.ReadNullableInteger(); break;
                    case "startedAt": e.StartedAt = json.ReadText(); break;
                    case "durationMs": e.DurationMs = json.ReadNullableInteger(); break;
                    case "error": e.Error = json.TryNull() ? null : ReadError(ref json); break;
                    case "stalls":
                        if (json.TryNull())
                        {
                            e.Stalls = null;
                            break;
                        }
                        e.Stalls = new List<ImportStallJson>();
                        json.Expect('[');
                        for (bool firstStall = true; json.NextElement(ref firstStall);) e.Stalls.Add(ReadStall(ref json));
                        break;
                    default: json.SkipValue(); break;
                }
            }
            return e;
        }

        private static EngineError ReadError(ref JsonScanner json)
        {
            var e = new EngineError();
            json.Expect('{');
            for (bool first = true; json.NextMember(ref first) is string name;)
            {
                switch (name)
                {
                    case "errorId": e.ErrorId = json.ReadText(); break;
                    case "category": e.Category = json.ReadText(); break;
                    case "message": e.Message = json.ReadText(); break;
                    case "target": e.Target = json.ReadText(); break;
                    default: json.SkipValue(); break;
                }
            }
            return e;
        }

        private static ImportStallJson ReadStall(ref JsonScanner json)
        {
            var s = new ImportStallJson();
            json.Expect('{');
            for (bool first = true; json.NextMember(ref first) is string name;)
            {
                switch (name)
                {
                    case "system": s.System = json.ReadText(); break;
                    case "folder": s.Folder = json.ReadText(); break;
                    case "files": s.Files = json.ReadInteger(); break;
                    case "oldestFile": s.OldestFile = json.ReadText(); break;
                    case "oldestPublishedAt": s.OldestPublishedAt = json.ReadText(); break;
                    case "oldestAgeMinutes": s.OldestAgeMinutes = json.ReadInteger(); break;
                    case "thresholdMinutes": s.ThresholdMinutes = json.ReadInteger(); break;
                    default: json.SkipValue(); break;
                }
            }
            return s;
        }

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
