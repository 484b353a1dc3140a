# The package an administrator installs (build.ps1 -Package, build/Package.ps1): one version in
# manifest, assembly and library; a stripped library with its symbols beside the package; a
# nupkg that PSResourceGet installs from a folder repository into a fresh pwsh that imports the
# module by name and delivers; and a registered task that survives Update-PSResource and the
# removal of the old version. Every PSResourceGet step runs in a child pwsh whose HOME is a temp
# folder, so the user's own modules and repositories are never touched.
BeforeDiscovery {
    # Packaging (Compress-PSResource) and PSResourceGet need PowerShell 7.4 or later.
    $script:NotHere = if ($PSVersionTable.PSVersion -lt [version]'7.4') { "PowerShell $($PSVersionTable.PSVersion): build/Package.ps1 and PSResourceGet need PowerShell 7.4 or later (tested in the PowerShell 7 run)" }
    if ($script:NotHere) { Write-Host "Package.Tests.ps1 skipped: $script:NotHere" }
}

BeforeAll {
    if ($PSVersionTable.PSVersion -lt [version]'7.4') { return } # every test here is skipped, with the reason
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Root = Get-XFlowRepoRoot
    $script:Work = New-XFlowTestDirectory -Name 'xflow-package'
    $script:ModulePath = Split-Path -Parent (Get-XFlowModuleManifest)
    $script:NativePath = Join-Path $script:Root 'out/native'
    $script:PackageScript = Join-Path $script:Root 'build/Package.ps1'
    $script:Version = (Import-PowerShellDataFile -LiteralPath (Get-XFlowModuleManifest)).ModuleVersion
    $script:Rid = (Get-ChildItem -LiteralPath $script:ModulePath -Directory | Where-Object Name -Match '^(linux|osx|win)-').Name
    $script:Pwsh = Join-Path $PSHOME $(if ($IsWindows) { 'pwsh.exe' } else { 'pwsh' })

    function script:New-Package {
        param([string]$OutputPath, [string]$Version, [string]$NativeArtifacts)
        $params = @{ ModulePath = $script:ModulePath; NativePath = $script:NativePath; OutputPath = $OutputPath }
        if ($Version) { $params.Version = $Version }
        if ($NativeArtifacts) { $params.NativeArtifacts = $NativeArtifacts }
        & $script:PackageScript @params 6>$null
    }

    function script:Get-ZipEntries {
        param([string]$Path)
        Add-Type -AssemblyName System.IO.Compression.FileSystem
        $zip = [IO.Compression.ZipFile]::OpenRead($Path)
        try { @($zip.Entries | ForEach-Object FullName) } finally { $zip.Dispose() }
    }

    $script:Pkg1 = New-Package -OutputPath (Join-Path $script:Work 'pkg1')
    # A later release: the same module under the next minor version.
    $next = [version]$script:Version
    $script:NextVersion = "$($next.Major).$($next.Minor + 1).0"

    # The administrator's machine: its own HOME (modules installed for the current user, the
    # PSResourceGet repository list) and a default PSModulePath computed from it.
    $script:AdminHome = Join-Path $script:Work 'home'
    $script:AdminEnv = @{
        HOME = $script:AdminHome; USERPROFILE = $script:AdminHome
        XDG_DATA_HOME = Join-Path $script:AdminHome '.local/share'; XDG_CONFIG_HOME = Join-Path $script:AdminHome '.config'
        XDG_CACHE_HOME = Join-Path $script:AdminHome '.cache'; PSModulePath = $null
    }
    # .NET reports a special folder that does not exist yet as '' (PSResourceGet would then keep
    # its repository list relative to the working directory).
    New-Item -ItemType Directory -Path $script:AdminEnv.XDG_DATA_HOME, $script:AdminEnv.XDG_CONFIG_HOME, $script:AdminEnv.XDG_CACHE_HOME -Force | Out-Null
    function script:Invoke-AsAdmin {
        # A script in a fresh `pwsh -NoProfile -NonInteractive -File` with the administrator's
        # environment; stops at the first error. Returns ExitCode and Output.
        param([string]$Script, [string[]]$ArgumentList = @(), [hashtable]$Extra = @{})
        $file = Join-Path $script:Work ("step-" + [Guid]::NewGuid().ToString('N').Substring(0, 8) + '.ps1')
        # After the param block, which must come first.
        $text = [regex]::Replace($Script, '^(param\([^\r\n]*\)\r?\n)?', { param($m) $m.Value + "`$ErrorActionPreference = 'Stop'`n" })
        Set-Content -LiteralPath $file -Encoding utf8 -Value $text
        $environment = $script:AdminEnv.Clone()
        foreach ($k in $Extra.Keys) { $environment[$k] = $Extra[$k] }
        Invoke-XFlowProcess -FilePath $script:Pwsh -ArgumentList (@('-NoProfile', '-NonInteractive', '-File', $file) + $ArgumentList) -Environment $environment -WorkingDirectory $script:AdminHome
    }
}

AfterAll {
    if ($script:Work) { Remove-Item -LiteralPath $script:Work -Recurse -Force -ErrorAction SilentlyContinue }
}

Describe 'One version: manifest, assembly, Cargo workspace and the native library' -Skip:([bool]$NotHere) {
    It 'agree' {
        $Version = $script:Version
        $cargo = (Select-String -LiteralPath (Join-Path $script:Root 'Cargo.toml') -Pattern '^version\s*=\s*"([^"]+)"' | Select-Object -First 1).Matches[0].Groups[1].Value
        $cargo | Should -Be $Version
        $assembly = [Reflection.AssemblyName]::GetAssemblyName((Join-Path $script:ModulePath 'XFlowDelivery.dll')).Version
        $assembly.ToString(3) | Should -Be $Version
        # The engine announces itself to XFlow as XFlowDelivery/<version> (its User-Agent).
        $library = Get-ChildItem -LiteralPath (Join-Path $script:ModulePath $script:Rid) -File
        $bytes = [Text.Encoding]::Latin1.GetString([IO.File]::ReadAllBytes($library.FullName))
        $bytes.Contains("XFlowDelivery/$Version") | Should -BeTrue -Because "$($library.Name) is the engine of version $Version"
    }
}

Describe 'The shipped native library' -Skip:([bool]$NotHere) {
    It 'is stripped, with its symbols kept beside it in out/native (Linux: .gnu_debuglink)' {
        if (-not $IsLinux) { Set-ItResult -Skipped -Because 'ELF sections are checked on Linux; the Windows DLL never holds its symbols (they are in the .pdb)'; return }
        $shipped = Join-Path $script:ModulePath "$script:Rid/xflow_delivery.so"
        $symbols = Join-Path $script:NativePath "$script:Rid/xflow_delivery.so.debug"
        Test-Path -LiteralPath $symbols | Should -BeTrue
        $sections = (& readelf -S -W $shipped) -join "`n"
        $sections | Should -Not -Match '\.symtab\b' -Because 'the static symbol table is stripped'
        $sections | Should -Not -Match '\.debug_'
        $sections | Should -Match '\.gnu_debuglink'
        $sections | Should -Match '\.dynsym' -Because 'the exported functions stay callable'
        ((& readelf -S -W $symbols) -join "`n") | Should -Match '\.symtab\b'
        (Get-Item -LiteralPath $shipped).Length | Should -BeLessThan ((Get-Item -LiteralPath $symbols).Length + (Get-Item -LiteralPath $shipped).Length)
    }
}

Describe 'build/Package.ps1 (build.ps1 -Package)' -Skip:([bool]$NotHere) {
    It 'writes XFlowDelivery.<version>.nupkg with the module files and this platform''s library, and the symbols beside it' {
        $script:Pkg1.Path | Should -Be (Join-Path $script:Work "pkg1/XFlowDelivery.$script:Version.nupkg")
        $entries = Get-ZipEntries $script:Pkg1.Path
        foreach ($file in 'XFlowDelivery.psd1', 'XFlowDelivery.dll', 'XFlowDelivery.Format.ps1xml', 'XFlowDelivery.Task.ps1',
            'en-US/XFlowDelivery.dll-Help.xml', 'XFlowDelivery.nuspec') {
            $entries | Should -Contain $file
        }
        @($entries | Where-Object { $_ -like "$script:Rid/*" }) | Should -Be @("$script:Rid/$((Get-ChildItem -LiteralPath (Join-Path $script:ModulePath $script:Rid) -File).Name)")
        @($entries | Where-Object { $_ -match '\.(debug|pdb)$' }).Count | Should -Be 0 -Because 'symbols are not shipped'
        $script:Pkg1.Platforms | Should -Be @($script:Rid)
        if ($IsLinux) { Test-Path -LiteralPath (Join-Path $script:Pkg1.Symbols "$script:Rid/xflow_delivery.so.debug") | Should -BeTrue }
    }

    It 'adds the libraries of other platforms from -NativeArtifacts, symbols apart, and refuses a folder that is not <os>-<arch>' {
        # Layout only: the library of this platform stands in for another platform's build.
        $artifacts = Join-Path $script:Work 'artifacts'
        $library = Get-ChildItem -LiteralPath (Join-Path $script:NativePath $script:Rid) -File | Where-Object Extension -NotIn '.debug', '.pdb' | Select-Object -First 1
        $other = ($script:Rid -replace '-x64$', '-arm64')
        New-Item -ItemType Directory -Path (Join-Path $artifacts $other), (Join-Path $artifacts $script:Rid) -Force | Out-Null
        Copy-Item -LiteralPath $library.FullName -Destination (Join-Path $artifacts $other)
        Set-Content -LiteralPath (Join-Path $artifacts "$other/$($library.Name).debug") -Value 'symbols'
        Copy-Item -LiteralPath $library.FullName -Destination (Join-Path $artifacts $script:Rid)
        $pkg = New-Package -OutputPath (Join-Path $script:Work 'pkg-multi') -NativeArtifacts $artifacts
        $pkg.Platforms | Should -Be @($script:Rid, $other)
        $entries = Get-ZipEntries $pkg.Path
        $entries | Should -Contain "$other/$($library.Name)"
        $entries | Should -Not -Contain "$other/$($library.Name).debug"
        Test-Path -LiteralPath (Join-Path $pkg.Symbols "$other/$($library.Name).debug") | Should -BeTrue

        New-Item -ItemType Directory -Path (Join-Path $artifacts 'x64') | Out-Null
        { New-Package -OutputPath (Join-Path $script:Work 'pkg-bad') -NativeArtifacts $artifacts } | Should -Throw '*must be named <os>-<arch>*'
    }
}

Describe 'Installed from a folder repository with PSResourceGet (child pwsh, temporary HOME)' -Skip:([bool]$NotHere) {
    BeforeAll {
        $script:Sim = Start-XFlowSim
        $script:Repo = Join-Path $script:Work 'repo'
        New-Item -ItemType Directory -Path $script:Repo | Out-Null
        $script:Pkg2 = New-Package -OutputPath (Join-Path $script:Work 'pkg2') -Version $script:NextVersion
        $script:Run = [pscustomobject]@{
            Root = Join-Path $script:Work 'run'
            SdLoen = Join-Path $script:Work 'run/SD Løn'; Prisme = Join-Path $script:Work 'run/Prisme'
            State = Join-Path $script:Work 'run/state'; Config = Join-Path $script:Work 'run/config.json'
        }
        New-Item -ItemType Directory -Path $script:Run.SdLoen, $script:Run.Prisme -Force | Out-Null
        $script:Definition = $null
    }
    AfterAll { Stop-XFlowSim -Sim $script:Sim }

    It 'publishes, installs for the current user, imports by name in a fresh pwsh, delivers, and generates the task definition' {
        $install = Invoke-AsAdmin -ArgumentList $script:Repo, $script:Pkg1.Path -Script @'
param($Repo, $Nupkg)
Register-PSResourceRepository -Name XFlowLocal -Uri $Repo -Trusted
Publish-PSResource -NupkgPath $Nupkg -Repository XFlowLocal
Install-PSResource -Name XFlowDelivery -Repository XFlowLocal -Scope CurrentUser
Get-InstalledPSResource -Name XFlowDelivery | ForEach-Object { "INSTALLED $($_.Version) $($_.InstalledLocation)" }
'@
        $install.ExitCode | Should -Be 0 -Because $install.Output
        $install.Output | Should -Match "INSTALLED $([regex]::Escape($script:Version)) "
        Test-Path -LiteralPath (Join-Path $script:Repo "XFlowDelivery.$script:Version.nupkg") | Should -BeTrue
        Test-Path -LiteralPath (Join-Path $script:AdminEnv.XDG_DATA_HOME "powershell/Modules/XFlowDelivery/$script:Version/XFlowDelivery.psd1") | Should -BeTrue

        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'generate' -Body @{ count = 2; systems = @('SDLoen', 'Prisme') } | Out-Null
        $use = Invoke-AsAdmin -Extra @{ XFLOW_TEST_TOKEN = $script:Sim.Token } `
            -ArgumentList $script:Sim.BaseUrl, $script:Sim.CaPath, $script:Run.SdLoen, $script:Run.Prisme, $script:Run.State, $script:Run.Config -Script @'
param($BaseUrl, $CaPath, $SdLoen, $Prisme, $State, $Config)
Import-Module XFlowDelivery
$m = Get-Module XFlowDelivery
"MODULE $($m.Version) $($m.ModuleBase)"
New-XFlowDeliveryConfig -Path $Config -BaseUrl $BaseUrl -ApiToken (ConvertTo-SecureString $env:XFLOW_TEST_TOKEN -AsPlainText -Force) `
    -SdLoenPath $SdLoen -PrismePath $Prisme -StatePath $State -CaCertificatePath $CaPath -WarningAction SilentlyContinue | Out-Null
Invoke-XFlowDelivery -ConfigPath $Config | ForEach-Object { if ($_.PSObject.Properties['Path']) { "DELIVERED $($_.System)" } }
$task = Register-XFlowDeliveryTask -ConfigPath $Config -Account ([Environment]::UserName) -WhatIf -WarningVariable w
"WARNINGS $($w.Count)"
'DEFINITION-BEGIN'
$task.Definition
'DEFINITION-END'
$null = Register-XFlowDeliveryTask -ConfigPath $Config -Account 'svc-other' -WhatIf -WarningVariable other -WarningAction SilentlyContinue
"OTHER-ACCOUNT-WARNING $other"
'@
        $use.ExitCode | Should -Be 0 -Because $use.Output
        $use.Output | Should -Match "MODULE $([regex]::Escape($script:Version)) .*[\\/]powershell[\\/]Modules[\\/]XFlowDelivery[\\/]$([regex]::Escape($script:Version))"
        @([regex]::Matches($use.Output, 'DELIVERED (SDLoen|Prisme)')).Count | Should -Be 2
        @(Get-ChildItem -LiteralPath $script:Run.SdLoen, $script:Run.Prisme -File).Count | Should -Be 2
        $use.Output | Should -Match 'WARNINGS 0'
        $use.Output | Should -Match 'OTHER-ACCOUNT-WARNING .*of the current user only'
        $use.Output.Contains($script:Sim.Token) | Should -BeFalse
        $script:Definition = ([regex]::Match($use.Output, '(?s)DEFINITION-BEGIN\r?\n(.*)DEFINITION-END')).Groups[1].Value
        $script:Definition | Should -Match '(?m)^ExecStart='
        # It names the copy that runs now; an update is found at run time (next test).
        $script:Definition | Should -Match ([regex]::Escape("Import-Module -Name '") + "[^']*" + [regex]::Escape("XFlowDelivery/$script:Version/XFlowDelivery.dll' -ErrorAction Stop"))
    }

    It 'the task''s exact command line still runs after Update-PSResource to a new version (the run handed to it), and after removal of the old one (found by name), exit code 0' {
        if (-not $script:Definition) { throw 'the previous test did not produce a task definition' }
        # Exactly what systemd runs: ExecStart's argv, as the same user (same HOME).
        $argv = Split-XFlowSystemdCommand ([regex]::Match($script:Definition, '(?m)^ExecStart=(.*)$')).Groups[1].Value
        $runTask = { Invoke-XFlowProcess -FilePath $argv[0] -ArgumentList $argv[1..($argv.Count - 1)] -Environment $script:AdminEnv -WorkingDirectory $script:AdminHome }
        $update = Invoke-AsAdmin -ArgumentList $script:Pkg2.Path -Script @'
param($Nupkg)
Publish-PSResource -NupkgPath $Nupkg -Repository XFlowLocal
Update-PSResource -Name XFlowDelivery -Repository XFlowLocal -Scope CurrentUser
Get-InstalledPSResource -Name XFlowDelivery | ForEach-Object { "INSTALLED $($_.Version)" }
'@
        $update.ExitCode | Should -Be 0 -Because $update.Output
        @([regex]::Matches($update.Output, 'INSTALLED (\S+)') | ForEach-Object { $_.Groups[1].Value } | Sort-Object) | Should -Be @(@($script:Version, $script:NextVersion) | Sort-Object)
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'generate' -Body @{ count = 1; systems = @('SDLoen') } | Out-Null
        $run = & $runTask
        $run.ExitCode | Should -Be 0 -Because $run.Output
        $run.Output | Should -Match 'Succeeded; 1 delivered'
        @(Get-ChildItem -LiteralPath $script:Run.SdLoen, $script:Run.Prisme -File).Count | Should -Be 3

        $remove = Invoke-AsAdmin -ArgumentList $script:Version -Script @'
param($Old)
Uninstall-PSResource -Name XFlowDelivery -Version $Old -Scope CurrentUser
Get-InstalledPSResource -Name XFlowDelivery | ForEach-Object { "INSTALLED $($_.Version)" }
'@
        $remove.ExitCode | Should -Be 0 -Because $remove.Output
        @([regex]::Matches($remove.Output, 'INSTALLED (\S+)') | ForEach-Object { $_.Groups[1].Value }) | Should -Be @($script:NextVersion)
        Test-Path -LiteralPath (Join-Path $script:AdminEnv.XDG_DATA_HOME "powershell/Modules/XFlowDelivery/$script:Version") | Should -BeFalse
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'generate' -Body @{ count = 1; systems = @('SDLoen') } | Out-Null
        $run = & $runTask
        $run.ExitCode | Should -Be 0 -Because $run.Output
        $run.Output | Should -Match 'Succeeded; 1 delivered'
        @(Get-ChildItem -LiteralPath $script:Run.SdLoen, $script:Run.Prisme -File).Count | Should -Be 4
    }
}
