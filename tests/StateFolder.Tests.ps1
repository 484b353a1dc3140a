# The state folder holds personal data (journal, spool, quarantine): created readable by its
# owner only, an existing readable one reported and then restricted with a warning, and refused
# on a network file system. Also the proxy row of Test-XFlowDeliveryConnection.
BeforeDiscovery {
    # -Skip conditions are evaluated at discovery, before BeforeAll.
    $script:OnWindows = $IsWindows -or $PSVersionTable.PSEdition -eq 'Desktop'
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Work = New-XFlowTestDirectory -Name 'xflow-statefolder'
    Push-Location $script:Work
    Import-Module (Get-XFlowModuleManifest) -Force
    $script:Sim = Start-XFlowSim
    $script:OnWindows = $IsWindows -or $PSVersionTable.PSEdition -eq 'Desktop'

    # Unix: every path under (and including) $Path whose mode gives group or others any access.
    function script:Get-ExposedPath {
        param([string]$Path)
        @(Get-Item -LiteralPath $Path -Force) + @(Get-ChildItem -LiteralPath $Path -Recurse -Force) |
            Where-Object { ([int]$_.UnixFileMode -band 0x3F) -ne 0 } | ForEach-Object FullName
    }

    # Windows: the identities an ACL allows anything, and whether inheritance is cut.
    function script:Get-AclSummary {
        param([string]$Path)
        $acl = Get-Acl -LiteralPath $Path
        [pscustomobject]@{
            Protected  = $acl.AreAccessRulesProtected
            Identities = @($acl.Access | Where-Object AccessControlType -EQ 'Allow' |
                    ForEach-Object { $_.IdentityReference.Translate([Security.Principal.SecurityIdentifier]).Value } | Sort-Object -Unique)
        }
    }
}

AfterAll {
    Stop-XFlowSim -Sim $script:Sim
    Pop-Location
    Remove-Item -LiteralPath $script:Work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Who can read the state folder' {
    BeforeEach { Reset-XFlowSim -Sim $script:Sim }

    It 'a first run creates the state folder, journal, spool and quarantine readable by their owner only' {
        $f = New-XFlowRunFolders -Parent $script:Work
        # Text, so that the content check (SD Løn: Warn by default) has nothing to say either.
        Add-XFlowSimDelivery -Sim $script:Sim -Delivery @(@{ System = 'SDLoen'; FileName = 'løn.csv'; Bytes = [Text.Encoding]::UTF8.GetBytes("CPR;Beløb`r`n") }) | Out-Null
        $params = Get-XFlowDeliveryParameters -Sim $script:Sim -Folders $f -Extra @{ AckMode = 'None' }
        $out = @(Invoke-XFlowDelivery @params -WarningVariable warnings -WarningAction SilentlyContinue)
        $out[-1].Outcome | Should -Be 'Succeeded'
        $warnings | Should -BeNullOrEmpty -Because 'a new state folder is private from the start; nothing to tighten'
        foreach ($name in 'journal.sqlite3', 'spool', 'quarantine', 'run.lock') {
            Test-Path -LiteralPath (Join-Path $f.State $name) | Should -BeTrue -Because "$name belongs to a state folder"
        }
        if ($script:OnWindows) {
            $acl = Get-AclSummary $f.State
            $acl.Protected | Should -BeTrue -Because 'nothing may be inherited from the parent folder'
            $me = [Security.Principal.WindowsIdentity]::GetCurrent().User.Value
            $acl.Identities | Should -Be (@('S-1-5-18', 'S-1-5-32-544', $me) | Sort-Object -Unique)
        }
        else {
            (Get-Item -LiteralPath $f.State).UnixFileMode | Should -Be ([IO.UnixFileMode]'UserRead, UserWrite, UserExecute')
            (Get-Item -LiteralPath (Join-Path $f.State 'journal.sqlite3')).UnixFileMode | Should -Be ([IO.UnixFileMode]'UserRead, UserWrite')
            Get-ExposedPath $f.State | Should -BeNullOrEmpty -Because 'folders 0700, files 0600, the journal''s -wal/-shm included'
        }
    }

    It 'a state folder others can read is reported by Test-XFlowDeliveryConnection and Get-XFlowDeliveryStatus, then restricted by the next run, with a warning' {
        $f = New-XFlowRunFolders -Parent $script:Work
        $params = Get-XFlowDeliveryParameters -Sim $script:Sim -Folders $f
        (Invoke-XFlowDelivery @params)[-1].Outcome | Should -Be 'Succeeded'
        if ($script:OnWindows) {
            # As an administrator would leave it: inherited, and readable by every local user.
            $acl = Get-Acl -LiteralPath $f.State
            $acl.SetAccessRuleProtection($false, $false)
            $acl.AddAccessRule([Security.AccessControl.FileSystemAccessRule]::new(
                    [Security.Principal.SecurityIdentifier]'S-1-5-32-545', 'ReadAndExecute', 'ContainerInherit, ObjectInherit', 'None', 'Allow'))
            Set-Acl -LiteralPath $f.State -AclObject $acl
        }
        else {
            # As `mkdir` and a default umask would have left it.
            chmod 0755 $f.State
            chmod 0644 (Join-Path $f.State 'journal.sqlite3')
        }

        $check = Test-XFlowDeliveryConnection @params | Where-Object Check -EQ 'State folder access'
        $check.Status | Should -Be 'Failed'
        $check.Detail | Should -Match 'other accounts can read'
        $check.Remedy | Should -Match 'next run restricts it'

        $status = Get-XFlowDeliveryStatus -StatePath $f.State -WarningVariable statusWarnings -WarningAction SilentlyContinue
        $status.StateFolderExposure | Should -Not -BeNullOrEmpty
        $status.Healthy | Should -BeFalse
        ($statusWarnings -join ' ') | Should -Match 'personal data'

        $out = @(Invoke-XFlowDelivery @params -WarningVariable runWarnings -WarningAction SilentlyContinue)
        $out[-1].Outcome | Should -Be 'Succeeded'
        @($runWarnings | Where-Object { "$_" -match 'now restricted to its owner' }).Count | Should -Be 1
        if ($script:OnWindows) { (Get-AclSummary $f.State).Protected | Should -BeTrue }
        else { Get-ExposedPath $f.State | Should -BeNullOrEmpty }
        (Get-XFlowDeliveryStatus -StatePath $f.State).StateFolderExposure | Should -BeNullOrEmpty
        (Test-XFlowDeliveryConnection @params | Where-Object Check -EQ 'State folder access').Status | Should -Be 'Passed'

        $again = @(Invoke-XFlowDelivery @params -WarningVariable quiet -WarningAction SilentlyContinue)
        $again[-1].Outcome | Should -Be 'Succeeded'
        $quiet | Should -BeNullOrEmpty -Because 'it is said once, when it is restricted'
    }

    It 'a state folder on a UNC path (an SMB share) is refused with StateFolderOnNetworkShare, naming the reason (Windows only: UNC paths)' -Skip:(-not $script:OnWindows) {
        # Skipped off Windows: a UNC path is a Windows notion. The engine refuses it before touching it.
        $f = New-XFlowRunFolders -Parent $script:Work
        $params = Get-XFlowDeliveryParameters -Sim $script:Sim -Folders $f -Extra @{ StatePath = '\\127.0.0.1\C$\XFlowDeliveryTestState' }
        $err = { Invoke-XFlowDelivery @params } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'StateFolderOnNetworkShare,*'
        $err.Exception.Message | Should -Match 'local disk'
        $err.Exception.Message | Should -Match 'import folders may stay on shares'
    }

    It 'a state folder on an NFS or SMB mount is refused with StateFolderOnNetworkShare (only where such a mount exists)' -Skip:($script:OnWindows -or -not (Get-Content /proc/mounts -ErrorAction SilentlyContinue | Where-Object { ($_ -split ' ')[2] -in 'nfs', 'nfs4', 'cifs', 'smb3' })) {
        # Runs only where such a mount exists (none on the build machines: the statfs magic numbers
        # are unit-tested in rust/xflow-engine/src/state_access.rs instead).
        $mount = (Get-Content /proc/mounts | Where-Object { ($_ -split ' ')[2] -in 'nfs', 'nfs4', 'cifs', 'smb3' } | Select-Object -First 1) -split ' '
        $f = New-XFlowRunFolders -Parent $script:Work
        $params = Get-XFlowDeliveryParameters -Sim $script:Sim -Folders $f -Extra @{ StatePath = (Join-Path $mount[1] 'xflow-state-test') }
        $err = { Invoke-XFlowDelivery @params } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'StateFolderOnNetworkShare,*'
    }
}

Describe 'The proxy in use' {
    It 'Test-XFlowDeliveryConnection names the proxy and where it came from, never its password' {
        $f = New-XFlowRunFolders -Parent $script:Work
        $params = Get-XFlowDeliveryParameters -Sim $script:Sim -Folders $f -Extra @{ ProxyUrl = [uri]'http://svc:Pr0xyS3cret@127.0.0.1:9' }
        $row = Test-XFlowDeliveryConnection @params | Where-Object Check -EQ 'Proxy'
        $row.Status | Should -Be 'Passed'
        $row.Detail | Should -Match '127\.0\.0\.1:9.*\(from -ProxyUrl\)'
        $row.Detail | Should -Not -Match 'Pr0xyS3cret'
    }

    It 'with no proxy configured anywhere, the machine-wide WinHTTP proxy is used and reported (Windows only: WinHTTP)' -Skip:(-not $script:OnWindows) {
        # Skipped off Windows: WinHTTP exists only there. Sets and resets the machine's WinHTTP
        # proxy (CI runners are administrators); a child process so that no proxy variable applies.
        netsh winhttp set proxy proxy-server="proxy.invalid:3128" bypass-list="<local>;*.kommune.local" | Out-Null
        try {
            $f = New-XFlowRunFolders -Parent $script:Work
            $script = "Import-Module '$(Get-XFlowModuleManifest)'; " +
                "(Test-XFlowDeliveryConnection -BaseUrl '$($script:Sim.BaseUrl)' -ApiToken (ConvertTo-SecureString x -AsPlainText -Force) " +
                "-SdLoenPath '$($f.SdLoen)' -StatePath '$($f.State)' -TimeoutSec 5 | Where-Object Check -EQ 'Proxy').Detail"
            $pwsh = Get-XFlowPwshCommand
            $env:HTTPS_PROXY = $null; $env:ALL_PROXY = $null
            $detail = & $pwsh.FilePath @($pwsh.Prefix) -NoProfile -NonInteractive -Command $script
            "$detail" | Should -Match 'http://proxy\.invalid:3128 \(from WinHTTP \(machine\)\)'
            "$detail" | Should -Match 'kommune\.local'
        }
        finally { netsh winhttp reset proxy | Out-Null }
    }
}
