<#
.SYNOPSIS
    One Invoke-XFlowDelivery run in its own pwsh process, for the kill -9 harness
    (build/Stress.ps1) and the overlapping-runs test (tests/Reliability.Tests.ps1).

.DESCRIPTION
    The API token comes from the environment variable named by -TokenVariable, never from the
    command line (process arguments are visible to every user). Prints exactly two marker lines
    on stdout:
      XFLOW-RUN-START                   after the module is imported, right before the run
                                        (the harness times its kill from here, not from process
                                        start, so kills land inside the run, not in pwsh start-up);
                                        with -StartGate the run then waits until that file exists,
                                        so that several children can be started together
      XFLOW-RUN-RESULT {json}           after the run: delivered files (id, path, sha256),
                                        non-terminating errors (errorId, target), warnings, and
                                        the terminating error's ErrorId (or null)
    Exit code: 0 when the run ended without a terminating error, 1 otherwise.
#>
param(
    # The built module folder (out/XFlowDelivery or a copy of it).
    [Parameter(Mandatory)][string]$ModulePath,
    [Parameter(Mandatory)][string]$BaseUrl,
    [Parameter(Mandatory)][string]$StatePath,
    [string]$SdLoenPath,
    [string]$PrismePath,
    [string]$CaCertificatePath,
    # Plain http to a loopback simulator (the system-call ordering test reads the request bodies).
    [switch]$AllowInsecureHttp,
    [ValidateSet('Ack', 'None')][string]$AckMode = 'Ack',
    [int]$TimeoutSec = 20,
    [string]$TokenVariable = 'XFLOW_RUNONCE_TOKEN',
    [string]$StartGate
)
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$plain = [Environment]::GetEnvironmentVariable($TokenVariable)
if ([string]::IsNullOrEmpty($plain)) { throw "The environment variable $TokenVariable (the API token) is not set." }
# Nothing started from here inherits it.
[Environment]::SetEnvironmentVariable($TokenVariable, $null)
$token = ConvertTo-SecureString $plain -AsPlainText -Force
Remove-Variable plain

Import-Module (Join-Path $ModulePath 'XFlowDelivery.psd1')
Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1')

$params = @{
    BaseUrl    = $BaseUrl
    ApiToken   = $token
    StatePath  = $StatePath
    AckMode    = $AckMode
    TimeoutSec = $TimeoutSec
}
if ($SdLoenPath) { $params.SdLoenPath = $SdLoenPath }
if ($PrismePath) { $params.PrismePath = $PrismePath }
if ($CaCertificatePath) { $params.CaCertificatePath = $CaCertificatePath }
if ($AllowInsecureHttp) { $params.AllowInsecureHttp = $true }

[Console]::Out.WriteLine('XFLOW-RUN-START')
[Console]::Out.Flush()
if ($StartGate) {
    $watch = [Diagnostics.Stopwatch]::StartNew()
    while (-not (Test-Path -LiteralPath $StartGate)) {
        if ($watch.Elapsed.TotalSeconds -gt 120) { throw "The start gate '$StartGate' did not open within 120 s." }
        Start-Sleep -Milliseconds 10
    }
}

$terminating = $null
$output = @()
try {
    $output = @(Invoke-XFlowDelivery @params -ErrorVariable runErrors -WarningVariable runWarnings -ErrorAction SilentlyContinue -WarningAction SilentlyContinue)
}
catch {
    $terminating = $_
}
$errors = @(Select-XFlowNonTerminatingError -Collected @($runErrors) -Terminating $terminating)

$result = [ordered]@{
    # Objects with a Path are delivered files; anything else (a run summary) is not.
    delivered   = @($output | Where-Object { $null -ne $_ -and $_.PSObject.Properties['Path'] } |
            ForEach-Object { [ordered]@{ id = $_.Id; path = $_.Path; sha256 = $_.Sha256 } })
    errors      = @($errors | ForEach-Object { [ordered]@{ errorId = ($_.FullyQualifiedErrorId -split ',')[0]; target = "$($_.TargetObject)" } })
    warnings    = @($runWarnings | ForEach-Object { "$_" })
    terminating = if ($terminating) { ($terminating.FullyQualifiedErrorId -split ',')[0] } else { $null }
    message     = if ($terminating) { $terminating.Exception.Message } else { $null }
}
[Console]::Out.WriteLine('XFLOW-RUN-RESULT ' + (ConvertTo-Json -InputObject $result -Depth 5 -Compress))
exit $(if ($terminating) { 1 } else { 0 })
