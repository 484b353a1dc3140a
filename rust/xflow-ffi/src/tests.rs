use super::*;

/// Calls an export that fills a buffer and returns (status, text of the buffer), freeing it.
fn take(buffer: XfdBuffer) -> String {
    if buffer.ptr.is_null() {
        return String::new();
    }
    // SAFETY: the buffer came from this library and is freed exactly once below.
    let text =
        unsafe { String::from_utf8_lossy(std::slice::from_raw_parts(buffer.ptr, buffer.len)) }
            .into_owned();
    unsafe { xfd_buffer_free(buffer) };
    text
}

fn call(request: &str) -> (i32, String) {
    let mut out = XfdBuffer::empty();
    let status = unsafe { xfd_call(request.as_ptr(), request.len(), &mut out) };
    (status, take(out))
}

fn start(config: &str) -> (i32, *mut std::ffi::c_void, String) {
    let mut run = std::ptr::null_mut();
    let mut err = XfdBuffer::empty();
    let status = unsafe { xfd_run_start(config.as_ptr(), config.len(), &mut run, &mut err) };
    (status, run, take(err))
}

#[test]
fn committed_bindings_match_the_exports() {
    // include_str! makes cargo rebuild this test whenever either file changes.
    let generated = include_str!(concat!(env!("OUT_DIR"), "/NativeMethods.g.cs"));
    let committed = include_str!("../../../bindings/NativeMethods.g.cs");
    assert!(
        generated.replace("\r\n", "\n") == committed.replace("\r\n", "\n"),
        "bindings/NativeMethods.g.cs is stale: an export changed without regenerating. Run \
         `dotnet pwsh ./build.ps1` (or XFLOW_REGENERATE_BINDINGS=1 cargo build -p \
         xflow-delivery-ffi) and commit the result."
    );
}

#[test]
fn version_is_reported_both_ways() {
    assert_eq!(xfd_abi_version(), XFD_ABI_VERSION);
    let (status, body) = call(r#"{"op":"version"}"#);
    assert_eq!(status, XFD_OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["abiVersion"], XFD_ABI_VERSION);
}

#[test]
fn malformed_and_unknown_calls_are_errors_with_ids() {
    for request in ["not json", r#"{"op":"nope"}"#, ""] {
        let (status, body) = call(request);
        assert_eq!(status, XFD_ERROR, "{request}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["errorId"], "InvalidConfiguration", "{request}: {body}");
    }
}

#[test]
fn null_arguments_are_refused_not_dereferenced() {
    assert_eq!(
        unsafe { xfd_call(b"{}".as_ptr(), 2, std::ptr::null_mut()) },
        XFD_BAD_ARGUMENT
    );
    let mut out = XfdBuffer::empty();
    assert_eq!(
        unsafe { xfd_call(std::ptr::null(), 5, &mut out) },
        XFD_ERROR
    );
    take(out);
    assert_eq!(
        unsafe { xfd_run_cancel(std::ptr::null_mut()) },
        XFD_BAD_ARGUMENT
    );
    assert_eq!(
        unsafe { xfd_run_next_event(std::ptr::null_mut(), 0, &mut XfdBuffer::empty()) },
        XFD_BAD_ARGUMENT
    );
    unsafe { xfd_run_free(std::ptr::null_mut()) };
    unsafe { xfd_buffer_free(XfdBuffer::empty()) };
}

#[test]
fn an_invalid_config_fails_to_start_without_echoing_the_token() {
    let (status, run, err) = start(
        r#"{"baseUrl":"http://xflow.example/","apiToken":"tok-SECRET-1","statePath":"/tmp/s","sdLoenPath":"/tmp"}"#,
    );
    assert_eq!(status, XFD_ERROR);
    assert!(run.is_null());
    assert!(err.contains(r#""errorId":"InsecureUrl""#), "{err}");
    assert!(!err.contains("tok-SECRET-1"));
}

#[test]
fn panics_become_errors_instead_of_unwinding() {
    let mut out = XfdBuffer::empty();
    let status = guarded(&mut out, || panic!("boom"));
    assert_eq!(status, XFD_PANIC);
    let body = take(out);
    assert!(body.contains("Internal") && body.contains("boom"), "{body}");
}

#[test]
fn a_run_against_a_closed_port_ends_with_a_failed_summary_and_can_be_cancelled_and_freed() {
    let dir = std::env::temp_dir().join(format!("xfd-ffi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = serde_json::json!({
        "baseUrl": "https://127.0.0.1:9/api/",
        "apiToken": "t",
        "sdLoenPath": dir,
        "statePath": dir.join("state"),
        "timeoutSec": 2,
    })
    .to_string();
    let (status, run, err) = start(&config);
    assert_eq!(status, XFD_OK, "{err}");
    let mut last = String::new();
    loop {
        let mut event = XfdBuffer::empty();
        match unsafe { xfd_run_next_event(run, 10_000, &mut event) } {
            XFD_OK => last = take(event),
            XFD_FINISHED => break,
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(last.contains(r#""kind":"summary""#), "{last}");
    assert!(last.contains(r#""errorId":"ServerUnreachable""#), "{last}");
    assert_eq!(unsafe { xfd_run_cancel(run) }, XFD_OK);
    unsafe { xfd_run_free(run) };
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn engine_questions_are_answered_through_the_same_door() {
    let dir = std::env::temp_dir().join(format!("xfd-ffi-status-{}", std::process::id()));
    let request = serde_json::json!({"op": "status", "statePath": dir}).to_string();
    let (status, body) = call(&request);
    assert_eq!(status, XFD_OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["lastRun"].is_null(), "{body}");
    let (status, body) = call(r#"{"op":"history","statePath":"relative","bogus":1}"#);
    assert_eq!(status, XFD_ERROR);
    assert!(body.contains("bogus"), "{body}");
}
