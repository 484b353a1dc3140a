using System;
using System.Collections.Generic;
using System.Text;

namespace XFlowDelivery.Native
{
    /// <summary>
    /// Reads the history answer, {"deliveries":[{…},…]}, straight from the engine's buffer.
    /// A day's 411 deliveries are 230 KB of JSON, which DataContractJsonSerializer read in 6 to
    /// 20 ms (its JSON-as-XML reader alone took 3.5 ms): most of Get-XFlowDeliveryHistory's time.
    /// This reads any JSON text (members in any order, unknown members of any shape skipped, every
    /// escape) and refuses anything else as UnreadableEngineOutput, like the serializer.
    /// </summary>
    internal unsafe struct HistoryJson
    {
        private readonly byte* _json;
        private readonly long _length;
        private long _at;

        private HistoryJson(byte* json, long length)
        {
            _json = json;
            _length = length;
            _at = 0;
        }

        /// <summary>What a cmdlet passes to read a history answer.</summary>
        internal static readonly EngineJson.Reader<HistoryAnswer> Reader = Read;

        /// <summary>Reads a whole answer.</summary>
        internal static HistoryAnswer Read(byte* json, long length)
        {
            string problem;
            if (json == null || length <= 0)
            {
                problem = "an empty buffer";
            }
            else
            {
                try
                {
                    var reader = new HistoryJson(json, length);
                    var answer = reader.ReadAnswer();
                    reader.SkipWhitespace();
                    if (reader._at == length) return answer;
                    problem = $"text after the JSON value at byte {reader._at}";
                }
                catch (Exception ex) when (ex is FormatException || ex is OverflowException)
                {
                    problem = ex.Message;
                }
            }
            throw EngineJson.Unreadable("an answer", length, problem);
        }

        private HistoryAnswer ReadAnswer()
        {
            var answer = new HistoryAnswer();
            Expect('{');
            for (bool first = true; NextMember(ref first) is string name;)
            {
                if (name != "deliveries")
                {
                    SkipValue();
                }
                else if (!TryNull())
                {
                    answer.Deliveries = new List<RecordJson>();
                    Expect('[');
                    for (bool firstRecord = true; NextElement(ref firstRecord);)
                    {
                        answer.Deliveries.Add(ReadRecord());
                    }
                }
            }
            return answer;
        }

        private RecordJson ReadRecord()
        {
            var r = new RecordJson();
            Expect('{');
            for (bool first = true; NextMember(ref first) is string name;)
            {
                switch (name)
                {
                    case "id": r.Id = ReadText(); break;
                    case "system": r.System = ReadText(); break;
                    case "requestedName": r.RequestedName = ReadText(); break;
                    case "wantedName": r.WantedName = ReadText(); break;
                    case "fileName": r.FileName = ReadText(); break;
                    case "folder": r.Folder = ReadText(); break;
                    case "sha256": r.Sha256 = ReadText(); break;
                    case "size": r.Size = ReadInteger(); break;
                    case "createdAt": r.CreatedAt = ReadText(); break;
                    case "state": r.State = ReadText(); break;
                    case "reason": r.Reason = ReadText(); break;
                    case "runId": r.RunId = ReadText(); break;
                    case "receivedAt": r.ReceivedAt = ReadText(); break;
                    case "publishedAt": r.PublishedAt = ReadText(); break;
                    case "acknowledgedAt": r.AcknowledgedAt = ReadText(); break;
                    default: SkipValue(); break;
                }
            }
            return r;
        }

        /// <summary>After '{' or a member's value: the next member's name (its ':' read), or null once the '}' is read.</summary>
        private string? NextMember(ref bool first)
        {
            if (!NextElement(ref first, '}')) return null;
            var name = ReadString();
            Expect(':');
            return name;
        }

        /// <summary>After '[' or an element: true at the next element, false once the closing bracket is read.</summary>
        private bool NextElement(ref bool first, char close = ']')
        {
            SkipWhitespace();
            if (Peek() == close)
            {
                _at++;
                return false;
            }
            if (!first) Expect(',');
            first = false;
            return true;
        }

        /// <summary>A string, or null for JSON null.</summary>
        private string? ReadText() => TryNull() ? null : ReadString();

        private string ReadString()
        {
            Expect('"');
            var start = _at;
            while (_at < _length && _json[_at] != '"' && _json[_at] != '\\' && _json[_at] >= 0x20) _at++;
            if (_at < _length && _json[_at] == '"')
            {
                _at++;
                return Encoding.UTF8.GetString(_json + start, checked((int)(_at - 1 - start)));
            }
            var text = new StringBuilder();
            text.Append(Encoding.UTF8.GetString(_json + start, checked((int)(_at - start))));
            while (true)
            {
                if (_at >= _length) throw Problem("an unterminated string");
                var c = _json[_at++];
                if (c == '"') return text.ToString();
                if (c < 0x20) throw Problem("a control character in a string");
                if (c != '\\')
                {
                    var run = _at - 1;
                    while (_at < _length && _json[_at] != '"' && _json[_at] != '\\' && _json[_at] >= 0x20) _at++;
                    text.Append(Encoding.UTF8.GetString(_json + run, checked((int)(_at - run))));
                    continue;
                }
                if (_at >= _length) throw Problem("an unterminated string");
                switch ((char)_json[_at++])
                {
                    case '"': text.Append('"'); break;
                    case '\\': text.Append('\\'); break;
                    case '/': text.Append('/'); break;
                    case 'b': text.Append('\b'); break;
                    case 'f': text.Append('\f'); break;
                    case 'n': text.Append('\n'); break;
                    case 'r': text.Append('\r'); break;
                    case 't': text.Append('\t'); break;
                    case 'u': text.Append(ReadHexUnit()); break;
                    default: throw Problem("an unknown escape");
                }
            }
        }

        /// <summary>The four hex digits of a \u escape: one UTF-16 unit (a pair's halves come as two escapes).</summary>
        private char ReadHexUnit()
        {
            if (_at + 4 > _length) throw Problem("a cut-short \\u escape");
            int unit = 0;
            for (int i = 0; i < 4; i++)
            {
                int c = _json[_at++];
                int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
                if (digit < 0) throw Problem("a \\u escape that is not hexadecimal");
                unit = unit * 16 + digit;
            }
            return (char)unit;
        }

        private long ReadInteger()
        {
            SkipWhitespace();
            bool negative = Peek() == '-';
            if (negative) _at++;
            var start = _at;
            long value = 0;
            while (_at < _length && _json[_at] >= '0' && _json[_at] <= '9')
            {
                value = checked(value * 10 + (_json[_at++] - '0'));
            }
            if (_at == start || (_at < _length && (_json[_at] == '.' || _json[_at] == 'e' || _json[_at] == 'E')))
            {
                throw Problem("a number that is not an integer");
            }
            return negative ? -value : value;
        }

        /// <summary>Skips one value of any kind (a member this module does not read).</summary>
        private void SkipValue()
        {
            SkipWhitespace();
            switch (Peek())
            {
                case '"': ReadString(); return;
                case '{':
                    _at++;
                    for (bool first = true; NextMember(ref first) != null;) SkipValue();
                    return;
                case '[':
                    _at++;
                    for (bool first = true; NextElement(ref first);) SkipValue();
                    return;
                case 't': Literal("true"); return;
                case 'f': Literal("false"); return;
                case 'n': Literal("null"); return;
                default:
                    var start = _at;
                    while (_at < _length && "+-.0123456789eE".IndexOf((char)_json[_at]) >= 0) _at++;
                    if (_at == start) throw Problem("an unexpected character");
                    return;
            }
        }

        private bool TryNull()
        {
            SkipWhitespace();
            if (Peek() != 'n') return false;
            Literal("null");
            return true;
        }

        private void Literal(string word)
        {
            foreach (var c in word)
            {
                if (_at >= _length || _json[_at] != c) throw Problem($"an unexpected character (not {word})");
                _at++;
            }
        }

        private void Expect(char c)
        {
            SkipWhitespace();
            if (Peek() != c) throw Problem($"'{c}' expected");
            _at++;
        }

        private char Peek() => _at < _length ? (char)_json[_at] : '\0';

        private void SkipWhitespace()
        {
            while (_at < _length && (_json[_at] == ' ' || _json[_at] == '\t' || _json[_at] == '\n' || _json[_at] == '\r')) _at++;
        }

        private FormatException Problem(string what) => new FormatException($"{what} at byte {_at}");
    }
}
