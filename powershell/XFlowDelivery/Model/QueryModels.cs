using System;
using System.Globalization;
using XFlowDelivery.Native;

namespace XFlowDelivery.Model
{
    /// <summary>One delivery as the journal knows it (Get-XFlowDeliveryHistory, quarantined deliveries in the status).</summary>
    public sealed class XFlowDeliveryRecord
    {
        public string Id { get; set; } = "";
        public string System { get; set; } = "";
        /// <summary>received, publishing, published, acknowledged or quarantined.</summary>
        public string State { get; set; } = "";
        /// <summary>The name XFlow asked for.</summary>
        public string RequestedName { get; set; } = "";
        /// <summary>The name it was published under (a collision name if the wanted one was taken).</summary>
        public string? FileName { get; set; }
        public string Folder { get; set; } = "";
        public string Sha256 { get; set; } = "";
        public long Size { get; set; }
        /// <summary>Why it was quarantined, if it was.</summary>
        public string? Reason { get; set; }
        public string RunId { get; set; } = "";
        public DateTimeOffset? CreatedAt { get; set; }
        public DateTimeOffset? ReceivedAt { get; set; }
        public DateTimeOffset? PublishedAt { get; set; }
        public DateTimeOffset? AcknowledgedAt { get; set; }

        internal static XFlowDeliveryRecord From(RecordJson r) => new XFlowDeliveryRecord
        {
            Id = r.Id ?? "",
            System = r.System ?? "",
            State = r.State ?? "",
            RequestedName = r.RequestedName ?? "",
            FileName = r.FileName,
            Folder = r.Folder ?? "",
            Sha256 = r.Sha256 ?? "",
            Size = r.Size,
            Reason = r.Reason,
            RunId = r.RunId ?? "",
            CreatedAt = Time.Parse(r.CreatedAt),
            ReceivedAt = Time.Parse(r.ReceivedAt),
            PublishedAt = Time.Parse(r.PublishedAt),
            AcknowledgedAt = Time.Parse(r.AcknowledgedAt),
        };
    }

    /// <summary>One finished run as recorded in the journal.</summary>
    public sealed class XFlowRunRecord
    {
        public string RunId { get; set; } = "";
        public string Outcome { get; set; } = "";
        public DateTimeOffset? StartedAt { get; set; }
        public DateTimeOffset? FinishedAt { get; set; }
        public TimeSpan Duration { get; set; }
        public long Delivered { get; set; }
        public long Failed { get; set; }
        public long Skipped { get; set; }
        public long Reacknowledged { get; set; }
        public string? ErrorId { get; set; }
        public string? Message { get; set; }
        /// <summary>Import folders whose importer had stopped, as this run found them.</summary>
        public XFlowImportStall[] Stalls { get; set; } = new XFlowImportStall[0];
        /// <summary>The exit code the task entry script returned (or would have) for this run.</summary>
        public int ExitCode => ExitCodes.FromOutcome(Outcome, ErrorId);

        internal static XFlowRunRecord? From(RunRecordJson? r) => r == null ? null : new XFlowRunRecord
        {
            RunId = r.RunId ?? "",
            Outcome = r.Outcome ?? "",
            StartedAt = Time.Parse(r.StartedAt),
            FinishedAt = Time.Parse(r.FinishedAt),
            Duration = TimeSpan.FromMilliseconds(r.DurationMs ?? 0),
            Delivered = r.Delivered,
            Failed = r.Failed,
            Skipped = r.Skipped,
            Reacknowledged = r.Reacknowledged,
            ErrorId = r.ErrorId,
            Message = r.Message,
            Stalls = XFlowImportStall.From(r.Stalls),
        };
    }

    /// <summary>
    /// An import folder whose importer has stopped: files this module published are still there
    /// past the configured threshold (-SdLoenStallAfterMinutes / -PrismeStallAfterMinutes).
    /// </summary>
    public sealed class XFlowImportStall
    {
        public string System { get; set; } = "";
        public string Folder { get; set; } = "";
        /// <summary>How many of the files this module published are still there past the threshold.</summary>
        public long Files { get; set; }
        public string OldestFile { get; set; } = "";
        public DateTimeOffset? OldestPublishedAt { get; set; }
        public long OldestAgeMinutes { get; set; }
        public long ThresholdMinutes { get; set; }

        public override string ToString() => string.Format(CultureInfo.InvariantCulture,
            "{0} import folder {1}: {2} file(s) not picked up after {3} min; oldest {4} ({5} min)",
            System, Folder, Files, ThresholdMinutes, OldestFile, OldestAgeMinutes);

        internal static XFlowImportStall[] From(System.Collections.Generic.List<ImportStallJson>? stalls)
        {
            if (stalls == null) return new XFlowImportStall[0];
            var result = new XFlowImportStall[stalls.Count];
            for (int i = 0; i < stalls.Count; i++)
            {
                var s = stalls[i];
                result[i] = new XFlowImportStall
                {
                    System = s.System ?? "",
                    Folder = s.Folder ?? "",
                    Files = s.Files,
                    OldestFile = s.OldestFile ?? "",
                    OldestPublishedAt = Time.Parse(s.OldestPublishedAt),
                    OldestAgeMinutes = s.OldestAgeMinutes,
                    ThresholdMinutes = s.ThresholdMinutes,
                };
            }
            return result;
        }
    }

    /// <summary>A delivered file still lying in an import folder after the threshold: the importer has stopped.</summary>
    public sealed class XFlowStaleFile
    {
        public string System { get; set; } = "";
        public string Path { get; set; } = "";
        public long AgeMinutes { get; set; }
        public long Size { get; set; }
    }

    /// <summary>Get-XFlowDeliveryStatus: what a monitor or an administrator needs to know at a glance.</summary>
    public sealed class XFlowDeliveryStatus
    {
        public string StatePath { get; set; } = "";
        /// <summary>The installation's configuration file (listing every installation, or with -ConfigPath).</summary>
        public string? ConfigPath { get; set; }
        /// <summary>The installation's scheduled task, when Register-XFlowDeliveryTask recorded one.</summary>
        public string? TaskName { get; set; }
        public XFlowRunRecord? LastRun { get; set; }
        public XFlowRunRecord? LastSuccessfulRun { get; set; }
        /// <summary>Minutes since the last successful run finished (null: never).</summary>
        public double? MinutesSinceLastSuccess { get; set; }
        /// <summary>Published but not yet acknowledged: re-acknowledged by the next run.</summary>
        public long AwaitingAcknowledgement { get; set; }
        /// <summary>Received or being published (finished by the next run's recovery).</summary>
        public long InProgress { get; set; }
        public XFlowDeliveryRecord[] Quarantined { get; set; } = new XFlowDeliveryRecord[0];
        public XFlowStaleFile[] StaleFiles { get; set; } = new XFlowStaleFile[0];
        public string[] FolderErrors { get; set; } = new string[0];
        /// <summary>Import folders whose importer had stopped at the last run (exit code 7).</summary>
        public XFlowImportStall[] ImportStalls { get; set; } = new XFlowImportStall[0];
        /// <summary>Null when only the state folder's owner can read it; otherwise who else can (it holds personal data).</summary>
        public string? StateFolderExposure { get; set; }
        /// <summary>True when the last run needed nobody's attention and nothing is quarantined, stale, unreadable or readable by others.</summary>
        public bool Healthy { get; set; }
    }

    /// <summary>One row of Test-XFlowDeliveryConnection.</summary>
    public sealed class XFlowConnectionCheck
    {
        public string Check { get; set; } = "";
        public string Target { get; set; } = "";
        /// <summary>Passed, Failed or Skipped.</summary>
        public string Status { get; set; } = "";
        public string Detail { get; set; } = "";
        public string? Remedy { get; set; }
    }

    internal static class Time
    {
        internal static DateTimeOffset? Parse(string? value)
        {
            if (string.IsNullOrEmpty(value)) return null;
            return ParseEngineTime(value!)
                ?? (DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed)
                    ? parsed
                    : (DateTimeOffset?)null);
        }

        /// <summary>
        /// The engine's own times (yyyy-MM-ddTHH:mm:ss.fffZ) read digit by digit; null for any other
        /// form. DateTimeOffset.TryParse costs a fresh process about 10 ms on its first call (it
        /// builds the culture's parsing tables), and every scheduled run reads one such time.
        /// </summary>
        private static DateTimeOffset? ParseEngineTime(string s)
        {
            if (s.Length != 24 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != '.' || s[23] != 'Z')
            {
                return null;
            }
            int year = Digits(s, 0, 4), month = Digits(s, 5, 2), day = Digits(s, 8, 2);
            int hour = Digits(s, 11, 2), minute = Digits(s, 14, 2), second = Digits(s, 17, 2), millisecond = Digits(s, 20, 3);
            if (year < 1 || month < 1 || month > 12 || day < 1 || day > DateTime.DaysInMonth(year, month) ||
                hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59 || millisecond < 0)
            {
                return null;
            }
            return new DateTimeOffset(year, month, day, hour, minute, second, millisecond, TimeSpan.Zero);
        }

        /// <summary>The decimal number in s[start..start+count), or -1 if a character is not a digit.</summary>
        private static int Digits(string s, int start, int count)
        {
            int value = 0;
            for (int i = start; i < start + count; i++)
            {
                if (s[i] < '0' || s[i] > '9') return -1;
                value = value * 10 + (s[i] - '0');
            }
            return value;
        }

        /// <summary>RFC 3339 in UTC; an unspecified DateTime is taken as local time.</summary>
        internal static string ToRfc3339(DateTime value)
        {
            var utc = value.Kind == DateTimeKind.Unspecified
                ? DateTime.SpecifyKind(value, DateTimeKind.Local).ToUniversalTime()
                : value.ToUniversalTime();
            return utc.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
        }
    }
}
