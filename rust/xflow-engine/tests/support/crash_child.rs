//! The crash tests' child process (feature `failpoints` only): reads a run configuration (JSON,
//! token included) on standard input, so the token never appears in a process argument, runs it,
//! prints each event as one JSON line on standard output. With `XFLOW_CRASH_AT` set it dies at
//! that crash point as `kill -9` would, so the parent sees a real crash, not an unwinding panic.

use std::io::{Read, Write};
use std::time::Duration;
use xflow_engine::{NextEvent, Run, RunConfig};

fn main() {
    let mut config = Vec::new();
    std::io::stdin()
        .read_to_end(&mut config)
        .expect("configuration on standard input");
    let config = RunConfig::from_json(&config).expect("a valid run configuration");
    let run = Run::start(config).expect("the run starts");
    let mut out = std::io::stdout().lock();
    loop {
        match run.next_event(Duration::from_secs(300)) {
            NextEvent::Event(event) => {
                serde_json::to_writer(&mut out, &event).expect("stdout");
                writeln!(out).expect("stdout");
            }
            NextEvent::Timeout => panic!("no event for 300 s"),
            NextEvent::Finished => break,
        }
    }
}
