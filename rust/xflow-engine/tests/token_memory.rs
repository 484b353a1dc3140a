//! The API token leaves no copy behind in freed memory: every heap block freed while the
//! configuration is parsed and validated, the HTTP client with its token header is built and
//! dropped, and a preflight request is answered, is searched for the token. (What hyper copies
//! into a connection's send buffer while a request goes out is not covered: no request is sent.)
//! A test binary of its own, because its allocator sees every allocation of the process.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const TOKEN: &[u8] = b"tok-zeroize-probe-5d1c9a77e0";

struct Searching;

static ARMED: AtomicBool = AtomicBool::new(false);
static FOUND: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; `dealloc` only reads the
// block it is handed, before freeing it.
unsafe impl GlobalAlloc for Searching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ARMED.load(Ordering::Relaxed) {
            // SAFETY: the block is live and `layout.size()` bytes long until it is freed below.
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            if block.windows(TOKEN.len()).any(|w| w == TOKEN) {
                FOUND.fetch_add(1, Ordering::Relaxed);
            }
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Searching = Searching;

#[test]
fn no_freed_block_ever_held_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = std::str::from_utf8(TOKEN).unwrap();
    let config = serde_json::json!({
        "baseUrl": "https://xflow.example/api/v1",
        "apiToken": token,
        "sdLoenPath": dir.path(),
        "statePath": dir.path().join("state"),
    });
    // The caller's buffers hold the token too; like the C# side, they are zeroed before freeing.
    let mut run_json = config.to_string().into_bytes();
    let mut preflight_json = serde_json::json!({
        "op": "preflight",
        "config": { "baseUrl": "http://xflow.example/", "apiToken": token,
                    "sdLoenPath": dir.path(), "statePath": dir.path().join("state") },
    })
    .to_string()
    .into_bytes();
    drop(config);

    ARMED.store(true, Ordering::SeqCst);
    {
        let parsed = xflow_engine::RunConfig::from_json(&run_json).unwrap();
        let validated = parsed.clone().validate().unwrap();
        let client = xflow_engine::protocol::Client::new(&validated).unwrap();
        drop((parsed, validated, client));
        let cancel = xflow_engine::CancellationToken::new();
        let op = xflow_engine::calls::op_of(&preflight_json).unwrap();
        let answer = xflow_engine::calls::handle(&op, &preflight_json, &cancel).unwrap();
        let checks = serde_json::to_string(&answer).unwrap();
        assert!(checks.contains("refusing plain http"), "{checks}");
    }
    run_json.fill(0);
    preflight_json.fill(0);
    drop((run_json, preflight_json));
    ARMED.store(false, Ordering::SeqCst);

    assert_eq!(
        FOUND.load(Ordering::SeqCst),
        0,
        "freed heap blocks still held the token"
    );
}
