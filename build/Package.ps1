#Requires -Version 7.0
<#
.SYNOPSIS
    build.ps1 -Package: the module as a versioned nupkg that PSResourceGet (Install-PSResource)
    and PowerShellGet (Install-Module) install from a folder or an internal feed, with the
    native libraries' symbols beside it.

.DESCRIPTION
    Stages the built module (manifest, assembly, formats, help, task entry script, this
    platform's library) and adds the libraries of the other platforms from -NativeArtifacts:
    one <os>-<arch> folder each (win-x64, linux-x64, win-arm64, linux-arm64, ...), as build.ps1
    writes them to out/native/ on each platform and the CI workflow collects them. Library files
    go into the module's <os>-<arch>/ folder; symbol files (.debug, .pdb) into
    <OutputPath>/symbols/<os>-<arch>/, which is not shipped. Then Compress-PSResource writes
    <OutputPath>/XFlowDelivery.<version>.nupkg.
#>
[CmdletBinding()]
param(
    # The built module folder (out/XFlowDelivery).
    [Parameter(Mandatory)][string]$ModulePath,
    # This build's libraries with their symbols (out/native/<os>-<arch>/).
    [Parameter(Mandatory)][string]$NativePath,
    # Where the nupkg and the symbols go; emptied first.
    [Parameter(Mandatory)][string]$OutputPath,
    # Libraries built elsewhere: a folder of <os>-<arch>/ folders.
    [string]$NativeArtifacts,
    # Publish under another ModuleVersion than the manifest's (the upgrade test makes a second
    # version this way; the assembly and the library keep their own).
    [string]$Version
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$libraryNames = @{ win = 'xflow_delivery.dll'; linux = 'xflow_delivery.so'; osx = 'xflow_delivery.dylib' }
$symbolExtensions = @('.debug', '.pdb')

if (Test-Path -LiteralPath $OutputPath) { Remove-Item -LiteralPath $OutputPath -Recurse -Force }
$stage = Join-Path $OutputPath 'stage/XFlowDelivery'
$symbols = Join-Path $OutputPath 'symbols'
New-Item -ItemType Directory -Path $stage, $symbols -Force | Out-Null
Copy-Item -Path (Join-Path $ModulePath '*') -Destination $stage -Recurse

# This build's folders first; an artifact for the same platform is the same library built by
# another job, and is left out.
$sources = @(Get-ChildItem -LiteralPath $NativePath -Directory)
if ($NativeArtifacts) {
    if (-not (Test-Path -LiteralPath $NativeArtifacts -PathType Container)) { throw "-NativeArtifacts '$NativeArtifacts' is not a folder." }
    $sources += @(Get-ChildItem -LiteralPath $NativeArtifacts -Directory)
}
$platforms = [Collections.Generic.List[string]]::new()
foreach ($source in $sources) {
    $rid = $source.Name
    if ($rid -notmatch '^(win|linux|osx)-(x64|x86|arm64)$') { throw "'$($source.FullName)': the folder must be named <os>-<arch> (win-x64, linux-arm64, ...)." }
    if ($platforms.Contains($rid)) {
        Write-Host "    $rid from '$($source.FullName)' left out: this build made $rid itself"
        continue
    }
    $library = $libraryNames[$Matches[1]]
    if (-not (Test-Path -LiteralPath (Join-Path $source.FullName $library))) { throw "'$($source.FullName)' holds no $library." }
    $platforms.Add($rid)
    foreach ($file in Get-ChildItem -LiteralPath $source.FullName -File) {
        $target = if ($file.Name -eq $library) { Join-Path $stage $rid }
                  elseif ($symbolExtensions -contains $file.Extension) { Join-Path $symbols $rid }
                  else { throw "'$($file.FullName)' is neither the library ($library) nor its symbols ($($symbolExtensions -join ', '))." }
        New-Item -ItemType Directory -Path $target -Force | Out-Null
        Copy-Item -LiteralPath $file.FullName -Destination $target -Force
    }
}

$manifestPath = Join-Path $stage 'XFlowDelivery.psd1'
if ($Version) {
    $text = [IO.File]::ReadAllText($manifestPath)
    $text = [regex]::Replace($text, "(?m)^(\s*ModuleVersion\s*=\s*)'[^']*'", "`${1}'$Version'")
    [IO.File]::WriteAllText($manifestPath, $text, [Text.UTF8Encoding]::new($true))
}
$moduleVersion = (Import-PowerShellDataFile -LiteralPath $manifestPath).ModuleVersion

Compress-PSResource -Path $stage -DestinationPath $OutputPath
$nupkg = Join-Path $OutputPath "XFlowDelivery.$moduleVersion.nupkg"
if (-not (Test-Path -LiteralPath $nupkg)) { throw "Compress-PSResource did not write '$nupkg'." }
Remove-Item -LiteralPath (Join-Path $OutputPath 'stage') -Recurse -Force

Write-Host "    $nupkg ($((Get-Item -LiteralPath $nupkg).Length) bytes): $($platforms -join ', ')"
Get-ChildItem -LiteralPath $symbols -Recurse -File |
    ForEach-Object { Write-Host "    symbols: $([IO.Path]::GetRelativePath($OutputPath, $_.FullName)) ($($_.Length) bytes)" }
[pscustomobject]@{ Path = $nupkg; Version = $moduleVersion; Platforms = @($platforms); Symbols = $symbols }
