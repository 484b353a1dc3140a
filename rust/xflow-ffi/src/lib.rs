//! The C ABI of the XFlow delivery engine: the only surface the PowerShell module sees. It stays
//! small on purpose (docs/design.md documents it): UTF-8 JSON in, ASCII-only JSON out (`json`),
//! buffers owned by Rust and freed through `xfd_buffer_free`, a run as an opaque handle polled for
//! events, no callbacks into .NET. Every export catches panics and reports them as an error instead of unwinding
//! across the boundary. bindings/NativeMethods.g.cs is generated from this file by csbindgen.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;
use xflow_engine::{
    CancellationToken, EngineError, ErrorReport, Event, NextEvent, Run, RunConfig, Worker,
};
use zeroize::Zeroizing;

mod json;

/// Bumped whenever an export's signature or a JSON shape changes incompatibly; the module
/// refuses to load a native library whose version differs from the one its bindings expect.
pub const XFD_ABI_VERSION: u32 = 2;

/// Status codes returned by the exports (non-negative so that csbindgen emits them all).
pub const XFD_OK: i32 = 0;
/// No event (or answer) arrived within the timeout; from `xfd_run_wait`: the run is still going.
pub const XFD_TIMEOUT: i32 = 1;
/// The run has ended and its last event (the summary) has been taken; or, from `xfd_run_wait`,
/// its thread has ended; or a call's answer has been taken.
pub const XFD_FINISHED: i32 = 2;
/// The output buffer holds an error JSON.
pub const XFD_ERROR: i32 = 3;
/// A panic was caught; the output buffer holds an error JSON when one could be made.
pub const XFD_PANIC: i32 = 4;
/// A required pointer was null.
pub const XFD_BAD_ARGUMENT: i32 = 5;

/// A byte buffer allocated by Rust. The caller owns it and frees it exactly once with
/// `xfd_buffer_free`. An empty buffer has a null `ptr`.
#[repr(C)]
pub struct XfdBuffer {
    pub ptr: *mut u8,
    pub len: usize,
}

impl XfdBuffer {
    fn empty() -> Self {
        Self {
            ptr: std::ptr::null_mut(),
            len: 0,
        }
    }

    fn from_vec(bytes: Vec<u8>) -> Self {
        let boxed = bytes.into_boxed_slice();
        let len = boxed.len();
        Self {
            ptr: Box::into_raw(boxed).cast::<u8>(),
            len,
        }
    }
}

/// The ABI version of this library (`XFD_ABI_VERSION`).
#[unsafe(no_mangle)]
pub extern "C" fn xfd_abi_version() -> u32 {
    XFD_ABI_VERSION
}

/// Frees a buffer returned by any export. A null `ptr` is a no-op.
///
/// # Safety
/// `buffer` must come from this library and must not have been freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xfd_buffer_free(buffer: XfdBuffer) {
    if buffer.ptr.is_null() {
        return;
    }
    let _ = catch_unwind(|| {
        // SAFETY: ptr/len came from `XfdBuffer::from_vec`, i.e. from a boxed slice of that length.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(buffer.ptr, buffer.len)) });
    });
}

/// A question that is not a run, `{"op":"…",…}`: `version` answers
/// `{"abiVersion":N,"engineVersion":"x.y.z"}`; `history`, `status`, `releaseQuarantined` and
/// `preflight` are answered by the engine (`xflow_engine::calls`). New questions use this same
/// door, so the ABI does not grow per feature. The request is copied (into memory zeroed when
/// the call ends: a preflight request holds the token) and answered on a thread of its own;
/// `*out_call` receives the handle to pass to `xfd_call_next`/`xfd_call_cancel` and finally
/// `xfd_call_free`.
///
/// # Safety
/// `request` must point to `request_len` readable bytes; `out_call` and `out_error` must be
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xfd_call_start(
    request: *const u8,
    request_len: usize,
    out_call: *mut *mut std::ffi::c_void,
    out_error: *mut XfdBuffer,
) -> i32 {
    if out_call.is_null() || out_error.is_null() {
        return XFD_BAD_ARGUMENT;
    }
    // SAFETY: both checked non-null; the caller guarantees they are writable.
    unsafe {
        out_call.write(std::ptr::null_mut());
        out_error.write(XfdBuffer::empty());
    }
    guarded(out_error, || {
        // SAFETY: the caller guarantees `request` spans `request_len` bytes.
        let request = Zeroizing::new(unsafe { input_bytes(request, request_len) }?.to_vec());
        let call: Worker<Answer> = Worker::spawn("xflow-call", 1, move |answer, cancel| {
            let _ = answer.send(handle_call(&request, &cancel));
        })?;
        // SAFETY: checked non-null above.
        unsafe { out_call.write(Box::into_raw(Box::new(call)).cast()) };
        Ok((XFD_OK, Vec::new()))
    })
}

/// Waits up to `timeout_ms` for the call's answer: `XFD_OK` with the answer JSON in `*out_answer`,
/// `XFD_ERROR` with the error JSON, `XFD_TIMEOUT` when it has not come yet, or `XFD_FINISHED`
/// once the answer has been taken.
///
/// # Safety
/// `call` must be a live handle from `xfd_call_start`; `out_answer` must be writable. Only one
/// thread may wait on a call at a time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xfd_call_next(
    call: *mut std::ffi::c_void,
    timeout_ms: u32,
    out_answer: *mut XfdBuffer,
) -> i32 {
    // SAFETY: the caller's guarantees are this function's.
    unsafe {
        next(call, timeout_ms, out_answer, |answer: Answer| {
            answer.map(|bytes| (XFD_OK, bytes))
        })
    }
}

/// Asks a call to stop; it then answers `Cancelled`, or is simply abandoned by `xfd_call_free`.
/// Safe to call from any thread, any number of times, while the handle is live.
///
/// # Safety
/// `call` must be a live handle from `xfd_call_start`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xfd_call_cancel(call: *mut std::ffi::c_void) -> i32 {
    // SAFETY: the caller guarantees a live call handle.
    unsafe { cancel::<Answer>(call) }
}

/// Cancels the call if it is still going and frees the handle at once, without waiting for its
/// thread (which may be blocked in a name lookup or on a hung share; it ends on its own).
///
/// # Safety
/// `call` must be a handle from `xfd_call_start`, freed exactly once, with no other call on it
/// in progress or to follow.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xfd_call_free(call: *mut std::ffi::c_void) {
    // SAFETY: the caller's guarantees are this function's.
    unsafe { free::<Answer>(call) }
}

/// A call's answer: the answer JSON, or the error that becomes the error JSON.
type Answer = Result<Vec<u8>, EngineError>;

fn handle_call(request: &[u8], cancel: &CancellationToken) -> Result<Vec<u8>, EngineError> {
    let op = xflow_engine::calls::op_of(request)?;
    match op.as_str() {
        "version" => json::to_vec(&serde_json::json!({
            "abiVersion": XFD_ABI_VERSION,
            "engineVersion": env!("CARGO_PKG_VERSION"),
        })),
        _ => json::to_vec(&xflow_engine::calls::handle(&op, request, cancel)?),
    }
    .map_err(|e| EngineError::Internal(e.to_string()))
}

/// Validates `config` (run configuration JSON) and starts a run. On success `*out_run` holds a
/// handle to pass to `xfd_run_next_event`/`xfd_run_cancel` and finally `xfd_run_free`; on error
/// `*out_error` holds the error JSON and no run was started.
///
/// # Safety
/// `config` must point to `config_len` readable bytes; `out_run` and `out_error` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xfd_run_start(
    config: *const u8,
    config_len: usize,
    out_run: *mut *mut std::ffi::c_void,
    out_error: *mut XfdBuffer,
) -> i32 {
    if out_run.is_null() || out_error.is_null() {
        return XFD_BAD_ARGUMENT;
    }
    // SAFETY: both checked non-null; the caller guarantees they are writable.
    unsafe {
        out_run.write(std::ptr::null_mut());
        out_error.write(XfdBuffer::empty());
    }
    guarded(out_error, || {
        // SAFETY: the caller guarantees `config` spans `config_len` bytes.
        let bytes = unsafe { input_bytes(config, config_len) }?;
        let run = Run::start(RunConfig::from_json(bytes)?)?;
        // SAFETY: checked non-null above.
        unsafe { out_run.write(Box::into_raw(Box::new(run)).cast()) };
        Ok((XFD_OK, Vec::new()))
    })
}

/// Waits up to `timeout_ms` for the run's next event. Returns `XFD_OK` with the event JSON in
/// `*out_event`, `XFD_TIMEOUT` when none came in time, or `XFD_FINISHED` after the last event
/// (the summary) has been taken.
///
/// # Safety
/// `run` must be a live handle from `xfd_run_start`; `out_event` must be writable. Only one thread
/// may poll a run at a time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xfd_run_next_event(
    run: *mut std::ffi::c_void,
    timeout_ms: u32,
    out_event: *mut XfdBuffer,
) -> i32 {
    // SAFETY: the caller's guarantees are this function's.
    unsafe {
        next(run, timeout_ms, out_event, |event: Event| {
            json::to_vec(&event)
                .map(|bytes| (XFD_OK, bytes))
                .map_err(|e| EngineError::Internal(e.to_string()))
        })
    }
}

/// Asks a run to stop: at once where it waits on the network, otherwise at its next step
/// boundary, leaving nothing partial visible. Safe to call from any thread, any number of times,
/// while the handle is live.
///
/// # Safety
/// `run` must be a live handle from `xfd_run_start`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xfd_run_cancel(run: *mut std::ffi::c_void) -> i32 {
    // SAFETY: the caller guarantees a live run handle.
    unsafe { cancel::<Event>(run) }
}

/// Waits up to `timeout_ms` for the run's thread to end, which is when it has released the
/// state folder's lock: `XFD_FINISHED` once it has, `XFD_TIMEOUT` if it is still going (blocked
/// in a system call, say). Does not cancel; call `xfd_run_cancel` first to stop a run.
///
/// # Safety
/// `run` must be a live handle from `xfd_run_start`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xfd_run_wait(run: *mut std::ffi::c_void, timeout_ms: u32) -> i32 {
    if run.is_null() {
        return XFD_BAD_ARGUMENT;
    }
    // SAFETY: the caller guarantees a live handle; waiting only needs `&Run`.
    let run = unsafe { &*run.cast::<Run>() };
    match catch_unwind(AssertUnwindSafe(|| {
        run.wait(Duration::from_millis(u64::from(timeout_ms)))
    })) {
        Ok(true) => XFD_FINISHED,
        Ok(false) => XFD_TIMEOUT,
        Err(_) => XFD_PANIC,
    }
}

/// Cancels the run if it is still going and frees the handle at once, without waiting for its
/// thread: a run blocked in a system call (an fsync on a hung share) would hold the caller with
/// it. The detached run stops at its next step boundary and then releases its lock; use
/// `xfd_run_wait` first to wait for that a bounded time.
///
/// # Safety
/// `run` must be a handle from `xfd_run_start`, freed exactly once, with no other call on it in
/// progress or to follow.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xfd_run_free(run: *mut std::ffi::c_void) {
    // SAFETY: the caller's guarantees are this function's.
    unsafe { free::<Event>(run) }
}

/// The next item of a worker handle (a run's event, a call's answer) into `*out`.
///
/// # Safety
/// `handle` must be null or a live `Worker<T>` handle; `out` must be null or writable.
unsafe fn next<T>(
    handle: *mut std::ffi::c_void,
    timeout_ms: u32,
    out: *mut XfdBuffer,
    encode: impl FnOnce(T) -> Result<(i32, Vec<u8>), EngineError>,
) -> i32 {
    if handle.is_null() || out.is_null() {
        return XFD_BAD_ARGUMENT;
    }
    // SAFETY: checked non-null; the caller guarantees it is writable.
    unsafe { out.write(XfdBuffer::empty()) };
    guarded(out, || {
        // SAFETY: the caller guarantees a live handle; polling only needs a shared reference.
        let worker = unsafe { &*handle.cast::<Worker<T>>() };
        match worker.next_event(Duration::from_millis(u64::from(timeout_ms))) {
            NextEvent::Event(item) => encode(item),
            NextEvent::Timeout => Ok((XFD_TIMEOUT, Vec::new())),
            NextEvent::Finished => Ok((XFD_FINISHED, Vec::new())),
        }
    })
}

/// # Safety
/// `handle` must be null or a live `Worker<T>` handle.
unsafe fn cancel<T>(handle: *mut std::ffi::c_void) -> i32 {
    if handle.is_null() {
        return XFD_BAD_ARGUMENT;
    }
    // SAFETY: the caller guarantees a live handle; cancelling only needs a shared reference and
    // is thread-safe.
    match catch_unwind(AssertUnwindSafe(|| {
        unsafe { &*handle.cast::<Worker<T>>() }.cancel()
    })) {
        Ok(()) => XFD_OK,
        Err(_) => XFD_PANIC,
    }
}

/// # Safety
/// `handle` must be null or a `Worker<T>` handle from `Box::into_raw`, freed exactly once.
unsafe fn free<T>(handle: *mut std::ffi::c_void) {
    if handle.is_null() {
        return;
    }
    // SAFETY: the handle came from `Box::into_raw` and is freed once; dropping a worker cancels
    // and detaches it, never waits.
    let _ = catch_unwind(|| drop(unsafe { Box::from_raw(handle.cast::<Worker<T>>()) }));
}

/// # Safety
/// `ptr` must be null (with `len` 0) or point to `len` readable bytes.
unsafe fn input_bytes<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], EngineError> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(EngineError::InvalidConfiguration(
                "null input buffer".into(),
            ))
        };
    }
    // SAFETY: non-null and the caller guarantees `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Runs `body`, writing its output (or the error JSON) into `*out`. A panic becomes
/// `XFD_PANIC` with an error JSON, never an unwind across the C boundary.
fn guarded(out: *mut XfdBuffer, body: impl FnOnce() -> Result<(i32, Vec<u8>), EngineError>) -> i32 {
    let (status, bytes) = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok((status, bytes))) => (status, bytes),
        Ok(Err(err)) => (XFD_ERROR, error_json(&err.report())),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            let err = EngineError::Internal(format!("the native engine panicked: {what}"));
            (XFD_PANIC, error_json(&err.report()))
        }
    };
    if !bytes.is_empty() {
        // SAFETY: every caller passes a checked, writable `out`.
        unsafe { out.write(XfdBuffer::from_vec(bytes)) };
    }
    status
}

fn error_json(report: &ErrorReport) -> Vec<u8> {
    json::to_vec(report).unwrap_or_else(|_| br#"{"errorId":"Internal"}"#.to_vec())
}

#[cfg(test)]
mod tests;
