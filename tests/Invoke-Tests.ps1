<#
.SYNOPSIS
    Runs the Pester suites in tests/ against the built module (out/XFlowDelivery) in the
    PowerShell that runs this script: PowerShell 7 (build.ps1 -Test calls it) or Windows
    PowerShell 5.1 (the Windows CI job runs `powershell.exe -File tests/Invoke-Tests.ps1`).

.DESCRIPTION
    Pester 5.7.1 comes from the NuGet package cache (tests/TestDependencies.proj; build.ps1 -Test
    restores it). Run on its own, the script ends with the line "N passed, N failed, N skipped"
    and exit code 1 when anything failed. With -PassThru it prints no closing line and returns
    @{ Passed; Failed; Skipped } instead, for build.ps1 to add the cargo counts.
    Written for Windows PowerShell 5.1 too: no PowerShell 7-only syntax.
#>
[CmdletBinding()]
param(
    # Pester.psd1; default: $NUGET_PACKAGES (or ~/.nuget/packages)/pester/5.7.1/tools/Pester.psd1.
    [string]$PesterPath,
    # Where the NUnit XML results go; none when empty.
    [string]$ResultPath,
    # Test files or folders; default: this folder.
    [string[]]$Path = @($PSScriptRoot),
    [switch]$PassThru
)

$ErrorActionPreference = 'Stop'
$PesterVersion = '5.7.1'

if (-not $PesterPath) {
    $packages = if ($env:NUGET_PACKAGES) { $env:NUGET_PACKAGES }
                else { Join-Path ([Environment]::GetFolderPath('UserProfile')) '.nuget/packages' }
    $PesterPath = Join-Path $packages "pester/$PesterVersion/tools/Pester.psd1"
}
if (-not (Test-Path -LiteralPath $PesterPath)) {
    throw "Pester $PesterVersion is not at '$PesterPath': run 'dotnet restore tests/TestDependencies.proj' (build.ps1 -Test does)."
}

# Windows PowerShell 5.1 runs only on Windows and lacks PowerShell 7's $IsWindows, $IsLinux and
# $IsMacOS, which the tests' -Skip conditions read: without them every Windows test would skip.
if ($PSVersionTable.PSEdition -eq 'Desktop') {
    $global:IsWindows = $true
    $global:IsLinux = $false
    $global:IsMacOS = $false
}

# Pester searches the parent of a path that does not exist (up to the whole file system).
foreach ($p in $Path) {
    if (-not (Test-Path -LiteralPath $p)) { throw "No test file or folder '$p'." }
}

Get-Module Pester | Remove-Module -Force
Import-Module $PesterPath -Force

$config = New-PesterConfiguration
$config.Run.Path = $Path
$config.Run.PassThru = $true
$config.Run.Exit = $false
$config.Output.Verbosity = 'Detailed'
if ($ResultPath) {
    $config.TestResult.Enabled = $true
    $config.TestResult.OutputFormat = 'NUnitXml'
    $config.TestResult.OutputPath = $ResultPath
}

# Every folder the tests make goes under one folder of this run (tests/TestHelpers.psm1,
# Get-XFlowTestRoot; child processes inherit the variable), removed when the run ends, unless a
# caller chose the folder.
$ownRoot = -not $env:XFLOW_TEST_ROOT
if ($ownRoot) {
    $env:XFLOW_TEST_ROOT = Join-Path ([IO.Path]::GetTempPath()) ('xflow-tests-' + [Guid]::NewGuid().ToString('N').Substring(0, 10))
    New-Item -ItemType Directory -Path $env:XFLOW_TEST_ROOT | Out-Null
}
try {
    # The tests run with PowerShell's defaults, not a caller's strict mode or Stop preference.
    $result = & {
        Set-StrictMode -Off
        $ErrorActionPreference = 'Continue'
        Invoke-Pester -Configuration $config
    }
}
finally {
    if ($ownRoot) {
        $root = $env:XFLOW_TEST_ROOT
        $env:XFLOW_TEST_ROOT = $null
        # TestHelpers.psm1 put the installations registry there; a later run in this process makes its own.
        if ("$env:XFLOWDELIVERY_INSTALLATIONS".StartsWith($root)) { $env:XFLOWDELIVERY_INSTALLATIONS = $null }
        # A file system a failed test left mounted there (LazyFS) is not walked into.
        $mounted = $IsLinux -and @(Get-Content -LiteralPath '/proc/mounts' | Where-Object { ($_ -split ' ')[1].StartsWith($root) }).Count -gt 0
        if ($mounted) { Write-Warning "The tests' folder '$root' is kept: a file system is still mounted in it." }
        else {
            Remove-Item -LiteralPath $root -Recurse -Force -ErrorAction SilentlyContinue
            if (Test-Path -LiteralPath $root) { Write-Warning "The tests' folder '$root' could not be removed completely." }
        }
    }
}
$counts = @{ Passed = 0; Failed = 0; Skipped = 0 }
if ($null -ne $result) {
    $counts.Passed = [int]$result.PassedCount
    $counts.Failed = [int]($result.FailedCount + $result.FailedBlocksCount + $result.FailedContainersCount)
    $counts.Skipped = [int]$result.SkippedCount
}
# A run that broke before or around the tests (no result, a path not found, no test at all)
# counts as a failure, never as a green run of nothing.
if ($counts.Failed -eq 0 -and ($null -eq $result -or $result.Result -eq 'Failed' -or $result.TotalCount -eq 0)) {
    Write-Host 'Pester did not run the tests (see the errors above): counted as 1 failure' -ForegroundColor Red
    $counts.Failed = 1
}
if ($PassThru) { return $counts }

Write-Host ("Pester in PowerShell {0} ({1})" -f $PSVersionTable.PSVersion, $PSVersionTable.PSEdition)
[Console]::Out.WriteLine(('{0} passed, {1} failed, {2} skipped' -f $counts.Passed, $counts.Failed, $counts.Skipped))
if ($counts.Failed -gt 0) { exit 1 }
exit 0
