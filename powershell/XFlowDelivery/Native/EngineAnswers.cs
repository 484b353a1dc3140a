using System.Collections.Generic;
using System.Runtime.Serialization;

namespace XFlowDelivery.Native
{
    // The JSON answers of xfd_call (rust/xflow-engine/src/queries.rs, preflight.rs). Unknown members
    // are ignored, so the engine may add fields.

    [DataContract]
    internal sealed class RecordJson
    {
        [DataMember(Name = "id")] public string? Id { get; set; }
        [DataMember(Name = "system")] public string? System { get; set; }
        [DataMember(Name = "requestedName")] public string? RequestedName { get; set; }
        [DataMember(Name = "wantedName")] public string? WantedName { get; set; }
        [DataMember(Name = "fileName")] public string? FileName { get; set; }
        [DataMember(Name = "folder")] public string? Folder { get; set; }
        [DataMember(Name = "sha256")] public string? Sha256 { get; set; }
        [DataMember(Name = "size")] public long Size { get; set; }
        [DataMember(Name = "createdAt")] public string? CreatedAt { get; set; }
        [DataMember(Name = "state")] public string? State { get; set; }
        [DataMember(Name = "reason")] public string? Reason { get; set; }
        [DataMember(Name = "runId")] public string? RunId { get; set; }
        [DataMember(Name = "receivedAt")] public string? ReceivedAt { get; set; }
        [DataMember(Name = "publishedAt")] public string? PublishedAt { get; set; }
        [DataMember(Name = "acknowledgedAt")] public string? AcknowledgedAt { get; set; }
    }

    [DataContract]
    internal sealed class HistoryAnswer
    {
        [DataMember(Name = "deliveries")] public List<RecordJson>? Deliveries { get; set; }
    }

    [DataContract]
    internal sealed class RunRecordJson
    {
        [DataMember(Name = "runId")] public string? RunId { get; set; }
        [DataMember(Name = "startedAt")] public string? StartedAt { get; set; }
        [DataMember(Name = "finishedAt")] public string? FinishedAt { get; set; }
        [DataMember(Name = "outcome")] public string? Outcome { get; set; }
        [DataMember(Name = "delivered")] public long Delivered { get; set; }
        [DataMember(Name = "failed")] public long Failed { get; set; }
        [DataMember(Name = "skipped")] public long Skipped { get; set; }
        [DataMember(Name = "reacknowledged")] public long Reacknowledged { get; set; }
        [DataMember(Name = "durationMs")] public long? DurationMs { get; set; }
        [DataMember(Name = "errorId")] public string? ErrorId { get; set; }
        [DataMember(Name = "message")] public string? Message { get; set; }
        [DataMember(Name = "stalls")] public List<ImportStallJson>? Stalls { get; set; }
    }

    /// <summary>An import folder whose importer has stopped (events.rs ImportStall).</summary>
    [DataContract]
    internal sealed class ImportStallJson
    {
        [DataMember(Name = "system")] public string? System { get; set; }
        [DataMember(Name = "folder")] public string? Folder { get; set; }
        [DataMember(Name = "files")] public long Files { get; set; }
        [DataMember(Name = "oldestFile")] public string? OldestFile { get; set; }
        [DataMember(Name = "oldestPublishedAt")] public string? OldestPublishedAt { get; set; }
        [DataMember(Name = "oldestAgeMinutes")] public long OldestAgeMinutes { get; set; }
        [DataMember(Name = "thresholdMinutes")] public long ThresholdMinutes { get; set; }
    }

    [DataContract]
    internal sealed class StaleFileJson
    {
        [DataMember(Name = "system")] public string? System { get; set; }
        [DataMember(Name = "path")] public string? Path { get; set; }
        [DataMember(Name = "ageMinutes")] public long AgeMinutes { get; set; }
        [DataMember(Name = "size")] public long Size { get; set; }
    }

    [DataContract]
    internal sealed class StatusAnswer
    {
        [DataMember(Name = "lastRun")] public RunRecordJson? LastRun { get; set; }
        [DataMember(Name = "lastSuccessfulRun")] public RunRecordJson? LastSuccessfulRun { get; set; }
        [DataMember(Name = "awaitingAcknowledgement")] public long AwaitingAcknowledgement { get; set; }
        [DataMember(Name = "inProgress")] public long InProgress { get; set; }
        [DataMember(Name = "quarantined")] public List<RecordJson>? Quarantined { get; set; }
        [DataMember(Name = "staleFiles")] public List<StaleFileJson>? StaleFiles { get; set; }
        [DataMember(Name = "folderErrors")] public List<string>? FolderErrors { get; set; }
        [DataMember(Name = "stateFolderExposure")] public string? StateFolderExposure { get; set; }
    }

    [DataContract]
    internal sealed class CheckJson
    {
        [DataMember(Name = "check")] public string? Check { get; set; }
        [DataMember(Name = "target")] public string? Target { get; set; }
        [DataMember(Name = "status")] public string? Status { get; set; }
        [DataMember(Name = "detail")] public string? Detail { get; set; }
        [DataMember(Name = "remedy")] public string? Remedy { get; set; }
    }

    [DataContract]
    internal sealed class PreflightAnswer
    {
        [DataMember(Name = "checks")] public List<CheckJson>? Checks { get; set; }
    }
}
