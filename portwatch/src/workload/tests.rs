//! Real-world cgroup paths of each runtime and driver, each with where it was seen.

use rstest::rstest;

use super::*;

const ID_A: &str = "abddff03dfd7710c79a750ce3e730365cbb2c8247a974170c1062683bc3e9152";

fn container(w: &Workload) -> Option<(Runtime, &str)> {
    w.container.as_ref().map(|c| (c.runtime, c.id.as_str()))
}

fn uid(w: &Workload) -> Option<&str> {
    w.pod.as_ref().map(|p| p.uid.as_str())
}

#[rstest]
// docker, systemd driver, kubepods BestEffort QoS slice: `systemd-cgls` in
// kontena/pharos-cluster#440 (CentOS, 2018).
#[case::docker_systemd_besteffort(
    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod9692aa0e_748e_11e8_8dfa_76d458035df6.slice/docker-abddff03dfd7710c79a750ce3e730365cbb2c8247a974170c1062683bc3e9152.scope",
    Some((Runtime::Docker, ID_A)),
    Some("9692aa0e-748e-11e8-8dfa-76d458035df6"),
    Some("docker-abddff03dfd7710c79a750ce3e730365cbb2c8247a974170c1062683bc3e9152.scope"),
    Some("kubepods-besteffort-pod9692aa0e_748e_11e8_8dfa_76d458035df6.slice")
)]
// docker, systemd driver, Burstable: the `name=systemd` mount in kubernetes/kubernetes#95488.
#[case::docker_systemd_burstable(
    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pode4193b51_e5f8_4348_90b3_5423cb74e0d1.slice/docker-57353a2ab1bd38bc5b00500bd4dc9795b6bf0e6e3a15479c474ccb3be605cef8.scope",
    Some((Runtime::Docker, "57353a2ab1bd38bc5b00500bd4dc9795b6bf0e6e3a15479c474ccb3be605cef8")),
    Some("e4193b51-e5f8-4348-90b3-5423cb74e0d1"),
    Some("docker-57353a2ab1bd38bc5b00500bd4dc9795b6bf0e6e3a15479c474ccb3be605cef8.scope"),
    Some("kubepods-burstable-pode4193b51_e5f8_4348_90b3_5423cb74e0d1.slice")
)]
// Guaranteed pods sit directly under kubepods.slice: `/sys/fs/cgroup/cpu` tree in
// kubernetes/kubernetes#62896.
#[case::docker_systemd_guaranteed(
    "/kubepods.slice/kubepods-pod10231429_28f6_11e8_8903_74dbd1a06fe0.slice/docker-32cc26191dad2120ae02fbe32e3cb962c291591439f28765da6c2b8dd28d7e48.scope",
    Some((Runtime::Docker, "32cc26191dad2120ae02fbe32e3cb962c291591439f28765da6c2b8dd28d7e48")),
    Some("10231429-28f6-11e8-8903-74dbd1a06fe0"),
    Some("docker-32cc26191dad2120ae02fbe32e3cb962c291591439f28765da6c2b8dd28d7e48.scope"),
    Some("kubepods-pod10231429_28f6_11e8_8903_74dbd1a06fe0.slice")
)]
// containerd CRI, systemd driver, under kind's `kubelet.slice`: NRI plugin log in
// containerd/nri#227 (cgroup v2, 2025).
#[case::containerd_systemd_kind(
    "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod1e597579_417e_482f_bf65_5fe170c3aebd.slice/cri-containerd-a09bc17f5aa29b0dbdec9ede5f46cf1396d2405917ab02e6f1eb1019f388396e.scope",
    Some((Runtime::Containerd, "a09bc17f5aa29b0dbdec9ede5f46cf1396d2405917ab02e6f1eb1019f388396e")),
    Some("1e597579-417e-482f-bf65-5fe170c3aebd"),
    Some("cri-containerd-a09bc17f5aa29b0dbdec9ede5f46cf1396d2405917ab02e6f1eb1019f388396e.scope"),
    Some("kubelet-kubepods-besteffort-pod1e597579_417e_482f_bf65_5fe170c3aebd.slice")
)]
// CRI-O, systemd driver: `systemd-cgls` in openshift/microshift#697.
#[case::crio_systemd(
    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podc8bad552_5c99_4d4f_b71c_c426c0cde014.slice/crio-15b6e0c6490cad17fcf69eb837794349b4df96f84ba96c6be9828fe281c055a9.scope",
    Some((Runtime::CriO, "15b6e0c6490cad17fcf69eb837794349b4df96f84ba96c6be9828fe281c055a9")),
    Some("c8bad552-5c99-4d4f-b71c-c426c0cde014"),
    Some("crio-15b6e0c6490cad17fcf69eb837794349b4df96f84ba96c6be9828fe281c055a9.scope"),
    Some("kubepods-besteffort-podc8bad552_5c99_4d4f_b71c_c426c0cde014.slice")
)]
// CRI-O's monitor is not the container: same `systemd-cgls` (openshift/microshift#697).
#[case::crio_conmon(
    "/system.slice/crio-conmon-e0c85fe7644a858988d9687c2e0736a7d31922740d0f3e001c6b2e0aa7e5f528.scope",
    None,
    None,
    Some("crio-conmon-e0c85fe7644a858988d9687c2e0736a7d31922740d0f3e001c6b2e0aa7e5f528.scope"),
    Some("system.slice")
)]
// CRI-O inside a minikube node container (docker, cgroupfs): `systemctl status
// kubepods.slice` in kubernetes/minikube#11280. The innermost container wins.
#[case::crio_nested_in_docker(
    "/docker/d6701ec289c56e4391acb11d07474b3139466857a305490575508a8b7a9fcf22/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod2ca4a155_3599_498d_bb9d_4446693fa3ea.slice/crio-0ba8ac17e4e7a31fb82279503552fe94e64bab4745bf6fd2ff231e7c8ca8bed0.scope",
    Some((Runtime::CriO, "0ba8ac17e4e7a31fb82279503552fe94e64bab4745bf6fd2ff231e7c8ca8bed0")),
    Some("2ca4a155-3599-498d-bb9d-4446693fa3ea"),
    Some("crio-0ba8ac17e4e7a31fb82279503552fe94e64bab4745bf6fd2ff231e7c8ca8bed0.scope"),
    Some("kubepods-besteffort-pod2ca4a155_3599_498d_bb9d_4446693fa3ea.slice")
)]
// The node container itself (docker, cgroupfs driver: `/docker/<id>`), same issue.
#[case::docker_cgroupfs(
    "/docker/d6701ec289c56e4391acb11d07474b3139466857a305490575508a8b7a9fcf22",
    Some((Runtime::Docker, "d6701ec289c56e4391acb11d07474b3139466857a305490575508a8b7a9fcf22")),
    None,
    None,
    None
)]
// docker, systemd driver, no Kubernetes: `systemd-cgls` in moby/moby#4450.
#[case::docker_systemd(
    "/system.slice/system-docker.slice/docker-d6b15f04feb95083acea4b9caa6e59f8ebe67e3e3cf9cb8c59fad543490ee3ef.scope",
    Some((Runtime::Docker, "d6b15f04feb95083acea4b9caa6e59f8ebe67e3e3cf9cb8c59fad543490ee3ef")),
    None,
    Some("docker-d6b15f04feb95083acea4b9caa6e59f8ebe67e3e3cf9cb8c59fad543490ee3ef.scope"),
    Some("system-docker.slice")
)]
// podman, systemd driver, and its monitor: `systemd-cgls` in podman #507 (containers/podman).
#[case::podman_systemd(
    "/machine.slice/libpod-0411a2a82311fbc65b137ca550d5f7e6b6863bc734759be2f515b0b67062d49a.scope",
    Some((Runtime::Podman, "0411a2a82311fbc65b137ca550d5f7e6b6863bc734759be2f515b0b67062d49a")),
    None,
    Some("libpod-0411a2a82311fbc65b137ca550d5f7e6b6863bc734759be2f515b0b67062d49a.scope"),
    Some("machine.slice")
)]
#[case::podman_conmon(
    "/machine.slice/libpod-conmon-0411a2a82311fbc65b137ca550d5f7e6b6863bc734759be2f515b0b67062d49a.scope",
    None,
    None,
    Some("libpod-conmon-0411a2a82311fbc65b137ca550d5f7e6b6863bc734759be2f515b0b67062d49a.scope"),
    Some("machine.slice")
)]
// podman `--cgroups=split` under a service: coroot/coroot-node-agent#251.
#[case::podman_split(
    "/system.slice/app_name.service/libpod-payload-cc316b3065798e96c30dcfc708f7a7dda1b2d78e552364002d2e49a3100ef3ef",
    Some((Runtime::Podman, "cc316b3065798e96c30dcfc708f7a7dda1b2d78e552364002d2e49a3100ef3ef")),
    None,
    Some("app_name.service"),
    Some("system.slice")
)]
// podman 4.3.1, runc, cgroupfs manager, on this machine: `/proc/self/cgroup` inside
// `podman --runtime runc --cgroup-manager cgroupfs run … python3` (see PODMAN_HERE below).
#[case::podman_cgroupfs(
    "/libpod_parent/libpod-e0341720f520fb3b4b833c2b648ec1e59994ea1e0d8ade5c9d1c4098ee327888",
    Some((Runtime::Podman, "e0341720f520fb3b4b833c2b648ec1e59994ea1e0d8ade5c9d1c4098ee327888")),
    None,
    None,
    None
)]
// kubelet cgroupfs driver: the pod path from kubeservice-stack/local-cloud-csi-driver#4
// (`/sys/fs/cgroup/blkio/kubepods/besteffort/pod13e0457a-…`); the container below it is
// named by its bare id (containerd, dockershim) …
#[case::cri_cgroupfs(
    "/kubepods/besteffort/pod13e0457a-bb6a-4190-a67b-fd34cfb441c9/abddff03dfd7710c79a750ce3e730365cbb2c8247a974170c1062683bc3e9152",
    Some((Runtime::Cri, ID_A)),
    Some("13e0457a-bb6a-4190-a67b-fd34cfb441c9"),
    None,
    None
)]
// … or `crio-<id>` (cri-o/cri-o#812: "cgroupfs syntax is now `crio-$CONTAINER_ID`").
#[case::crio_cgroupfs(
    "/kubepods/burstable/pod13e0457a-bb6a-4190-a67b-fd34cfb441c9/crio-abddff03dfd7710c79a750ce3e730365cbb2c8247a974170c1062683bc3e9152",
    Some((Runtime::CriO, ID_A)),
    Some("13e0457a-bb6a-4190-a67b-fd34cfb441c9"),
    None,
    None
)]
#[case::pod_only_cgroupfs(
    "/kubepods/besteffort/pod13e0457a-bb6a-4190-a67b-fd34cfb441c9",
    None,
    Some("13e0457a-bb6a-4190-a67b-fd34cfb441c9"),
    None,
    None
)]
// Host services: `ControlGroup=/system.slice/kubelet.service` in
// kata-containers/kata-containers#6232; a login session (systemd-logind's naming).
#[case::host_service(
    "/system.slice/kubelet.service",
    None,
    None,
    Some("kubelet.service"),
    Some("system.slice")
)]
#[case::user_session(
    "/user.slice/user-1000.slice/session-3.scope",
    None,
    None,
    Some("session-3.scope"),
    Some("user-1000.slice")
)]
#[case::root("/", None, None, None, None)]
// What portwatch's own tests create on this host (no systemd: made by hand, named like a unit).
#[case::delegated_subgroup(
    "/system.slice/portwatch-test.service/worker",
    None,
    None,
    Some("portwatch-test.service"),
    Some("system.slice")
)]
fn paths(
    #[case] path: &str,
    #[case] want_container: Option<(Runtime, &str)>,
    #[case] want_uid: Option<&str>,
    #[case] want_unit: Option<&str>,
    #[case] want_slice: Option<&str>,
) {
    let w = cgroup::parse_path(path);
    assert_eq!(w.cgroup, path);
    assert_eq!(container(&w), want_container, "container of {path}");
    assert_eq!(uid(&w), want_uid, "pod of {path}");
    assert_eq!(w.unit.as_deref(), want_unit, "unit of {path}");
    assert_eq!(w.slice.as_deref(), want_slice, "slice of {path}");
}

#[test]
fn ordinary_names_are_not_ids() {
    for path in [
        "/docker",
        "/docker/buildkit",
        "/pods/podman",
        "/kubepods.slice",
        "/kubepods/besteffort",
        "/system.slice/docker-compose@web.service",
        "/process_api/d74c0feaa9b15803bbce3d6223387aba",
    ] {
        let w = cgroup::parse_path(path);
        assert_eq!(w.container, None, "{path}");
        assert_eq!(w.pod, None, "{path}");
    }
}

/// `/proc/PID/cgroup` of this very host kind (hybrid: v1 controllers, `name=systemd` and the
/// unified `0::` line), as `cat /proc/self/cgroup` shows it here.
const HYBRID_ROOT: &str = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/d74c0feaa9b15803bbce3d6223387aba\n1:cpu:/\n0::/\n";

/// `/proc/self/cgroup` of a python3 in a podman container here (v1 controllers and the unified
/// line all name the container).
const PODMAN_HERE: &str = "9:name=systemd:/libpod_parent/libpod-e0341720f520fb3b4b833c2b648ec1e59994ea1e0d8ade5c9d1c4098ee327888
4:memory:/libpod_parent/libpod-e0341720f520fb3b4b833c2b648ec1e59994ea1e0d8ade5c9d1c4098ee327888
1:cpu:/libpod_parent/libpod-e0341720f520fb3b4b833c2b648ec1e59994ea1e0d8ade5c9d1c4098ee327888
0::/libpod_parent/libpod-e0341720f520fb3b4b833c2b648ec1e59994ea1e0d8ade5c9d1c4098ee327888
";

#[test]
fn a_podman_container_here() {
    let w = cgroup::parse_proc_cgroup(PODMAN_HERE).unwrap();
    let c = w.container.unwrap();
    assert_eq!(c.runtime, Runtime::Podman);
    assert_eq!(c.short_id(), "e0341720f520");
}

#[test]
fn proc_cgroup_picks_the_unified_line() {
    assert_eq!(cgroup::proc_cgroup_path(HYBRID_ROOT), Some("/"));
    let v2 = "0::/system.slice/nginx.service\n";
    assert_eq!(
        cgroup::proc_cgroup_path(v2),
        Some("/system.slice/nginx.service")
    );
    let w = cgroup::parse_proc_cgroup(v2).unwrap();
    assert_eq!(w.unit.as_deref(), Some("nginx.service"));
    assert_eq!(cgroup::proc_cgroup_path(""), None);
}

#[test]
fn proc_cgroup_falls_back_to_name_systemd_on_hybrid_and_v1_hosts() {
    // v1 only (no `0::` line): `cat /proc/2215/cgroup` in kontena/pharos-cluster#440.
    let v1 = "11:cpuacct,cpu:/system.slice\n6:memory:/system.slice\n1:name=systemd:/system.slice\n";
    assert_eq!(cgroup::proc_cgroup_path(v1), Some("/system.slice"));
    // Hybrid, systemd tracking the unit in name=systemd while the unified line says `/`.
    let hybrid = "1:name=systemd:/system.slice/nginx.service\n0::/\n";
    let w = cgroup::parse_proc_cgroup(hybrid).unwrap();
    assert_eq!(w.unit.as_deref(), Some("nginx.service"));
}

#[test]
fn labels_name_the_most_specific_thing() {
    let mut w = cgroup::parse_path(
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod9692aa0e_748e_11e8_8dfa_76d458035df6.slice/docker-abddff03dfd7710c79a750ce3e730365cbb2c8247a974170c1062683bc3e9152.scope",
    );
    assert_eq!(
        w.label().as_deref(),
        Some("docker abddff03dfd7 in pod 9692aa0e-748e-11e8-8dfa-76d458035df6")
    );
    w.container.as_mut().unwrap().name = Some("checkout".into());
    let p = w.pod.as_mut().unwrap();
    p.namespace = Some("shop".into());
    p.name = Some("checkout-7f9c-x2x".into());
    assert_eq!(
        w.label().as_deref(),
        Some("checkout in pod shop/checkout-7f9c-x2x")
    );
    let svc = cgroup::parse_path("/system.slice/nginx.service");
    assert_eq!(svc.label().as_deref(), Some("nginx.service"));
    assert_eq!(cgroup::parse_path("/").label(), None);
}

#[test]
fn workload_json_has_the_documented_shape() {
    let mut w = cgroup::parse_path(
        "/libpod_parent/libpod-abddff03dfd7710c79a750ce3e730365cbb2c8247a974170c1062683bc3e9152",
    );
    w.container.as_mut().unwrap().name = Some("pw-exhaust".into());
    let v = serde_json::to_value(&w).unwrap();
    assert_eq!(v["container"]["runtime"], "podman");
    assert_eq!(v["container"]["id"], ID_A);
    assert_eq!(v["container"]["name"], "pw-exhaust");
    assert!(v.get("pod").is_none());
    let back: Workload = serde_json::from_value(v).unwrap();
    assert_eq!(back, w);
}
