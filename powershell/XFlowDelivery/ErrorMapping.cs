using System;
using System.Management.Automation;
using XFlowDelivery.Native;

namespace XFlowDelivery
{
    /// <summary>
    /// The ONE place where engine errors become PowerShell ErrorRecords.
    /// ErrorId = the engine's stable errorId (PowerShell appends ",&lt;cmdlet type&gt;" to form the
    /// FullyQualifiedErrorId, e.g. "ServerUnreachable,XFlowDelivery.Cmdlets.InvokeXFlowDeliveryCommand").
    /// Category = the engine's ErrorCategory name, parsed; unknown names fall back to NotSpecified.
    /// TargetObject = the engine's target (URL, folder or delivery id), when it gave one.
    /// </summary>
    internal static class ErrorMapping
    {
        internal static ErrorRecord ToErrorRecord(EngineError error) => ToErrorRecord(new XFlowDeliveryException(error));

        internal static ErrorRecord ToErrorRecord(XFlowDeliveryException exception)
        {
            var record = new ErrorRecord(exception, SafeErrorId(exception.ErrorId), ParseCategory(exception.Category), exception.Target);
            return record;
        }

        /// <summary>An error detected by the cmdlet itself (parameter validation), same shape.</summary>
        internal static ErrorRecord FromCmdlet(string errorId, ErrorCategory category, string message, object? target)
        {
            var exception = new XFlowDeliveryException(errorId, category.ToString(), message, target?.ToString());
            return new ErrorRecord(exception, errorId, category, target);
        }

        /// <summary>The native library is missing or has the wrong ABI version.</summary>
        internal static ErrorRecord FromLoadFailure(XFlowDeliveryLoadException exception)
        {
            return new ErrorRecord(exception, "NativeEngineUnavailable", ErrorCategory.ResourceUnavailable, NativeLibraryLoader.ExpectedPath);
        }

        internal static ErrorCategory ParseCategory(string? name)
        {
            if (!string.IsNullOrEmpty(name)
                && Enum.TryParse(name, ignoreCase: false, out ErrorCategory category)
                && Enum.IsDefined(typeof(ErrorCategory), category))
            {
                return category;
            }
            return ErrorCategory.NotSpecified;
        }

        private static string SafeErrorId(string? errorId)
        {
            if (string.IsNullOrEmpty(errorId)) return "Internal";
            // The FullyQualifiedErrorId uses ',' as separator; keep the id a single token.
            return errorId!.Replace(",", "_");
        }
    }
}
