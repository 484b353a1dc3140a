use super::*;
use std::time::Instant;

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

/// Starts a call and waits for its answer: (status, answer or error JSON).
fn call(request: &str) -> (i32, String) {
    let handle = start_call(request);
    let answer = answer_of(handle, Duration::from_secs(60));
    unsafe { xfd_call_free(handle) };
    answer
}

fn start_call(request: &str) -> *mut std::ffi::c_void {
    let mut handle = std::ptr::null_mut();
    let mut err = XfdBuffer::empty();
    let status = unsafe { xfd_call_start(request.as_ptr(), request.len(), &mut handle, &mut err) };
    assert_eq!(status, XFD_OK, "{}", take(err));
    handle
}

fn answer_of(handle: *mut std::ffi::c_void, within: Duration) -> (i32, String) {
    let deadline = Instant::now() + within;
    loop {
        let mut out = XfdBuffer::empty();
        match unsafe { xfd_call_next(handle, 50, &mut out) } {
            XFD_TIMEOUT if Instant::now() < deadline => continue,
            status => return (status, take(out)),
        }
    }
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
    let mut handle = std::ptr::null_mut();
    assert_eq!(
        unsafe { xfd_call_start(b"{}".as_ptr(), 2, &mut handle, std::ptr::null_mut()) },
        XFD_BAD_ARGUMENT
    );
    let mut out = XfdBuffer::empty();
    assert_eq!(
        unsafe { xfd_call_start(std::ptr::null(), 5, &mut handle, &mut out) },
        XFD_ERROR
    );
    assert!(handle.is_null());
    take(out);
    for cancel in [xfd_run_cancel, xfd_call_cancel] {
        assert_eq!(unsafe { cancel(std::ptr::null_mut()) }, XFD_BAD_ARGUMENT);
    }
    for next in [xfd_run_next_event, xfd_call_next] {
        assert_eq!(
            unsafe { next(std::ptr::null_mut(), 0, &mut XfdBuffer::empty()) },
            XFD_BAD_ARGUMENT
        );
    }
    assert_eq!(
        unsafe { xfd_run_wait(std::ptr::null_mut(), 0) },
        XFD_BAD_ARGUMENT
    );
    unsafe { xfd_run_free(std::ptr::null_mut()) };
    unsafe { xfd_call_free(std::ptr::null_mut()) };
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

/// Drains a run: every event's JSON until `XFD_FINISHED`.
fn events_of(run: *mut std::ffi::c_void) -> Vec<String> {
    let mut events = Vec::new();
    loop {
        let mut event = XfdBuffer::empty();
        match unsafe { xfd_run_next_event(run, 30_000, &mut event) } {
            XFD_OK => events.push(take(event)),
            XFD_FINISHED => return events,
            other => panic!("unexpected status {other}: {events:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_run_mid_page_ends_it_at_once_with_nothing_published_or_acknowledged() {
    let sim = xflow_sim::Simulator::start(xflow_sim::SimConfig {
        token: "ffi-test-token".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let control = sim.control().unwrap();
    control
        .enqueue(&serde_json::json!({"deliveries": [
            {"system": "SDLoen", "fileName": "a.csv", "text": "a;1"},
            {"system": "SDLoen", "fileName": "b.csv", "text": "b;2"},
        ]}))
        .await
        .unwrap();
    // Half of the page's body, then a minute of silence: the run is in the middle of the page.
    control
        .fault(
            "stallBody",
            None,
            Some(1),
            serde_json::json!({"stallMs": 60_000}),
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("SD Løn");
    std::fs::create_dir(&folder).unwrap();
    let config = serde_json::json!({
        "baseUrl": sim.base_url,
        "apiToken": "ffi-test-token",
        "sdLoenPath": folder,
        "statePath": dir.path().join("state"),
        "caCertificatePath": sim.ca_path,
        "timeoutSec": 120,
    })
    .to_string();
    let (cancelled_after, events) = tokio::task::spawn_blocking(move || {
        let (status, run, err) = start(&config);
        assert_eq!(status, XFD_OK, "{err}");
        // The GET is announced, then give the stalled body time to arrive halfway.
        loop {
            let mut event = XfdBuffer::empty();
            assert_eq!(
                unsafe { xfd_run_next_event(run, 30_000, &mut event) },
                XFD_OK
            );
            if take(event).contains("GET ") {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
        let cancelled = Instant::now();
        assert_eq!(unsafe { xfd_run_cancel(run) }, XFD_OK);
        let events = events_of(run);
        let after = cancelled.elapsed();
        assert_eq!(unsafe { xfd_run_wait(run, 1_000) }, XFD_FINISHED);
        unsafe { xfd_run_free(run) };
        (after, events)
    })
    .await
    .unwrap();
    let summary = events.last().unwrap();
    assert!(summary.contains(r#""kind":"summary""#), "{events:?}");
    assert!(summary.contains(r#""outcome":"Cancelled""#), "{summary}");
    assert!(
        cancelled_after < Duration::from_secs(2),
        "the run took {cancelled_after:?} to end after the cancel"
    );
    assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0);
    let state = control.state(false).await.unwrap();
    for d in state["deliveries"].as_array().unwrap() {
        assert_eq!(d["ackCount"], 0, "{d}");
    }
}

#[cfg(unix)]
#[test]
fn freeing_a_run_blocked_in_a_system_call_returns_at_once_and_the_run_ends_later() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    // A FIFO where the lock file goes: opening it for writing blocks until someone reads it,
    // as a write on a hung share blocks. No cancellation can reach the thread stuck there.
    let fifo = state.join("run.lock");
    let c_fifo = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
    let config = serde_json::json!({
        "baseUrl": "https://127.0.0.1:9/api/",
        "apiToken": "t",
        "sdLoenPath": dir.path(),
        "statePath": state,
    })
    .to_string();
    let (status, run, err) = start(&config);
    assert_eq!(status, XFD_OK, "{err}");
    std::thread::sleep(Duration::from_millis(300));
    let stopping = Instant::now();
    assert_eq!(unsafe { xfd_run_cancel(run) }, XFD_OK);
    assert_eq!(
        unsafe { xfd_run_wait(run, 500) },
        XFD_TIMEOUT,
        "still blocked"
    );
    let waited = stopping.elapsed();
    assert!(waited >= Duration::from_millis(450), "{waited:?}");
    let freeing = Instant::now();
    unsafe { xfd_run_free(run) };
    assert!(
        freeing.elapsed() < Duration::from_millis(100),
        "freeing took {:?}",
        freeing.elapsed()
    );
    // Unblock the detached run: it opens the lock file, sees the cancellation and ends. The FIFO
    // reads end-of-file once the run has closed the lock file, i.e. released the lock.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut reader = std::fs::File::open(&fifo).unwrap();
        let _ = tx.send(reader.read(&mut [0; 1]).unwrap());
    });
    let read = rx.recv_timeout(Duration::from_secs(10));
    assert_eq!(
        read,
        Ok(0),
        "the detached run ended and closed the lock file"
    );
}

#[test]
fn a_call_against_a_silent_host_is_cancelled_at_once_and_freed_without_waiting() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let request = serde_json::json!({
        "op": "preflight",
        "config": {
            "baseUrl": format!("https://{}/api/", silent.local_addr().unwrap()),
            "apiToken": "t",
            "sdLoenPath": dir.path(),
            "statePath": dir.path().join("state"),
            "timeoutSec": 60,
        },
    })
    .to_string();
    let handle = start_call(&request);
    assert_eq!(answer_of(handle, Duration::from_millis(500)).0, XFD_TIMEOUT);
    let cancelled = Instant::now();
    assert_eq!(unsafe { xfd_call_cancel(handle) }, XFD_OK);
    let (status, error) = answer_of(handle, Duration::from_secs(5));
    assert!(
        cancelled.elapsed() < Duration::from_secs(1),
        "{:?}",
        cancelled.elapsed()
    );
    assert_eq!(status, XFD_ERROR);
    assert!(error.contains(r#""errorId":"Cancelled""#), "{error}");
    assert_eq!(answer_of(handle, Duration::ZERO).0, XFD_FINISHED);
    unsafe { xfd_call_free(handle) };

    // Freed while it is still waiting on the silent host: returns at once.
    let handle = start_call(&request);
    std::thread::sleep(Duration::from_millis(300));
    let freeing = Instant::now();
    unsafe { xfd_call_free(handle) };
    assert!(
        freeing.elapsed() < Duration::from_millis(100),
        "{:?}",
        freeing.elapsed()
    );
}

#[test]
fn answers_and_events_are_ascii_json_whatever_the_text() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("st\u{ffff}te \u{1ffff}");
    std::fs::create_dir(&state).unwrap();
    let (status, body) =
        call(&serde_json::json!({"op": "status", "statePath": state, "folders": []}).to_string());
    assert_eq!(status, XFD_OK, "{body}");
    assert!(body.is_ascii(), "{body}");
    let (status, body) = call(
        &serde_json::json!({"op": "releaseQuarantined", "statePath": state, "id": "x\u{fffe}"})
            .to_string(),
    );
    assert_eq!(status, XFD_ERROR);
    assert!(body.is_ascii() && body.contains(r"x\ufffe"), "{body}");
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
