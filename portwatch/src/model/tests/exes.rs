//! Processes → executables: each new process is asked about once, the answer is learned
//! through the input stream and shown on every process view; an answer for a pid that now
//! runs another program is ignored.

use super::super::testutil::*;
use crate::{
    event::Comm,
    model::{Input, Model, ProcessExe, Stamped},
};

fn exe(pid: u32, comm: &str, exe: &str) -> ProcessExe {
    ProcessExe {
        pid,
        comm: comm.into(),
        exe: exe.into(),
    }
}

#[test]
fn each_process_is_asked_about_once_and_its_executable_shown() {
    let mut m = Model::default();
    let mut s = Seq::new();
    s.connect(
        task(300, "billing"),
        0x20,
        "127.0.0.1",
        40000,
        "127.0.0.1:8080",
    )
    .connect(
        task(300, "billing"),
        0x21,
        "127.0.0.1",
        40002,
        "127.0.0.1:8080",
    )
    .run(&mut m);
    assert_eq!(m.processes_to_resolve(), vec![(300, Comm::new("billing"))]);
    assert!(m.processes_to_resolve().is_empty());
    assert_eq!(m.processes(10)[0].process.exe, None);
    let json = serde_json::to_value(&m.processes(10)[0].process).unwrap();
    assert!(json.get("exe").is_none(), "{json}");
    // The pid now runs something else under another name: not this process.
    m.feed(&Input::Executables(Stamped::new(
        1,
        vec![exe(300, "bash", "bash")],
    )));
    assert_eq!(m.processes(10)[0].process.exe, None);
    m.feed(&Input::Executables(Stamped::new(
        1,
        vec![exe(300, "billing", "python3.11")],
    )));
    let p = &m.processes(10)[0].process;
    assert_eq!(p.exe.as_deref(), Some("python3.11"));
    assert_eq!(serde_json::to_value(p).unwrap()["exe"], "python3.11");
}
