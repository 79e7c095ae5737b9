//! Reads what the processes the model asks about execute (`/proc/PID/exe`, needs
//! CAP_SYS_PTRACE for other users' processes, which the deployments grant for the owner walk)
//! and hands the answers back as one [`Input::Executables`], so that the recording keeps them.
//! A process already gone, or not readable, is skipped: its `comm` still names it.

use crate::{
    event::Comm,
    model::{Input, Model, ProcessExe, Stamped},
};

/// The executables of the processes the model has not asked about yet, as an input (`None`
/// when there is nothing new). A readlink per new process, a few µs each.
pub fn learn(model: &mut Model) -> Option<Input> {
    let asked = model.processes_to_resolve();
    if asked.is_empty() {
        return None;
    }
    let learned: Vec<ProcessExe> = asked
        .into_iter()
        .filter_map(|(pid, comm): (u32, Comm)| {
            let target = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
            Some(ProcessExe {
                pid,
                comm: comm.to_string(),
                exe: ProcessExe::file_name(target.to_str()?)?,
            })
        })
        .collect();
    (!learned.is_empty()).then(|| Input::Executables(Stamped::new(model.now_ns(), learned)))
}
