//! Which proxy the HTTP client uses, and why.
//!
//! reqwest 0.13 with `system-proxy` (hyper-util's `proxy::Matcher::from_system`) reads, for an
//! https URL: `HTTPS_PROXY`, then `ALL_PROXY` (either case), with `NO_PROXY`; and on Windows,
//! only when those are empty, the per-user WinINet settings (`HKCU\Software\Microsoft\Windows\
//! CurrentVersion\Internet Settings`: `ProxyEnable`, `ProxyServer`, `ProxyOverride`). A service
//! account, a gMSA above all, has no per-user settings; servers set the machine-wide WinHTTP
//! proxy instead (`netsh winhttp set proxy`), which reqwest never reads. So when none of those
//! is set, the engine uses the WinHTTP default proxy (`WinHttpGetDefaultProxyConfiguration`).
//! An explicit `-ProxyUrl` always wins.

use crate::error::{EngineError, Result};

/// A proxy setting as Windows stores it: a server list and a bypass list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowsProxy {
    pub server: String,
    pub bypass: Option<String>,
}

/// The proxy a run will use for the XFlow server, and where that came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// "-ProxyUrl", "HTTPS_PROXY", "ALL_PROXY", "WinINet (per user)", "WinHTTP (machine)", or
    /// "none" (direct connection).
    pub source: String,
    /// The proxy URL; `None` for a direct connection.
    pub url: Option<String>,
    /// Hosts reached directly, in reqwest's `NO_PROXY` form.
    pub bypass: Option<String>,
}

impl Choice {
    /// One line for the preflight's "Proxy" row.
    /// A password in the proxy URL is not shown.
    pub fn describe(&self) -> String {
        let shown = self.url.as_deref().map(|u| match url::Url::parse(u) {
            Ok(mut parsed) if parsed.password().is_some() => {
                let _ = parsed.set_password(Some("***"));
                parsed.to_string()
            }
            _ => u.to_owned(),
        });
        match (&shown, &self.bypass) {
            (None, _) => "none: direct connection".into(),
            (Some(url), None) => format!("{url} (from {})", self.source),
            (Some(url), Some(bypass)) => {
                format!("{url} (from {}), not for: {bypass}", self.source)
            }
        }
    }

    /// The proxy to give reqwest explicitly: the explicit one and the WinHTTP fallback. For the
    /// environment and WinINet, reqwest's own system proxy applies (it reads the same values).
    pub fn to_reqwest(&self) -> Result<Option<reqwest::Proxy>> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        if self.source != EXPLICIT && self.source != WINHTTP {
            return Ok(None);
        }
        let proxy = reqwest::Proxy::all(url.as_str()).map_err(|e| {
            let from = match self.source.as_str() {
                EXPLICIT => "ProxyUrl".to_owned(),
                other => format!("the proxy from {other}"),
            };
            EngineError::InvalidConfiguration(format!("{from} '{url}' is not a proxy URL: {e}"))
        })?;
        Ok(Some(
            proxy.no_proxy(
                self.bypass
                    .as_deref()
                    .and_then(reqwest::NoProxy::from_string),
            ),
        ))
    }
}

const EXPLICIT: &str = "-ProxyUrl";
const WININET: &str = "WinINet (per user)";
const WINHTTP: &str = "WinHTTP (machine)";

/// The choice for this process: explicit, environment, and on Windows the registry and WinHTTP.
pub fn choose(explicit: Option<&str>) -> Choice {
    let env = |name: &str| std::env::var(name).ok();
    #[cfg(windows)]
    let (wininet, winhttp) = (windows::wininet_proxy(), windows::winhttp_default_proxy());
    #[cfg(not(windows))]
    let (wininet, winhttp) = (None, None);
    choose_from(explicit, &env, wininet, winhttp)
}

/// The decision, over its inputs, so that it is tested on every platform.
fn choose_from(
    explicit: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    wininet: Option<WindowsProxy>,
    winhttp: Option<WindowsProxy>,
) -> Choice {
    let choice = |source: &str, url: String, bypass: Option<String>| Choice {
        source: source.into(),
        url: Some(url),
        bypass,
    };
    if let Some(url) = explicit.map(str::trim).filter(|u| !u.is_empty()) {
        return choice(EXPLICIT, url.into(), None);
    }
    let no_proxy = env("NO_PROXY")
        .or_else(|| env("no_proxy"))
        .filter(|v| !v.is_empty());
    for (source, names) in [
        ("HTTPS_PROXY", ["HTTPS_PROXY", "https_proxy"]),
        ("ALL_PROXY", ["ALL_PROXY", "all_proxy"]),
    ] {
        if let Some(value) = names.iter().find_map(|n| env(n).filter(|v| !v.is_empty())) {
            return choice(source, value, no_proxy);
        }
    }
    if let Some(p) = wininet {
        return choice(WININET, p.server, p.bypass.as_deref().map(to_no_proxy));
    }
    if let Some(url) = winhttp.as_ref().and_then(|p| https_proxy(&p.server)) {
        let bypass = winhttp.and_then(|p| p.bypass).map(|b| to_no_proxy(&b));
        return choice(WINHTTP, url, bypass);
    }
    Choice {
        source: "none".into(),
        url: None,
        bypass: None,
    }
}

/// The proxy for https URLs from a WinHTTP/WinINet server list: `host:port`, or per scheme
/// `http=host:port;https=host:port` (entries separated by `;` or blanks). An `https=` entry
/// first, then one without a scheme; the proxy itself is spoken to over http (CONNECT).
fn https_proxy(server: &str) -> Option<String> {
    let entries: Vec<&str> = server
        .split([';', ' ', '\t'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let pick = entries
        .iter()
        .find_map(|e| e.strip_prefix("https="))
        .or_else(|| entries.iter().copied().find(|e| !e.contains('=')))?;
    Some(if pick.contains("://") {
        pick.to_owned()
    } else {
        format!("http://{pick}")
    })
}

/// A Windows bypass list (`<local>;*.kommune.local;10.*`) in reqwest's NO_PROXY form: comma
/// separated, `*.x` as `x` (it covers subdomains), `a.b.*` as a CIDR block, and `<local>` (names
/// without a dot, which NO_PROXY cannot express) as the loopback names.
fn to_no_proxy(bypass: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for entry in bypass
        .split([';', ' ', ','])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        if entry.eq_ignore_ascii_case("<local>") {
            out.extend(["localhost", "127.0.0.1", "::1"].map(String::from));
        } else if let Some(cidr) = ipv4_wildcard(entry) {
            out.push(cidr);
        } else {
            out.push(entry.trim_start_matches("*.").to_owned());
        }
    }
    out.dedup();
    out.join(",")
}

/// `10.*` → `10.0.0.0/8`, `192.168.*` → `192.168.0.0/16`; `None` for anything else.
fn ipv4_wildcard(entry: &str) -> Option<String> {
    let parts: Vec<&str> = entry.split('.').collect();
    let wildcard = parts.iter().position(|p| *p == "*")?;
    if wildcard == 0
        || wildcard > 3
        || parts.len() > 4
        || parts[wildcard..].iter().any(|p| *p != "*")
    {
        return None;
    }
    let mut octets = [0u8; 4];
    for (i, part) in parts[..wildcard].iter().enumerate() {
        octets[i] = part.parse().ok()?;
    }
    let [a, b, c, d] = octets;
    Some(format!("{a}.{b}.{c}.{d}/{}", wildcard * 8))
}

/// NOT COMPILED OR RUN HERE (no Windows target on the machines this project is built on):
/// written against Microsoft's documentation.
#[cfg(windows)]
mod windows {
    use super::WindowsProxy;
    use windows_sys::Win32::Foundation::GlobalFree;
    use windows_sys::Win32::Networking::WinHttp::{
        WINHTTP_PROXY_INFO, WinHttpGetDefaultProxyConfiguration,
    };
    use windows_sys::Win32::System::Registry::{
        HKEY_CURRENT_USER, RRF_RT_REG_DWORD, RRF_RT_REG_SZ, RegGetValueW,
    };

    /// WINHTTP_ACCESS_TYPE_NAMED_PROXY: "Passes requests to the proxy unless a proxy bypass
    /// list is supplied and the name to be resolved bypasses the proxy."
    const NAMED_PROXY: u32 = 3;
    const INTERNET_SETTINGS: &str = r"Software\Microsoft\Windows\CurrentVersion\Internet Settings";

    fn wide(text: &str) -> Vec<u16> {
        text.encode_utf16().chain(std::iter::once(0)).collect()
    }

    /// Reads a NUL-terminated string and frees it with GlobalFree, as
    /// WinHttpGetDefaultProxyConfiguration requires of its caller.
    unsafe fn take_global_string(text: *mut u16) -> Option<String> {
        if text.is_null() {
            return None;
        }
        // SAFETY: the caller passes a NUL-terminated string that WinHTTP allocated.
        unsafe {
            let mut len = 0;
            while *text.add(len) != 0 {
                len += 1;
            }
            let value = String::from_utf16_lossy(std::slice::from_raw_parts(text, len));
            GlobalFree(text.cast());
            Some(value).filter(|v| !v.trim().is_empty())
        }
    }

    /// The machine-wide WinHTTP proxy (`netsh winhttp show proxy`), when one is set.
    pub fn winhttp_default_proxy() -> Option<WindowsProxy> {
        // SAFETY: WINHTTP_PROXY_INFO is plain data that the call fills.
        let mut info: WINHTTP_PROXY_INFO = unsafe { std::mem::zeroed() };
        if unsafe { WinHttpGetDefaultProxyConfiguration(&mut info) } == 0 {
            return None;
        }
        // SAFETY: both strings are WinHTTP's, NUL-terminated or null, freed here exactly once.
        let (server, bypass) = unsafe {
            (
                take_global_string(info.lpszProxy),
                take_global_string(info.lpszProxyBypass),
            )
        };
        (info.dwAccessType == NAMED_PROXY)
            .then_some(())
            .and(server)
            .map(|server| WindowsProxy { server, bypass })
    }

    fn registry_value(name: &str, flags: u32, data: &mut [u8]) -> Option<usize> {
        let (key, value) = (wide(INTERNET_SETTINGS), wide(name));
        let mut size = data.len() as u32;
        // SAFETY: NUL-terminated names; `data` is `size` bytes long.
        let status = unsafe {
            RegGetValueW(
                HKEY_CURRENT_USER,
                key.as_ptr(),
                value.as_ptr(),
                flags,
                std::ptr::null_mut(),
                data.as_mut_ptr().cast(),
                &mut size,
            )
        };
        (status == 0).then_some(size as usize)
    }

    fn registry_string(name: &str) -> Option<String> {
        let mut data = vec![0u8; 8192];
        let size = registry_value(name, RRF_RT_REG_SZ, &mut data)?;
        let units: Vec<u16> = data[..size]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        Some(String::from_utf16_lossy(&units)).filter(|v| !v.trim().is_empty())
    }

    /// The per-user WinINet proxy that reqwest reads, when it is enabled: reported, not used
    /// by us (reqwest applies it itself).
    pub fn wininet_proxy() -> Option<WindowsProxy> {
        let mut enable = [0u8; 4];
        registry_value("ProxyEnable", RRF_RT_REG_DWORD, &mut enable)?;
        if u32::from_le_bytes(enable) == 0 {
            return None;
        }
        Some(WindowsProxy {
            server: registry_string("ProxyServer")?,
            bypass: registry_string("ProxyOverride"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn machine(server: &str, bypass: Option<&str>) -> Option<WindowsProxy> {
        Some(WindowsProxy {
            server: server.into(),
            bypass: bypass.map(String::from),
        })
    }

    #[test]
    fn the_order_is_explicit_environment_wininet_then_winhttp() {
        let winhttp = || machine("proxy.kommune.local:8080", Some("<local>;*.kommune.local"));
        let wininet = || machine("user-proxy:3128", None);
        let all = [("HTTPS_PROXY", "http://env:1"), ("NO_PROXY", "intern")];

        let c = choose_from(
            Some("http://explicit:3128"),
            &env(&all),
            wininet(),
            winhttp(),
        );
        assert_eq!(
            (c.source.as_str(), c.url.as_deref()),
            ("-ProxyUrl", Some("http://explicit:3128"))
        );
        assert!(c.to_reqwest().unwrap().is_some());

        let c = choose_from(None, &env(&all), wininet(), winhttp());
        assert_eq!(
            (c.source.as_str(), c.url.as_deref()),
            ("HTTPS_PROXY", Some("http://env:1"))
        );
        assert_eq!(c.bypass.as_deref(), Some("intern"));
        assert!(
            c.to_reqwest().unwrap().is_none(),
            "reqwest reads the environment itself"
        );

        let c = choose_from(
            None,
            &env(&[("all_proxy", "http://all:2")]),
            wininet(),
            winhttp(),
        );
        assert_eq!(c.source, "ALL_PROXY");

        let c = choose_from(None, &env(&[]), wininet(), winhttp());
        assert_eq!(
            (c.source.as_str(), c.url.as_deref()),
            ("WinINet (per user)", Some("user-proxy:3128"))
        );
        assert!(
            c.to_reqwest().unwrap().is_none(),
            "reqwest reads WinINet itself"
        );

        // A gMSA: no environment, no per-user settings; the machine's WinHTTP proxy applies.
        let c = choose_from(
            None,
            &env(&[("HTTP_PROXY", "http://only-for-http:1")]),
            None,
            winhttp(),
        );
        assert_eq!(c.source, "WinHTTP (machine)");
        assert_eq!(c.url.as_deref(), Some("http://proxy.kommune.local:8080"));
        assert_eq!(
            c.bypass.as_deref(),
            Some("localhost,127.0.0.1,::1,kommune.local")
        );
        assert!(c.to_reqwest().unwrap().is_some());
        assert!(
            c.describe()
                .contains("proxy.kommune.local:8080 (from WinHTTP (machine))")
        );

        let c = choose_from(Some("http://svc:s3cret@proxy:3128"), &env(&[]), None, None);
        assert!(!c.describe().contains("s3cret"), "{}", c.describe());

        let c = choose_from(None, &env(&[]), None, None);
        assert_eq!(
            (c.url.clone(), c.describe()),
            (None, "none: direct connection".to_owned())
        );
    }

    #[test]
    fn winhttp_server_lists_give_the_https_proxy() {
        assert_eq!(
            https_proxy("proxy:8080").as_deref(),
            Some("http://proxy:8080")
        );
        assert_eq!(
            https_proxy("http=p1:80;https=p2:443").as_deref(),
            Some("http://p2:443")
        );
        assert_eq!(
            https_proxy("http=p1:80; p3:3128").as_deref(),
            Some("http://p3:3128")
        );
        assert_eq!(https_proxy("http=p1:80"), None);
        assert_eq!(
            https_proxy("https://secure:8443").as_deref(),
            Some("https://secure:8443")
        );
        assert_eq!(https_proxy(" "), None);
    }

    #[test]
    fn windows_bypass_lists_become_no_proxy_lists() {
        assert_eq!(
            to_no_proxy("<local>;*.kommune.local; 10.*;192.168.1.*;sd.dk"),
            "localhost,127.0.0.1,::1,kommune.local,10.0.0.0/8,192.168.1.0/24,sd.dk"
        );
        assert_eq!(ipv4_wildcard("*.1.2.3"), None);
        assert_eq!(ipv4_wildcard("10.*.3.*"), None);
        assert_eq!(ipv4_wildcard("300.*"), None);
    }
}
