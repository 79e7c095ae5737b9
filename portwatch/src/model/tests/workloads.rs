//! Cgroup ids on events → workloads: asked once per id, learned from outside, shown on every
//! process view, and kept by sockets whose owner has exited.

use super::super::{CgroupWorkload, testutil::*};
use crate::{
    model::{Model, PoolKey},
    workload::{Runtime, cgroup},
};

const CTR: u64 = 0x5151;

fn in_container(pid: u32, comm: &str) -> crate::event::Task {
    crate::event::Task {
        cgroup: CTR,
        ..task(pid, comm)
    }
}

fn learned() -> Vec<CgroupWorkload> {
    let mut w = cgroup::parse_path(
        "/libpod_parent/libpod-abddff03dfd7710c79a750ce3e730365cbb2c8247a974170c1062683bc3e9152",
    );
    w.container.as_mut().unwrap().name = Some("pw-exhaust".into());
    vec![CgroupWorkload {
        cgroup: CTR,
        workload: w,
    }]
}

#[test]
fn each_cgroup_is_asked_for_once_and_named_everywhere() {
    let mut m = Model::default();
    let mut s = Seq::new();
    s.connect(
        in_container(300, "python3"),
        0x20,
        "127.0.0.1",
        40000,
        "127.0.0.1:8080",
    )
    .connect(
        in_container(300, "python3"),
        0x21,
        "127.0.0.1",
        40002,
        "127.0.0.1:8080",
    )
    .run(&mut m);
    assert_eq!(m.cgroups_to_resolve(), vec![CTR]);
    assert_eq!(m.cgroups_to_resolve(), Vec::<u64>::new());
    // Unknown yet: no workload, no error.
    assert_eq!(m.processes(10)[0].process.workload, None);
    m.learn_workloads(&learned());
    let p = &m.processes(10)[0].process;
    let c = p.workload.as_ref().unwrap().container.as_ref().unwrap();
    assert_eq!(
        (c.runtime, c.name.as_deref()),
        (Runtime::Podman, Some("pw-exhaust"))
    );
    let json = serde_json::to_value(p).unwrap();
    assert_eq!(json["container"]["name"], "pw-exhaust");
    assert_eq!(json["comm"], "python3");
    assert_consistent(&m);
}

#[test]
fn a_time_wait_socket_names_the_container_of_its_exited_owner() {
    let mut m = Model::default();
    let mut s = Seq::new();
    s.connect(
        in_container(300, "python3"),
        0x20,
        "127.0.0.1",
        40000,
        "127.0.0.1:8080",
    )
    .active_close(swapper(), 0x20, 0x99, "127.0.0.1:40000", "127.0.0.1:8080")
    .run(&mut m);
    m.learn_workloads(&learned());
    // The process is gone (no event names it again); its TIME_WAIT socket still is its.
    let key = PoolKey {
        netns: NETNS,
        src: "127.0.0.1".parse().unwrap(),
        dst: addr("127.0.0.1:8080"),
    };
    let socks = m.pool_sockets(&key, s.now(), 10);
    assert!(socks[0].timewait);
    let w = socks[0].owner.as_ref().unwrap().workload.as_ref().unwrap();
    assert_eq!(
        w.container.as_ref().unwrap().name.as_deref(),
        Some("pw-exhaust")
    );
    let pool = m.pools(s.now(), 10).into_iter().next().unwrap();
    let owner = pool.owners[0].owner.as_ref().unwrap();
    assert_eq!(
        owner
            .workload
            .as_ref()
            .and_then(|w| w.whereabouts())
            .as_deref(),
        Some("container pw-exhaust (podman abddff03dfd7)")
    );
    assert_consistent(&m);
}

#[test]
fn events_without_a_cgroup_do_not_move_a_process() {
    let mut m = Model::default();
    let mut s = Seq::new();
    s.connect(
        in_container(300, "python3"),
        0x20,
        "127.0.0.1",
        40000,
        "127.0.0.1:8080",
    )
    .run(&mut m);
    m.cgroups_to_resolve();
    // An event of the same task without a cgroup id keeps the known one.
    s.connect(
        task(300, "python3"),
        0x21,
        "127.0.0.1",
        40002,
        "127.0.0.1:8080",
    )
    .run(&mut m);
    assert_eq!(m.cgroups_to_resolve(), Vec::<u64>::new());
    m.learn_workloads(&learned());
    assert!(m.processes(10)[0].process.workload.is_some());
}
