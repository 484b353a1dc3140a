# Windows paths: what only a Windows machine can show (skipped elsewhere, with the reason), and
# the pure logic behind them, which runs everywhere (through the module's internal types).
BeforeDiscovery {
    # -Skip conditions are evaluated at discovery, before BeforeAll.
    $script:OnWindows = $IsWindows -or $PSVersionTable.PSEdition -eq 'Desktop'
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Work = New-XFlowTestDirectory -Name 'xflow-windows'
    Push-Location $script:Work
    Import-Module (Get-XFlowModuleManifest) -Force
    $script:OnWindows = $IsWindows -or $PSVersionTable.PSEdition -eq 'Desktop'
    $script:Assembly = [XFlowDelivery.Model.XFlowDeliveryConfig].Assembly
    $script:ModuleDir = Split-Path -Parent (Get-XFlowModuleManifest)

    # Calls an internal static method of the module.
    function script:Invoke-Internal {
        param([string]$Type, [string]$Method, [object[]]$Arguments = @())
        $flags = [Reflection.BindingFlags]'Static, NonPublic, Public'
        $m = $script:Assembly.GetType("XFlowDelivery.$Type", $true).GetMethods($flags) | Where-Object { $_.Name -eq $Method -and $_.GetParameters().Count -eq $Arguments.Count } | Select-Object -First 1
        for ($i = 0; $i -lt $Arguments.Count; $i++) {
            if ($Arguments[$i] -is [psobject]) { $Arguments[$i] = $Arguments[$i].psobject.BaseObject }
        }
        try { $m.Invoke($null, $Arguments) }
        catch {
            $e = $_.Exception
            while ($e.InnerException -and ($e -is [Management.Automation.MethodInvocationException] -or $e -is [Reflection.TargetInvocationException])) { $e = $e.InnerException }
            throw $e
        }
    }
}

AfterAll {
    Pop-Location
    Remove-Item -LiteralPath $script:Work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Native library (pure logic, every platform)' {
    It 'reads the DLLs a PE file imports (the managed XFlowDelivery.dll imports mscoree.dll)' {
        $imports = @(Invoke-Internal 'Native.PeImports' 'Read' @((Join-Path $script:ModuleDir 'XFlowDelivery.dll')))
        $imports | Should -Be @('mscoree.dll')
        $notPe = Join-Path $script:Work 'not-a-dll.dll'
        Set-Content -LiteralPath $notPe -Value 'MZ but nothing else' -Encoding ascii
        { Invoke-Internal 'Native.PeImports' 'Read' @($notPe) } | Should -Throw -ExceptionType ([BadImageFormatException])
    }

    It 'tells whether two Windows paths name the same library' {
        Invoke-Internal 'Native.NativeLibraryLoader' 'SameLibraryPath' @('\\?\C:\Program Files\WindowsPowerShell\Modules\XFlowDelivery\0.1.0\win-x64\xflow_delivery.dll', 'c:/program files/windowspowershell/modules/xflowdelivery/0.1.0/win-x64/XFLOW_DELIVERY.DLL') | Should -BeTrue
        Invoke-Internal 'Native.NativeLibraryLoader' 'SameLibraryPath' @('C:\Modules\XFlowDelivery\0.1.0\win-x64\xflow_delivery.dll', 'C:\Modules\XFlowDelivery\0.2.0\win-x64\xflow_delivery.dll') | Should -BeFalse
    }
}

Describe 'The native engine from a module folder whose path holds Løn and spaces (a copy imported in a child PowerShell)' {
    BeforeAll {
        # Where an administrator may well put it: a Danish folder name, spaces; the state folder beside it.
        $odd = Join-Path (Join-Path $script:Work 'Løn og Prisme') 'Moduler med mellemrum'
        New-Item -ItemType Directory -Path $odd -Force | Out-Null
        Copy-Item -LiteralPath $script:ModuleDir -Destination $odd -Recurse
        $script:OddModule = Join-Path $odd 'XFlowDelivery'
        $script:OddState = Join-Path (Join-Path $script:Work 'Løn og Prisme') 'tom tilstand'
        New-Item -ItemType Directory -Path $script:OddState | Out-Null
        # The library as this process loaded it: <os>-<arch> folder and file name, the same in the copy.
        $loaded = @([Diagnostics.Process]::GetCurrentProcess().Modules | Where-Object ModuleName -Like 'xflow_delivery*')[0].FileName
        $oddNative = Join-Path (Join-Path $script:OddModule (Split-Path -Leaf (Split-Path -Parent $loaded))) (Split-Path -Leaf $loaded)
        # Compared by their tails below the work folder: a temp folder may come back in its 8.3
        # form (C:\Users\RUNNER~1), the folders made here never do.
        $script:OddModuleTail = $script:OddModule.Substring($script:Work.Length)
        $script:OddNativeTail = $oddNative.Substring($script:Work.Length)
        $script:Probe = Join-Path $script:Work 'probe-native.ps1'
        # ASCII only (Windows PowerShell 5.1 reads a script without BOM in the ANSI code page); the
        # paths leave escaped, so no console code page can change them on the way.
        Set-Content -LiteralPath $script:Probe -Encoding ascii -Value @'
param($Manifest, $StatePath)
$ErrorActionPreference = 'Stop'
Import-Module $Manifest
$status = Get-XFlowDeliveryStatus -StatePath $StatePath -WarningAction SilentlyContinue
'EDITION=' + $PSVersionTable.PSEdition
'STATUS=' + ($null -ne $status) + ' NEVERRUN=' + ($null -eq $status.LastRun)
foreach ($m in [Diagnostics.Process]::GetCurrentProcess().Modules) {
    if ($m.ModuleName -like 'xflow_delivery*') { 'NATIVE=' + [Uri]::EscapeDataString($m.FileName) }
}
'MODULEBASE=' + [Uri]::EscapeDataString((Get-Module XFlowDelivery).ModuleBase)
'@

        function script:Assert-NativeFromOddPath {
            # Runs the probe in the given PowerShell (PSModulePath left to it) and checks that the
            # engine answered and that the library came from the copy, not from out/.
            param([string]$FilePath, [string[]]$Prefix = @(), [string]$Edition)
            $result = Invoke-XFlowProcess -FilePath $FilePath -Environment @{ PSModulePath = $null } -ArgumentList (@($Prefix) +
                @('-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File', $script:Probe, (Join-Path $script:OddModule 'XFlowDelivery.psd1'), $script:OddState))
            $result.ExitCode | Should -Be 0 -Because $result.Output
            $result.Output | Should -Match "(?m)^EDITION=$Edition\r?$"
            $result.Output | Should -Match '(?m)^STATUS=True NEVERRUN=True\r?$'
            $native = @([regex]::Matches($result.Output, '(?m)^NATIVE=(\S+)') | ForEach-Object { [Uri]::UnescapeDataString($_.Groups[1].Value) })
            $native.Count | Should -Be 1 -Because "one engine in the process:`n$($result.Output)"
            $native[0] | Should -BeLike ('*' + $script:OddNativeTail)
            $base = [Uri]::UnescapeDataString(([regex]::Match($result.Output, '(?m)^MODULEBASE=(\S+)')).Groups[1].Value)
            $base | Should -BeLike ('*' + $script:OddModuleTail)
        }
    }

    It 'PowerShell 7 (pwsh) imports it, the engine answers Get-XFlowDeliveryStatus, and the library is the copy''s' {
        # Runs on every platform. Under Windows PowerShell 5.1 the pwsh on PATH is used.
        if ($PSVersionTable.PSEdition -eq 'Core') {
            $pwsh = Get-XFlowPwshCommand
            Assert-NativeFromOddPath -FilePath $pwsh.FilePath -Prefix $pwsh.Prefix -Edition 'Core'
        }
        else {
            $pwsh = Get-Command pwsh.exe -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
            if (-not $pwsh) { Set-ItResult -Skipped -Because 'Windows PowerShell 5.1 runs these tests and no pwsh.exe is on PATH' ; return }
            Assert-NativeFromOddPath -FilePath $pwsh.Source -Edition 'Core'
        }
    }

    It 'Windows PowerShell 5.1 (powershell.exe) imports it, the engine answers Get-XFlowDeliveryStatus, and the library is the copy''s (Windows only: Windows PowerShell)' -Skip:(-not $script:OnWindows) {
        # Skipped off Windows: Windows PowerShell exists only there.
        Assert-NativeFromOddPath -FilePath (Join-Path $env:SystemRoot 'System32\WindowsPowerShell\v1.0\powershell.exe') -Edition 'Desktop'
    }
}

Describe 'Windows prerequisites (pure logic, every platform)' {
    It 'names the .NET Framework version of a Release value' {
        Invoke-Internal 'WindowsPrerequisites' 'FrameworkVersion' @(393295) | Should -Be '4.6'
        Invoke-Internal 'WindowsPrerequisites' 'FrameworkVersion' @(394802) | Should -Be '4.6.2'
        Invoke-Internal 'WindowsPrerequisites' 'FrameworkVersion' @(461814) | Should -Be '4.7.2'
        Invoke-Internal 'WindowsPrerequisites' 'FrameworkVersion' @(528449) | Should -Be '4.8'
        Invoke-Internal 'WindowsPrerequisites' 'FrameworkVersion' @(533325) | Should -Be '4.8.1'
    }

    It 'finds the execution policy the task runs under: Group Policy first, RemoteSigned when nothing is set' {
        Invoke-Internal 'WindowsPrerequisites' 'TaskPolicy' @('AllSigned', 'Bypass', 'Unrestricted') | Should -Be 'AllSigned'
        Invoke-Internal 'WindowsPrerequisites' 'TaskPolicy' @('Undefined', 'Undefined', 'Unrestricted') | Should -Be 'Unrestricted'
        Invoke-Internal 'WindowsPrerequisites' 'TaskPolicy' @('Undefined', 'Undefined', 'Undefined') | Should -Be 'RemoteSigned'
    }

    It 'says when marked module files stop the task, and what to do' {
        $marked = [Collections.Generic.List[string]]::new()
        $remedy = $null
        $a = @('RemoteSigned', $marked, 'C:\Modules\XFlowDelivery', $remedy)
        Invoke-Internal 'WindowsPrerequisites' 'ModuleLoadProblem' $a | Should -BeNullOrEmpty
        $marked.Add('XFlowDelivery.psd1')
        $a = @('RemoteSigned', $marked, 'C:\Modules\XFlowDelivery', $null)
        Invoke-Internal 'WindowsPrerequisites' 'ModuleLoadProblem' $a | Should -Match 'mark of the web.*RemoteSigned'
        $a[3] | Should -Match 'Unblock-File'
        $a = @('Bypass', $marked, 'C:\Modules\XFlowDelivery', $null)
        Invoke-Internal 'WindowsPrerequisites' 'ModuleLoadProblem' $a | Should -BeNullOrEmpty
        $a = @('AllSigned', [Collections.Generic.List[string]]::new(), 'C:\Modules\XFlowDelivery', $null)
        Invoke-Internal 'WindowsPrerequisites' 'ModuleLoadProblem' $a | Should -Match 'AllSigned'
        $a[3] | Should -Match 'Set-AuthenticodeSignature'
    }
}

Describe 'Windows only' {
    BeforeAll {
        if ($script:OnWindows) {
            $script:Sim = Start-XFlowSim
            $script:Native = Join-Path $script:ModuleDir "win-$(if ([Environment]::Is64BitProcess) { 'x64' } else { 'x86' })\xflow_delivery.dll"
        }
    }
    AfterAll { if ($script:OnWindows) { Stop-XFlowSim -Sim $script:Sim } }

    It 'published files are not hidden (the temp file was), in a run and in recovery alike (Windows only: NTFS attribute)' -Skip:(-not $script:OnWindows) {
        # Skipped off Windows: the Hidden attribute is an NTFS notion.
        $f = New-XFlowRunFolders -Parent $script:Work
        Add-XFlowSimDelivery -Sim $script:Sim -Delivery @(
            @{ System = 'SDLoen'; FileName = 'løn.csv'; Bytes = [byte[]](1, 2) }
            @{ System = 'Prisme'; FileName = 'G69.txt'; Bytes = [byte[]](3) }) | Out-Null
        $params = Get-XFlowDeliveryParameters -Sim $script:Sim -Folders $f
        $out = @(Invoke-XFlowDelivery @params)
        $out[-1].Delivered | Should -Be 2
        $files = @(Get-XFlowFolderFiles -Path $f.SdLoen, $f.Prisme)
        $files.Count | Should -Be 2
        @($files | Where-Object Hidden).Name | Should -BeNullOrEmpty
        @(Get-ChildItem -LiteralPath $f.SdLoen, $f.Prisme -File).Count | Should -Be 2 -Because 'Get-ChildItem without -Force sees them'
    }

    It 'a rename that meets a temp file held open by another process is retried, then published once (Windows only: sharing modes)' -Skip:(-not $script:OnWindows) {
        # Skipped off Windows: only Windows refuses a rename while another process holds the file
        # without FILE_SHARE_DELETE (what antivirus and the indexer do). A child process opens each
        # temp file as it appears and holds it for 3 seconds.
        $f = New-XFlowRunFolders -Parent $script:Work
        $holder = Join-Path $script:Work ('hold-' + [Guid]::NewGuid().ToString('N') + '.ps1')
        @'
param($Folder, $Seconds)
$deadline = [DateTime]::UtcNow.AddSeconds(60)
while ([DateTime]::UtcNow -lt $deadline) {
    foreach ($temp in [IO.Directory]::GetFiles($Folder, '.xflow-*.partial')) {
        try { $stream = [IO.File]::Open($temp, 'Open', 'Read', 'ReadWrite') } catch { continue }
        'HELD'
        Start-Sleep -Seconds $Seconds
        $stream.Dispose()
        exit 0
    }
    Start-Sleep -Milliseconds 2
}
exit 1
'@ | Set-Content -LiteralPath $holder -Encoding utf8
        $pwsh = Get-XFlowPwshCommand
        $child = Start-Process -FilePath $pwsh.FilePath -ArgumentList (@($pwsh.Prefix) + @('-NoProfile', '-File', "`"$holder`"", "`"$($f.SdLoen)`"", '3')) -PassThru -WindowStyle Hidden
        Start-Sleep -Seconds 2
        # Large enough that staging takes a while, so the holder finds the temp file before the rename.
        $bytes = [byte[]]::new(64MB); [Random]::new(7).NextBytes($bytes)
        Add-XFlowSimDelivery -Sim $script:Sim -Delivery @(@{ System = 'SDLoen'; FileName = 'stor.csv'; Bytes = $bytes }) | Out-Null
        $params = Get-XFlowDeliveryParameters -Sim $script:Sim -Folders $f -Extra @{ TimeoutSec = 120 }
        $watch = [Diagnostics.Stopwatch]::StartNew()
        $out = @(Invoke-XFlowDelivery @params)
        $child.WaitForExit(60000) | Out-Null
        $child.ExitCode | Should -Be 0 -Because 'the holder must have held the temp file during the run'
        $out[-1].Outcome | Should -Be 'Succeeded'
        $out[-1].Delivered | Should -Be 1
        $files = @(Get-XFlowFolderFiles -Path $f.SdLoen)
        $files.Name | Should -Be @('stor.csv')
        $files[0].Hidden | Should -BeFalse
        $watch.Elapsed.TotalSeconds | Should -BeLessThan 60
    }

    It 'the engine is linked with the static C runtime: it imports no vcruntime or msvcp DLL (Windows only: MSVC build)' -Skip:(-not $script:OnWindows) {
        # Skipped off Windows: only the MSVC build has these imports (.cargo/config.toml +crt-static).
        $imports = @(Invoke-Internal 'Native.PeImports' 'Read' @($script:Native))
        $imports | Should -Not -BeNullOrEmpty
        @($imports | Where-Object { $_ -match '^(vcruntime|msvcp|ucrtbase)' -or $_ -match '^api-ms-win-crt-' }) | Should -BeNullOrEmpty
    }

    It 'refuses a second, different copy of the native engine in one process (Windows only: the loader binds by base name)' -Skip:(-not $script:OnWindows) {
        # Skipped off Windows: only the Windows loader binds DllImports by base name.
        { Invoke-Internal 'Native.NativeLibraryLoader' 'RefuseAnotherCopy' @($script:Native) } | Should -Not -Throw
        $other = 'C:\Program Files\PowerShell\Modules\XFlowDelivery\9.9.9\win-x64\xflow_delivery.dll'
        $err = { Invoke-Internal 'Native.NativeLibraryLoader' 'RefuseAnotherCopy' @($other) } | Should -Throw -PassThru
        $err.Exception.Message | Should -Match 'Another copy of the XFlowDelivery native engine is already loaded'
        $err.Exception.Message | Should -Match ([regex]::Escape($script:Native))
        $err.Exception.Message | Should -Match 'new PowerShell session'
    }

    It 'a folder given as C:/x/../y with long names is normalized before the \\?\ prefix, beyond MAX_PATH (Windows only: Win32 paths)' -Skip:(-not $script:OnWindows) {
        # Skipped off Windows: verbatim paths are Win32's; the normalization is unit-tested everywhere.
        $f = New-XFlowRunFolders -Parent $script:Work
        $deep = Join-Path $f.SdLoen (('Løn ' + ('x' * 60) + '\') * 4)
        New-Item -ItemType Directory -Path "\\?\$deep" -Force | Out-Null
        $deep.Length | Should -BeGreaterThan 260
        $odd = ($deep -replace '\\', '/') + '../' + (Split-Path -Leaf $deep.TrimEnd('\'))
        Add-XFlowSimDelivery -Sim $script:Sim -Delivery @(@{ System = 'SDLoen'; FileName = ('lang ' + ('n' * 80) + '.csv'); Bytes = [byte[]](9) }) | Out-Null
        $params = Get-XFlowDeliveryParameters -Sim $script:Sim -Folders $f -Extra @{ SdLoenPath = $odd }
        $out = @(Invoke-XFlowDelivery @params)
        $out[-1].Outcome | Should -Be 'Succeeded'
        @(Get-ChildItem -LiteralPath "\\?\$deep" -File).Count | Should -Be 1
    }

    It 'Test-XFlowDeliveryConnection reports the .NET Framework release (Windows PowerShell 5.1) and the module files under the task''s execution policy (Windows only)' -Skip:(-not $script:OnWindows) {
        # Skipped off Windows: both rows are Windows-only (they say so as Skipped rows on Linux).
        $f = New-XFlowRunFolders -Parent $script:Work
        $params = Get-XFlowDeliveryParameters -Sim $script:Sim -Folders $f
        $rows = Test-XFlowDeliveryConnection @params
        $net = $rows | Where-Object Check -EQ '.NET Framework'
        if ($PSVersionTable.PSEdition -eq 'Desktop') {
            $net.Status | Should -Be 'Passed'
            $net.Detail | Should -Match '^4\.(7\.2|8|8\.1) \(Release \d+\)$'
        }
        else { $net.Status | Should -Be 'Skipped' }
        $files = $rows | Where-Object Check -EQ 'Module files and execution policy'
        $files.Status | Should -BeIn 'Passed', 'Failed'
        $files.Detail | Should -Match 'execution policy|mark of the web|Restricted|AllSigned'
    }

    It 'the state folder gets a protected ACL when created, and Test-XFlowDeliveryConnection reports one others can read (Windows only: ACLs)' -Skip:(-not $script:OnWindows) {
        # Skipped off Windows; tests/StateFolder.Tests.ps1 covers both platforms through the same cmdlets.
        $f = New-XFlowRunFolders -Parent $script:Work
        $params = Get-XFlowDeliveryParameters -Sim $script:Sim -Folders $f
        (Test-XFlowDeliveryConnection @params | Where-Object Check -EQ 'State folder access').Status | Should -Be 'Passed'
        (Get-Acl -LiteralPath $f.State).AreAccessRulesProtected | Should -BeTrue
    }
}

Describe 'On Linux the Windows-only rows say so' {
    It 'Test-XFlowDeliveryConnection marks the .NET Framework and module-file rows Skipped, with the reason' -Skip:$script:OnWindows {
        $sim = Start-XFlowSim
        try {
            $f = New-XFlowRunFolders -Parent $script:Work
            $params = Get-XFlowDeliveryParameters -Sim $sim -Folders $f
            $rows = Test-XFlowDeliveryConnection @params
            foreach ($name in '.NET Framework', 'Module files and execution policy') {
                $row = $rows | Where-Object Check -EQ $name
                $row.Status | Should -Be 'Skipped'
                $row.Detail | Should -Match 'Windows only'
            }
        }
        finally { Stop-XFlowSim -Sim $sim }
    }
}
