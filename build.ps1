#Requires -Version 7.0
<#
.SYNOPSIS
    Builds the XFlowDelivery PowerShell module (Rust engine + C# cmdlets) into out/XFlowDelivery,
    and optionally runs all tests (-Test) or a demo against the XFlow simulator (-Demo).

.DESCRIPTION
    Always a release build:
      1. cargo build --release -p xflow-delivery-ffi -p xflow-sim
         (with XFLOW_REGENERATE_BINDINGS=1, so the ffi crate's build.rs rewrites
         bindings/NativeMethods.g.cs; not on CI or with -NoRegenerate, so that a stale committed
         binding is caught by the ffi crate's own cargo test instead of being silently fixed)
      2. dotnet build -c Release powershell/XFlowDelivery/XFlowDelivery.csproj
      3. out/native/<os>-<arch>/: the library stripped of its symbols, and the symbols apart
         (Linux: objcopy, xflow_delivery.so.debug; Windows: the linker's .pdb); the psd1, the
         csproj and Cargo.toml must carry the same version
      4. out/XFlowDelivery/ = psd1 + dll + Format.ps1xml + Task.ps1 + en-US help + <os>-<arch>/xflow_delivery.<so|dll|dylib>
    -Test : cargo test --workspace, then Pester 5.7.1 on tests/ (tests/Invoke-Tests.ps1; Pester
            restored from NuGet through tests/TestDependencies.proj), then one line
            "N passed, N failed, N skipped" for both together. Exit code 1 if anything failed.
    -Demo : starts target/release/xflow-sim, enqueues sample SD Løn and Prisme deliveries, runs
            Invoke-XFlowDelivery into temp folders "SD Løn" and "Prisme", shows what landed where,
            stops the simulator.
    -Package [-NativeArtifacts <dir>] : out/package/XFlowDelivery.<version>.nupkg for PSResourceGet
            and PowerShellGet (build/Package.ps1), with every library in out/native and <dir>
            (<os>-<arch>/ folders from other platforms), and their symbols in out/package/symbols.
    -Stress [-Trials N] [-MinKills N] [-PowerCuts N] : the reliability harness (build/Stress.ps1):
            kill -9 trials until each ack mode has at least -MinKills kills (default 100), then
            -PowerCuts LazyFS power cuts per ack mode (default 30; skipped, with the reason,
            without root or /dev/fuse).
    -Bench [-Quick] : the benchmarks (build/Bench.ps1), results in out/bench/results.json.

.EXAMPLE
    dotnet tool restore && dotnet pwsh ./build.ps1 -Test
.EXAMPLE
    dotnet tool restore && dotnet pwsh ./build.ps1 -Demo
#>
[CmdletBinding()]
param(
    # Run cargo test and the Pester tests after building.
    [switch]$Test,
    # Run a demo against the simulator after building.
    [switch]$Demo,
    # Do not let the ffi build.rs regenerate bindings/NativeMethods.g.cs.
    [switch]$NoRegenerate,
    # Run the kill -9 reliability harness (build/Stress.ps1).
    [switch]$Stress,
    # How many kill-and-recover trials -Stress runs at least (per ack mode).
    [ValidateRange(0, 100000)]
    [int]$Trials = 20,
    # -Stress adds kill trials until each ack mode has this many kills.
    [ValidateRange(0, 100000)]
    [int]$MinKills = 100,
    # How many power cuts (LazyFS) -Stress makes per ack mode.
    [ValidateRange(0, 100000)]
    [int]$PowerCuts = 30,
    # Run the benchmarks (build/Bench.ps1).
    [switch]$Bench,
    # With -Bench: a short run (used by CI), not the full measurement.
    [switch]$Quick,
    # Package the module: out/package/XFlowDelivery.<version>.nupkg and out/package/symbols/.
    [switch]$Package,
    # With -Package: a folder of <os>-<arch>/ folders with the libraries built on other
    # platforms (the CI workflow's artifacts), as out/native/ holds this platform's.
    [string]$NativeArtifacts
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
# Native commands' exit codes are checked explicitly below.
$PSNativeCommandUseErrorActionPreference = $false

$Root = $PSScriptRoot
$OutDir = Join-Path $Root 'out'
$ModuleOut = Join-Path $OutDir 'XFlowDelivery'
$ProjectDir = Join-Path $Root 'powershell/XFlowDelivery'
$PesterVersion = '5.7.1'

function Write-Step([string]$Message) {
    Write-Host "==> $Message" -ForegroundColor Cyan
}

function Invoke-Checked {
    # Runs a native command; throws with the command line if it exits non-zero. Its output goes
    # to the console, never into the caller's return value (a function returns everything its
    # commands write to the pipeline: a restore's log would otherwise join a result object).
    param([Parameter(Mandatory)][string]$FilePath, [string[]]$ArgumentList = @())
    & $FilePath @ArgumentList | Out-Host
    if ($LASTEXITCODE -ne 0) {
        throw "'$FilePath $($ArgumentList -join ' ')' failed with exit code $LASTEXITCODE"
    }
}

function Assert-Prerequisites {
    if (-not (Get-Command cargo -ErrorAction SilentlyContinue)) {
        $cargoBin = Join-Path ([Environment]::GetFolderPath('UserProfile')) '.cargo/bin'
        if (Test-Path (Join-Path $cargoBin ($IsWindows ? 'cargo.exe' : 'cargo'))) {
            $env:PATH = $cargoBin + [IO.Path]::PathSeparator + $env:PATH
        }
    }
    if (-not (Get-Command cargo -ErrorAction SilentlyContinue)) {
        throw 'cargo was not found. Install the Rust toolchain (stable, 1.89 or newer) from rustup, then open a new shell.'
    }
    # The workspace's rust-version is the minimum; an older rustc fails deep in a dependency.
    $minimum = [version]((Get-Content (Join-Path $Root 'Cargo.toml') | Select-String '^rust-version = "(.+)"').Matches[0].Groups[1].Value)
    $found = (& rustc --version) -replace '^rustc (\d+\.\d+\.\d+).*', '$1'
    if ([version]$found -lt $minimum) {
        throw "rustc $found is too old: this project needs Rust $minimum or newer (Cargo.toml rust-version). Run 'rustup update stable'."
    }
    if (-not (Get-Command dotnet -ErrorAction SilentlyContinue)) {
        throw 'dotnet was not found. Install the .NET SDK 10.'
    }
}

function Get-TargetDir {
    if ($env:CARGO_TARGET_DIR) { return $env:CARGO_TARGET_DIR }
    return (Join-Path $Root 'target')
}

function Get-NativeInfo {
    # The module's native folder (what pwsh's fallback and the Windows preload look for) and the
    # file cargo produces for the cdylib.
    $arch = switch ([Runtime.InteropServices.RuntimeInformation]::ProcessArchitecture) {
        'X64' { 'x64' }
        'Arm64' { 'arm64' }
        'X86' { 'x86' }
        default { "$_".ToLowerInvariant() }
    }
    if ($IsWindows) {
        return [pscustomobject]@{ Rid = "win-$arch"; Built = 'xflow_delivery.dll'; Shipped = 'xflow_delivery.dll' }
    }
    if ($IsMacOS) {
        return [pscustomobject]@{ Rid = "osx-$arch"; Built = 'libxflow_delivery.dylib'; Shipped = 'xflow_delivery.dylib' }
    }
    return [pscustomobject]@{ Rid = "linux-$arch"; Built = 'libxflow_delivery.so'; Shipped = 'xflow_delivery.so' }
}

function Invoke-Build {
    Assert-Prerequisites

    Write-Step 'cargo build --release (engine, C ABI, simulator)'
    $regenerate = -not $NoRegenerate -and $env:CI -ne 'true'
    $previous = $env:XFLOW_REGENERATE_BINDINGS
    try {
        if ($regenerate) { $env:XFLOW_REGENERATE_BINDINGS = '1' }
        else { Remove-Item Env:XFLOW_REGENERATE_BINDINGS -ErrorAction SilentlyContinue }
        Push-Location $Root
        try {
            Invoke-Checked cargo @('build', '--release', '-p', 'xflow-delivery-ffi', '-p', 'xflow-sim')
        }
        finally { Pop-Location }
    }
    finally {
        if ($null -eq $previous) { Remove-Item Env:XFLOW_REGENERATE_BINDINGS -ErrorAction SilentlyContinue }
        else { $env:XFLOW_REGENERATE_BINDINGS = $previous }
    }

    Write-Step 'dotnet build -c Release (PowerShell module)'
    Invoke-Checked dotnet @('build', (Join-Path $ProjectDir 'XFlowDelivery.csproj'), '-c', 'Release', '-nologo', '-v:minimal')

    Write-Step "assemble $ModuleOut"
    $version = Assert-VersionsAgree
    $native = Get-NativeInfo
    $builtNative = Join-Path (Get-TargetDir) "release/$($native.Built)"
    if (-not (Test-Path -LiteralPath $builtNative)) {
        throw "The native library was not built: '$builtNative' is missing."
    }
    $nativeOut = Export-NativeLibrary -Built $builtNative -Native $native
    $managedOut = Join-Path $ProjectDir 'bin/Release/netstandard2.0'
    if (Test-Path -LiteralPath $ModuleOut) {
        Remove-Item -LiteralPath $ModuleOut -Recurse -Force
    }
    $nativeDir = Join-Path $ModuleOut $native.Rid
    New-Item -ItemType Directory -Path $nativeDir -Force | Out-Null
    foreach ($file in 'XFlowDelivery.dll', 'XFlowDelivery.psd1', 'XFlowDelivery.Format.ps1xml', 'XFlowDelivery.Task.ps1') {
        Copy-Item -LiteralPath (Join-Path $managedOut $file) -Destination $ModuleOut
    }
    New-Item -ItemType Directory -Path (Join-Path $ModuleOut 'en-US') -Force | Out-Null
    Copy-Item -LiteralPath (Join-Path $managedOut 'en-US/XFlowDelivery.dll-Help.xml') -Destination (Join-Path $ModuleOut 'en-US')
    Copy-Item -LiteralPath (Join-Path $nativeOut $native.Shipped) -Destination (Join-Path $nativeDir $native.Shipped)
    Write-Host "    XFlowDelivery $version"
    Get-ChildItem -LiteralPath $ModuleOut -Recurse -File |
        ForEach-Object { Write-Host ('    ' + [IO.Path]::GetRelativePath($Root, $_.FullName) + "  ($($_.Length) bytes)") }
}

function Assert-VersionsAgree {
    # One version in three places: the Cargo workspace (the library), the C# project (the
    # assembly) and the module manifest. Returns it; throws naming all three when they differ.
    $cargo = Select-String -LiteralPath (Join-Path $Root 'Cargo.toml') -Pattern '^version\s*=\s*"([^"]+)"' | Select-Object -First 1
    $csproj = Select-String -LiteralPath (Join-Path $ProjectDir 'XFlowDelivery.csproj') -Pattern '<Version>([^<]+)</Version>' | Select-Object -First 1
    $manifest = (Import-PowerShellDataFile -LiteralPath (Join-Path $ProjectDir 'XFlowDelivery.psd1')).ModuleVersion
    $versions = [ordered]@{
        'Cargo.toml [workspace.package] version' = $cargo ? $cargo.Matches[0].Groups[1].Value : '(none)'
        'XFlowDelivery.csproj <Version>'          = $csproj ? $csproj.Matches[0].Groups[1].Value : '(none)'
        'XFlowDelivery.psd1 ModuleVersion'        = "$manifest"
    }
    if (@($versions.Values | Select-Object -Unique).Count -ne 1) {
        throw "The versions differ; set the same one in all three: " + (($versions.GetEnumerator() | ForEach-Object { "$($_.Key) = $($_.Value)" }) -join '; ')
    }
    return "$manifest"
}

function Export-NativeLibrary {
    <#
    Copies the built library to out/native/<rid>/ under the name the module ships, stripped of
    its symbols, with the symbols beside it as a separate file (Linux: <name>.debug, tied to the
    library by a .gnu_debuglink; Windows: the linker's .pdb, never shipped inside the DLL).
    The CI workflow collects these folders from every platform for build.ps1 -Package.
    Returns the folder.
    #>
    param([Parameter(Mandatory)][string]$Built, [Parameter(Mandatory)]$Native)
    $dir = Join-Path $OutDir "native/$($Native.Rid)"
    if (Test-Path -LiteralPath $dir) { Remove-Item -LiteralPath $dir -Recurse -Force }
    New-Item -ItemType Directory -Path $dir -Force | Out-Null
    $shipped = Join-Path $dir $Native.Shipped
    if ($IsLinux) {
        $symbols = "$shipped.debug"
        Invoke-Checked objcopy @('--only-keep-debug', $Built, $symbols)
        Invoke-Checked objcopy @('--strip-unneeded', "--add-gnu-debuglink=$symbols", $Built, $shipped)
    }
    else {
        Copy-Item -LiteralPath $Built -Destination $shipped
        $pdb = [IO.Path]::ChangeExtension($Built, '.pdb')
        if (Test-Path -LiteralPath $pdb) { Copy-Item -LiteralPath $pdb -Destination (Join-Path $dir ([IO.Path]::GetFileName($pdb))) }
    }
    return $dir
}

function Invoke-CargoTests {
    # Returns @{ Passed; Failed; Skipped }. Streams cargo's output and sums every
    # "test result: ok. N passed; M failed; K ignored" line (unit, integration and doc tests).
    Write-Step 'cargo test --workspace (with the engine''s fail points)'
    $passed = 0
    $failed = 0
    $ignored = 0
    Push-Location $Root
    try {
        # stdout (the test results) is read line by line; stderr (compile progress) goes to the console.
        & cargo test --workspace --features xflow-engine/failpoints | ForEach-Object {
            $line = "$_"
            Write-Host $line
            if ($line -match 'test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored') {
                $passed += [int]$Matches[1]
                $failed += [int]$Matches[2]
                $ignored += [int]$Matches[3]
            }
        }
        $exit = $LASTEXITCODE
    }
    finally { Pop-Location }
    if ($exit -ne 0 -and $failed -eq 0) {
        Write-Host "cargo test exited with $exit without a failing test (build error?): counted as 1 failure" -ForegroundColor Red
        $failed = 1
    }
    return @{ Passed = $passed; Failed = $failed; Skipped = $ignored }
}

function Get-PesterModulePath {
    $packages = if ($env:NUGET_PACKAGES) { $env:NUGET_PACKAGES }
                else { Join-Path ([Environment]::GetFolderPath('UserProfile')) '.nuget/packages' }
    return (Join-Path $packages "pester/$PesterVersion/tools/Pester.psd1")
}

function Invoke-PesterTests {
    # Returns @{ Passed; Failed; Skipped } from tests/Invoke-Tests.ps1 (the same runner the
    # Windows CI job starts in Windows PowerShell 5.1).
    Write-Step "Pester $PesterVersion (restored from NuGet via tests/TestDependencies.proj)"
    $pester = Get-PesterModulePath
    if (-not (Test-Path -LiteralPath $pester)) {
        Invoke-Checked dotnet @('restore', (Join-Path $Root 'tests/TestDependencies.proj'), '-nologo', '-v:minimal')
    }
    if (-not (Test-Path -LiteralPath $pester)) {
        throw "Pester $PesterVersion was restored but '$pester' does not exist (NUGET_PACKAGES?)."
    }
    & (Join-Path $Root 'tests/Invoke-Tests.ps1') -PesterPath $pester -ResultPath (Join-Path $OutDir 'pester-results.xml') -PassThru
}

function Invoke-Demo {
    Import-Module (Join-Path $Root 'tests/TestHelpers.psm1') -Force
    $work = Join-Path ([IO.Path]::GetTempPath()) ("xflow-demo-" + [Guid]::NewGuid().ToString('N').Substring(0, 8))
    $sdLoen = Join-Path $work 'SD Løn'
    $prisme = Join-Path $work 'Prisme'
    $state = Join-Path $work 'state'
    New-Item -ItemType Directory -Path $sdLoen, $prisme, $state -Force | Out-Null

    Write-Step 'start the XFlow simulator'
    $sim = Start-XFlowSim
    try {
        Write-Host "    simulator API: $($sim.BaseUrl)   control: $($sim.ControlUrl)"
        Write-Step 'enqueue sample deliveries for SD Løn and Prisme'
        Invoke-XFlowSimControl -Sim $sim -Method POST -Path 'generate' -Body @{
            count = 3; systems = @('SDLoen', 'Prisme'); kind = 'sample'
        } | Out-Null

        Write-Step 'Invoke-XFlowDelivery'
        Import-Module (Join-Path $ModuleOut 'XFlowDelivery.psd1') -Force
        $token = ConvertTo-SecureString $sim.Token -AsPlainText -Force
        $delivered = Invoke-XFlowDelivery -BaseUrl $sim.BaseUrl -ApiToken $token `
            -SdLoenPath $sdLoen -PrismePath $prisme -StatePath $state `
            -CaCertificatePath $sim.CaPath -Verbose
        $delivered | Format-Table -AutoSize | Out-String -Width 250 | Out-Host

        Write-Step "what landed where (under $work)"
        Get-ChildItem -LiteralPath $sdLoen, $prisme -File -Force |
            Select-Object @{ n = 'Folder'; e = { $_.Directory.Name } }, Name, Length, LastWriteTime |
            Format-Table -AutoSize | Out-String -Width 250 | Out-Host
    }
    finally {
        Write-Step 'stop the simulator'
        Stop-XFlowSim -Sim $sim
    }
}

Invoke-Build

if ($Demo) {
    Invoke-Demo
}

if ($Package) {
    Write-Step 'package (build/Package.ps1): out/package'
    & (Join-Path $Root 'build/Package.ps1') -ModulePath $ModuleOut -NativePath (Join-Path $OutDir 'native') `
        -OutputPath (Join-Path $OutDir 'package') -NativeArtifacts $NativeArtifacts | Format-List | Out-Host
}

if ($Stress) {
    & (Join-Path $Root 'build/Stress.ps1') -Root $Root -ModulePath $ModuleOut -Trials $Trials -MinKills $MinKills -PowerCuts $PowerCuts
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}

if ($Bench) {
    & (Join-Path $Root 'build/Bench.ps1') -Root $Root -ModulePath $ModuleOut -Quick:$Quick
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}

if ($Test) {
    $cargo = Invoke-CargoTests
    $pester = Invoke-PesterTests
    $passed = $cargo.Passed + $pester.Passed
    $failed = $cargo.Failed + $pester.Failed
    $skipped = $cargo.Skipped + $pester.Skipped
    # Semicolons: only the closing line below has the "N passed, N failed" form CI reads.
    Write-Host "cargo test: $($cargo.Passed) passed; $($cargo.Failed) failed; $($cargo.Skipped) ignored. Pester: $($pester.Passed) passed; $($pester.Failed) failed; $($pester.Skipped) skipped"
    [Console]::Out.WriteLine("$passed passed, $failed failed, $skipped skipped")
    if ($failed -gt 0) { exit 1 }
}
exit 0
