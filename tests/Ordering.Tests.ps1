# The order of the durability system calls, observed with strace on a child pwsh running the real
# module: LazyFS (tests/PowerCut.Tests.ps1) drops unsynced file data but not directory entries,
# so this checks the rest. For every published file:
#   1. the temp file was flushed after every write to it had returned, and before the rename (or
#      link) that published it: by its own fsync (or fdatasync), or, on file systems where that
#      stands in for every file's (ext4, XFS, Btrfs; docs/design.md), by a syncfs of its folder;
#   2. its folder's fsync started after that rename returned and ended before the acknowledgement
#      of the delivery was sent;
#   3. before that rename, a write to the journal's WAL naming the temp file (the `publishing`
#      row) and the WAL's fsync;
#   4. after the folder's fsync, a write to the journal's WAL naming the delivery before the
#      acknowledgement (the commit that records it published), and a WAL fsync after it before the
#      run ends: that commit is deferred, flushed by the next durable one (docs/design.md).
# The acknowledgement is found without guessing: the simulator runs over plain http on loopback
# (the module allows that with -AllowInsecureHttp), so the POST request and its JSON body of ids
# are readable in the traced socket writes; the ack of a delivery starts at the first write of the
# POST request whose body names it. Mode None has no acknowledgement: 1 to 3 hold, and 4 before
# the run ends; and since the server forgets a page as it hands it out, each page is durable in
# the spool before anything is made of it: its file fsynced before its rename to page-*.json,
# the spool folder fsynced after that rename, and both before the first temp file of its
# deliveries is created.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Work = New-XFlowTestDirectory -Name 'xflow-ordering'
    $script:StraceProblem = if (-not $IsLinux) { 'strace runs on Linux only' }
                            elseif (-not (Get-Command strace -ErrorAction SilentlyContinue)) { 'strace is not installed (apt-get install strace)' }
    if (-not $script:StraceProblem) { $script:Sim = Start-XFlowSim -PlainHttp }

    function script:ConvertFrom-StraceString {
        # strace's C-style escapes (\303\270, \x.., \n, \", \\) back to text (UTF-8).
        param([string]$Text)
        $bytes = [Collections.Generic.List[byte]]::new()
        for ($i = 0; $i -lt $Text.Length; $i++) {
            $c = $Text[$i]
            if ($c -ne '\' -or $i + 1 -ge $Text.Length) { $bytes.AddRange([Text.Encoding]::UTF8.GetBytes([string]$c)); continue }
            $n = $Text[++$i]
            if ($n -ge '0' -and $n -le '7') {
                $j = $i
                while ($j -lt $i + 3 -and $j -lt $Text.Length -and $Text[$j] -ge '0' -and $Text[$j] -le '7') { $j++ }
                $bytes.Add([Convert]::ToByte($Text.Substring($i, $j - $i), 8)); $i = $j - 1
            }
            elseif ($n -eq 'x') { $bytes.Add([Convert]::ToByte($Text.Substring($i + 1, 2), 16)); $i += 2 }
            else {
                $map = @{ 'n' = 10; 't' = 9; 'r' = 13; 'v' = 11; 'f' = 12; 'a' = 7; 'b' = 8 }
                if ($map.ContainsKey([string]$n)) { $bytes.Add([byte]$map[[string]$n]) } else { $bytes.AddRange([Text.Encoding]::UTF8.GetBytes([string]$n)) }
            }
        }
        [Text.Encoding]::UTF8.GetString($bytes.ToArray())
    }

    function script:Get-QuotedStrings {
        # The quoted string arguments of a strace line, decoded.
        param([string]$Arguments)
        foreach ($m in [regex]::Matches($Arguments, '"((?:[^"\\]|\\.)*)"')) { ConvertFrom-StraceString $m.Groups[1].Value }
    }

    function script:Read-StraceEvents {
        <#
        .SYNOPSIS
            The successful system calls of an `strace -f -y -yy` log, each with Entry and Exit:
            the positions where it started and returned (equal unless another thread's call came
            in between: strace then splits it into "<unfinished ...>" and "resumed").
        #>
        param([string]$Path)
        $pending = @{}
        $n = 0
        # Only lines that can matter (pwsh's own pipe writes are most of the log); order is kept.
        $lines = Select-String -LiteralPath $Path -Raw -Pattern 'fsync|syncfs|rename|link|TCP:\[|sqlite3-wal|\.partial|resumed>|unfinished'
        foreach ($line in $lines) {
            $n++
            if ($line -notmatch '^(?<pid>\d+)\s+(?<rest>.*)$') { continue }
            $procId = $Matches.pid; $rest = $Matches.rest
            if ($rest -match '^(?<name>\w+)\((?<args>.*) <unfinished \.\.\.>$') {
                $pending[$procId] = @{ Name = $Matches.name; Args = $Matches.args; Entry = $n }
                continue
            }
            $entry = $n
            if ($rest -match '^<\.\.\. (?<name>\w+) resumed>(?<tail>.*)$') {
                $start = $pending[$procId]
                if (-not $start) { continue }
                $pending.Remove($procId)
                $rest = "$($Matches.name)($($start.Args)$($Matches.tail)"
                $entry = $start.Entry
            }
            if ($rest -notmatch '^(?<name>\w+)\((?<args>.*)\)\s+=\s+(?<ret>-?\d+)') { continue }
            if ([long]$Matches.ret -lt 0) { continue }
            [pscustomobject]@{ Name = $Matches.name; Args = $Matches.args; Entry = $entry; Exit = $n; Pid = $procId }
        }
    }

    function script:Get-FdTarget {
        # What the first argument's fd names (strace -y: "12</path>"; -yy: "9<TCP:[a:p->b:q]>").
        param([string]$Arguments)
        if ($Arguments -match '^\d+<(?<target>.*?)>(,|$)') { ConvertFrom-StraceString $Matches.target }
    }

    function script:Invoke-TracedRun {
        <#
        .SYNOPSIS
            One Invoke-XFlowDelivery in a child pwsh under strace; returns the run and the parsed
            events: Syncs (path, entry, exit), Publishes (from, to), WalWrites, Sends (socket
            writes to the simulator with their request's first line), TempWrites (writes to temp
            files: path, entry, exit) and TempCreates (temp files opened for writing: path, entry).
        #>
        param($Folders, [string]$AckMode)
        $trace = Join-Path $script:Work ("trace-" + [Guid]::NewGuid().ToString('N').Substring(0, 8) + '.txt')
        # The trace goes through sed, which blanks the token header's value before anything is
        # written: the token never reaches a file.
        $redact = '|sed -E ''s/(publicapitoken: )[^\\"]*/\1<redacted>/Ig'' > ''{0}''' -f $trace
        $prefix = @('strace', '-f', '-qq', '-y', '-yy', '-s', '8192', '--seccomp-bpf', '-o', $redact,
            '-e', 'trace=openat,fsync,fdatasync,syncfs,rename,renameat,renameat2,link,linkat,write,writev,pwrite64,pwritev,sendto,sendmsg', '--')
        $run = Wait-XFlowRunOnce -Run (Start-XFlowRunOnce -Sim $script:Sim -StatePath $Folders.State -SdLoenPath $Folders.SdLoen `
                -PrismePath $Folders.Prisme -AckMode $AckMode -CommandPrefix $prefix)
        if ([IO.File]::ReadAllText($trace).Contains($script:Sim.Token)) { throw "the token reached the trace file $trace" }
        $events = @(Read-StraceEvents -Path $trace)
        $port = ([Uri]$script:Sim.BaseUrl).Port
        $syncs = [Collections.Generic.List[object]]::new()
        $publishes = [Collections.Generic.List[object]]::new()
        $walWrites = [Collections.Generic.List[object]]::new()
        $sends = [Collections.Generic.List[object]]::new()
        $tempWrites = [Collections.Generic.List[object]]::new()
        $tempCreates = [Collections.Generic.List[object]]::new()
        $requestOf = @{}
        foreach ($e in $events) {
            switch -Regex ($e.Name) {
                '^openat$' {
                    $opened = @(Get-QuotedStrings $e.Args)[0]
                    if ($opened -like '*.partial') { $tempCreates.Add([pscustomobject]@{ Path = $opened; Entry = $e.Entry }) }
                }
                '^(f(data)?sync|syncfs)$' {
                    $syncs.Add([pscustomobject]@{ Call = $e.Name; Path = (Get-FdTarget $e.Args); Entry = $e.Entry; Exit = $e.Exit })
                }
                '^(rename|renameat|renameat2|link|linkat)$' {
                    # The engine passes absolute paths; the two path arguments are the quoted ones.
                    $paths = @(Get-QuotedStrings $e.Args)
                    $publishes.Add([pscustomobject]@{ Call = $e.Name; From = $paths[0]; To = $paths[1]; Entry = $e.Entry; Exit = $e.Exit })
                }
                '^(write|writev|pwrite64|pwritev|sendto|sendmsg)$' {
                    $target = Get-FdTarget $e.Args
                    $data = (@(Get-QuotedStrings $e.Args) -join '')
                    if ($target -like '*.partial') {
                        $tempWrites.Add([pscustomobject]@{ Path = $target; Entry = $e.Entry; Exit = $e.Exit })
                    }
                    elseif ($target -like '*journal.sqlite3-wal') {
                        $walWrites.Add([pscustomobject]@{ Data = $data; Entry = $e.Entry; Exit = $e.Exit })
                    }
                    elseif ($target -match "^TCP:\[.*->127\.0\.0\.1:$port\]$") {
                        # A new request on this connection starts with its request line.
                        if ($data -match '^(GET|POST|PUT|DELETE) (\S+) HTTP/') { $requestOf[$target] = [pscustomobject]@{ Line = "$($Matches[1]) $($Matches[2])"; Entry = $e.Entry } }
                        $sends.Add([pscustomobject]@{ Request = $requestOf[$target]; Data = $data; Entry = $e.Entry; Exit = $e.Exit })
                    }
                }
            }
        }
        [pscustomobject]@{ Run = $run; Trace = $trace; Syncs = $syncs; Publishes = $publishes; WalWrites = $walWrites; Sends = $sends
            TempWrites = $tempWrites; TempCreates = $tempCreates }
    }

    function script:Test-Ordering {
        <#
        .SYNOPSIS
            The ordering violations for each delivered file of a traced run (empty when all hold).
        #>
        param($Traced, [string]$AckMode)
        $endOfRun = [int]::MaxValue
        foreach ($file in $Traced.Run.Result.delivered) {
            $id = $file.id
            $where = "$id ($($file.path))"
            $publish = @($Traced.Publishes | Where-Object To -EQ $file.path) | Select-Object -First 1
            if (-not $publish) { "${where}: no rename or link published it"; continue }
            # An empty file has no write: then its creation is what the fsync must follow.
            $written = (@($Traced.TempWrites | Where-Object Path -EQ $publish.From | ForEach-Object Exit) +
                @($Traced.TempCreates | Where-Object Path -EQ $publish.From | ForEach-Object Entry) | Measure-Object -Maximum).Maximum
            if ($null -eq $written) { "${where}: its temp file '$($publish.From)' was never seen created"; continue }
            $tempFolder = [IO.Path]::GetDirectoryName($publish.From)
            $fileSync = @($Traced.Syncs | Where-Object {
                    ($_.Path -eq $publish.From -or ($_.Call -eq 'syncfs' -and $_.Path -eq $tempFolder)) -and $_.Entry -gt $written -and $_.Exit -lt $publish.Entry })
            if (-not $fileSync) { "${where}: the temp file '$($publish.From)' was not flushed (fsync, or syncfs of its folder) after its last write (event $written) and before its $($publish.Call) (event $($publish.Entry))" }
            # The journal's `publishing` row names the temp file; it must be on disk before the
            # rename, or a cut could leave the file published and the delivery unknown.
            $tempName = [IO.Path]::GetFileName($publish.From)
            $rowWrite = @($Traced.WalWrites | Where-Object { $_.Exit -lt $publish.Entry -and $_.Data.Contains($tempName) }) | Select-Object -First 1
            if (-not $rowWrite) { "${where}: no journal (WAL) write naming its temp file '$tempName' before its $($publish.Call) (event $($publish.Entry))"; continue }
            $rowSync = @($Traced.Syncs | Where-Object { $_.Path -like '*journal.sqlite3-wal' -and $_.Entry -gt $rowWrite.Exit -and $_.Exit -lt $publish.Entry })
            if (-not $rowSync) { "${where}: the journal write naming its temp file (event $($rowWrite.Entry)) was not fsynced before its $($publish.Call) (event $($publish.Entry))" }

            $ack = $endOfRun
            if ($AckMode -eq 'Ack') {
                $posts = @($Traced.Sends | Where-Object { $_.Request -and $_.Request.Line -like 'POST *' -and $_.Data.Contains($id) })
                if (-not $posts) { "${where}: no acknowledgement naming it was sent"; continue }
                $ack = ($posts | ForEach-Object { $_.Request.Entry } | Measure-Object -Minimum).Minimum
            }
            $folder = [IO.Path]::GetDirectoryName($file.path)
            $dirSync = @($Traced.Syncs | Where-Object { $_.Path -eq $folder -and $_.Entry -gt $publish.Exit -and $_.Exit -lt $ack }) | Select-Object -First 1
            if (-not $dirSync) { "${where}: its folder was not fsynced after the $($publish.Call) (event $($publish.Exit)) and before the acknowledgement (event $ack)"; continue }
            $walWrite = @($Traced.WalWrites | Where-Object { $_.Entry -gt $dirSync.Exit -and $_.Exit -lt $ack -and $_.Data.Contains($id) }) | Select-Object -First 1
            if (-not $walWrite) { "${where}: no journal (WAL) write naming it after the folder's fsync (event $($dirSync.Exit)) and before the acknowledgement (event $ack)"; continue }
            # That commit is deferred (journal.rs, `Durability::Later`): flushed by a later one.
            $walSync = @($Traced.Syncs | Where-Object { $_.Path -like '*journal.sqlite3-wal' -and $_.Entry -gt $walWrite.Exit })
            if (-not $walSync) { "${where}: the journal write (event $($walWrite.Entry)) was never fsynced before the run ended" }
        }
    }

    function script:Test-SpoolOrdering {
        <#
        .SYNOPSIS
            Mode None: the violations of "each page durable in the spool before anything is made
            of it" (empty when it holds), and how many spooled pages were judged.
        #>
        param($Traced)
        $pages = @($Traced.Publishes | Where-Object { $_.To -match '[\\/]spool[\\/]page-[^\\/]*\.json$' })
        [pscustomobject]@{ Pages = $pages.Count; Violations = @(foreach ($page in $pages) {
            $where = "spooled page $($page.To)"
            if (-not @($Traced.Syncs | Where-Object { $_.Path -eq $page.From -and $_.Exit -lt $page.Entry })) { "${where}: its file '$($page.From)' was not fsynced before its $($page.Call) (event $($page.Entry))" }
            $spool = [IO.Path]::GetDirectoryName($page.To)
            $dirSync = @($Traced.Syncs | Where-Object { $_.Path -eq $spool -and $_.Entry -gt $page.Exit }) | Select-Object -First 1
            if (-not $dirSync) { "${where}: the spool folder was not fsynced after its $($page.Call) (event $($page.Exit))"; continue }
            # The page's deliveries are staged after it is spooled and before the next page is fetched.
            $firstTemp = @($Traced.TempCreates | Where-Object Entry -GT $page.Exit) | Select-Object -First 1
            if ($firstTemp -and $firstTemp.Entry -lt $dirSync.Exit) { "${where}: the temp file '$($firstTemp.Path)' was created (event $($firstTemp.Entry)) before the spool folder's fsync returned (event $($dirSync.Exit))" }
        }) }
    }
}

AfterAll {
    if ($script:Sim) { Stop-XFlowSim -Sim $script:Sim }
    Remove-Item -LiteralPath $script:Work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'System-call order of the publish protocol (strace on the real module)' {
    It 'mode <AckMode>: temp fsync and a flushed publishing row before the rename, folder fsync after it, the published commit before the acknowledgement (mode None: each page durable in the spool first)' -ForEach @(
        @{ AckMode = 'Ack' }
        @{ AckMode = 'None' }
    ) {
        if ($script:StraceProblem) { Set-ItResult -Skipped -Because $script:StraceProblem; return }
        Reset-XFlowSim -Sim $script:Sim
        # Three pages over both folders, so the order is checked across pages and folders.
        Invoke-XFlowSimControl -Sim $script:Sim -Method PUT -Path 'settings' -Body @{ mode = $AckMode; pageSize = 4 } | Out-Null
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'generate' -Body @{ count = 10; size = 3000; kind = 'random'; systems = @('SDLoen', 'Prisme') } | Out-Null
        $folders = New-XFlowRunFolders -Parent $script:Work

        $traced = Invoke-TracedRun -Folders $folders -AckMode $AckMode

        $traced.Run.ExitCode | Should -Be 0 -Because $traced.Run.Output
        @($traced.Run.Result.delivered).Count | Should -Be 10
        $traced.Publishes.Count | Should -BeGreaterOrEqual 10 -Because 'the trace must show the renames it judges'
        if ($AckMode -eq 'Ack') { @($traced.Sends | Where-Object { $_.Request.Line -like 'POST *' }).Count | Should -BeGreaterOrEqual 3 -Because 'one acknowledgement per page' }
        $violations = @(Test-Ordering -Traced $traced -AckMode $AckMode)
        if ($AckMode -eq 'None') {
            $spooled = Test-SpoolOrdering -Traced $traced
            $spooled.Pages | Should -BeGreaterOrEqual 3 -Because 'every page is spooled before it is read'
            $violations += $spooled.Violations
        }
        $violations -join "`n" | Should -BeNullOrEmpty
        # The files are really there (the trace judged a real run).
        foreach ($f in $traced.Run.Result.delivered) { (Get-FileHash -LiteralPath $f.path -Algorithm SHA256).Hash.ToLowerInvariant() | Should -Be $f.sha256.ToLowerInvariant() }
    }
}
