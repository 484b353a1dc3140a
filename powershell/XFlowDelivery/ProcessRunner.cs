using System.Diagnostics;

namespace XFlowDelivery
{
    /// <summary>Runs an inbox OS tool (icacls, wevtutil, systemctl) and returns its exit code and output.</summary>
    internal static class ProcessRunner
    {
        internal static int Run(string fileName, string arguments, out string output)
        {
            var psi = new ProcessStartInfo(fileName, arguments)
            {
                UseShellExecute = false,
                CreateNoWindow = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using (var process = Process.Start(psi)!)
            {
                // stderr is read on another thread so neither pipe can fill up and block the tool.
                var error = process.StandardError.ReadToEndAsync();
                output = (process.StandardOutput.ReadToEnd() + error.Result).Trim();
                process.WaitForExit();
                return process.ExitCode;
            }
        }
    }
}
