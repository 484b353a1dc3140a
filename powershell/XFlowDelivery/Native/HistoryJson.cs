using System.Collections.Generic;

namespace XFlowDelivery.Native
{
    /// <summary>
    /// Reads the history answer, {"deliveries":[{…},…]}, straight from the engine's buffer.
    /// A day's 411 deliveries are 230 KB of JSON, which DataContractJsonSerializer read in 6 to
    /// 20 ms (its JSON-as-XML reader alone took 3.5 ms): most of Get-XFlowDeliveryHistory's time.
    /// Anything unreadable is UnreadableEngineOutput, as with the serializer.
    /// </summary>
    internal static unsafe class HistoryJson
    {
        /// <summary>What a cmdlet passes to read a history answer.</summary>
        internal static readonly EngineJson.Reader<HistoryAnswer> Reader = Read;

        /// <summary>Reads a whole answer.</summary>
        internal static HistoryAnswer Read(byte* json, long length)
            => JsonScanner.TryRead(json, length, ReadAnswer, out var problem)
               ?? throw EngineJson.Unreadable("an answer", length, problem);

        private static HistoryAnswer ReadAnswer(ref JsonScanner json)
        {
            var answer = new HistoryAnswer();
            json.Expect('{');
            for (bool first = true; json.NextMember(ref first) is string name;)
            {
                if (name != "deliveries")
                {
                    json.SkipValue();
                }
                else if (!json.TryNull())
                {
                    answer.Deliveries = new List<RecordJson>();
                    json.Expect('[');
                    for (bool firstRecord = true; json.NextElement(ref firstRecord);)
                    {
                        answer.Deliveries.Add(ReadRecord(ref json));
                    }
                }
            }
            return answer;
        }

        private static RecordJson ReadRecord(ref JsonScanner json)
        {
            var r = new RecordJson();
            json.Expect('{');
            for (bool first = true; json.NextMember(ref first) is string name;)
            {
                switch (name)
                {
                    case "id": r.Id = json.ReadText(); break;
                    case "system": r.System = json.ReadText(); break;
                    case "requestedName": r.RequestedName = json.ReadText(); break;
                    case "wantedName": r.WantedName = json.ReadText(); break;
                    case "fileName": r.FileName = json.ReadText(); break;
                    case "folder": r.Folder = json.ReadText(); break;
                    case "sha256": r.Sha256 = json.ReadText(); break;
                    case "size": r.Size = json.ReadInteger(); break;
                    case "createdAt": r.CreatedAt = json.ReadText(); break;
                    case "state": r.State = json.ReadText(); break;
                    case "reason": r.Reason = json.ReadText(); break;
                    case "runId": r.RunId = json.ReadText(); break;
                    case "receivedAt": r.ReceivedAt = json.ReadText(); break;
                    case "publishedAt": r.PublishedAt = json.ReadText(); break;
                    case "acknowledgedAt": r.AcknowledgedAt = json.ReadText(); break;
                    default: json.SkipValue(); break;
                }
            }
            return r;
        }
    }
}
