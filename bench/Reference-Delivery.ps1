<#
.SYNOPSIS
    The reference for build/Bench.ps1: an XFlow delivery script written the way such
    integrations are written today. Not part of the module; never use it in production.

.DESCRIPTION
    Invoke-RestMethod GET a page of pending deliveries, then for each delivery
    [Convert]::FromBase64String and [IO.File]::WriteAllBytes straight to the final path, then
    Invoke-RestMethod POST the page's ids to the ack endpoint; loop while hasMore.

    What it does not do (what XFlowDelivery adds): no fsync, no temp file and atomic rename (a
    crash leaves a half-written file under the final name), no sha256 check, no journal, no
    safe file names, no protection against replacing an existing file.

    It acknowledges once per page, not once per file: fewer requests, so the comparison favours
    the reference. Same page size as the engine's default (100).

    Certificate trust: pwsh 7's -SkipCertificateCheck, for the simulator's loopback CA only
    (bench use; the module instead trusts the CA file given by -CaCertificatePath).

    The token comes from the environment variable XFLOW_API_TOKEN, never a parameter (a
    parameter would show up in the process's command line).

    Prints one line of JSON: delivered, pages, milliseconds (the loop only, not pwsh start-up).
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string]$BaseUrl,
    [Parameter(Mandatory)][string]$SdLoenPath,
    [Parameter(Mandatory)][string]$PrismePath,
    [ValidateRange(1, 100000)][int]$PageSize = 100,
    [ValidateRange(1, 1000000)][int]$MaxPages = 1000
)
$ErrorActionPreference = 'Stop'

$watch = [Diagnostics.Stopwatch]::StartNew()
$headers = @{ publicApiToken = $env:XFLOW_API_TOKEN }
$base = $BaseUrl.TrimEnd('/')
$folders = @{ SDLoen = $SdLoenPath; Prisme = $PrismePath }
$delivered = 0
$pages = 0

do {
    $page = Invoke-RestMethod -Uri "$base/deliveries?systems=SDLoen,Prisme&limit=$PageSize" `
        -Headers $headers -SkipCertificateCheck
    $pages++
    $ids = @()
    foreach ($d in $page.deliveries) {
        $bytes = [Convert]::FromBase64String($d.content)
        [IO.File]::WriteAllBytes((Join-Path $folders[$d.system] $d.fileName), $bytes)
        $ids += $d.id
        $delivered++
    }
    if ($ids.Count -gt 0) {
        Invoke-RestMethod -Uri "$base/deliveries/ack" -Method Post -Headers $headers -SkipCertificateCheck `
            -ContentType 'application/json' -Body (ConvertTo-Json -InputObject @{ ids = $ids } -Compress) | Out-Null
    }
} while ($page.hasMore -and $ids.Count -gt 0 -and $pages -lt $MaxPages)

$watch.Stop()
[pscustomobject]@{ delivered = $delivered; pages = $pages; milliseconds = $watch.Elapsed.TotalMilliseconds } |
    ConvertTo-Json -Compress
