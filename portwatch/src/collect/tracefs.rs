//! tracefs: mounted if missing (classic tracepoints are attached through it), and the
//! syscall tracepoints' record formats checked against the offsets the programs read.

use std::{
    ffi::CString,
    path::{Path, PathBuf},
};

use portwatch_common::syscall_tp;

/// Where tracefs is normally mounted; aya looks here first.
pub const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

/// Where tracefs is reachable now, if anywhere.
pub fn find() -> Option<PathBuf> {
    [TRACEFS, DEBUGFS_TRACING]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.join("events").is_dir())
}

/// Returns tracefs's mount point, mounting it on /sys/kernel/tracing when it is not mounted.
/// `Ok((path, true))` when this call mounted it.
pub fn ensure_mounted() -> anyhow::Result<(PathBuf, bool)> {
    if let Some(p) = find() {
        return Ok((p, false));
    }
    let target = CString::new(TRACEFS)?;
    let fstype = CString::new("tracefs")?;
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        anyhow::bail!(
            "tracefs is not mounted and mounting it on {TRACEFS} failed: {err} \
             (mount it by hand: mount -t tracefs tracefs {TRACEFS})"
        );
    }
    Ok((PathBuf::from(TRACEFS), true))
}

/// One `field:` line of a tracepoint format file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatField {
    pub name: String,
    pub offset: usize,
    pub size: usize,
}

/// Parses the `field:` lines of a tracefs `format` file.
pub fn parse_format(text: &str) -> Vec<FormatField> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("field:") else {
            continue;
        };
        let mut parts = rest.split(';').map(str::trim);
        let decl = parts.next().unwrap_or("");
        let mut offset = None;
        let mut size = None;
        for p in parts {
            if let Some(v) = p.strip_prefix("offset:") {
                offset = v.parse().ok();
            } else if let Some(v) = p.strip_prefix("size:") {
                size = v.parse().ok();
            }
        }
        // The name is the last identifier of the declaration, before any `[N]`.
        let decl = decl.split('[').next().unwrap_or(decl);
        let name = decl.rsplit([' ', '*']).next().unwrap_or("").to_string();
        if let (Some(offset), Some(size)) = (offset, size) {
            out.push(FormatField { name, offset, size });
        }
    }
    out
}

/// Checks that the fields the programs read are where they expect: `(name, offset, size)`.
pub fn check_fields(text: &str, want: &[(&str, usize, usize)]) -> Result<(), String> {
    let fields = parse_format(text);
    for &(name, offset, size) in want {
        match fields.iter().find(|f| f.name == name) {
            None => return Err(format!("no field `{name}`")),
            Some(f) if f.offset != offset || f.size != size => {
                return Err(format!(
                    "field `{name}` is at offset {} size {}; the program reads offset {offset} \
                     size {size}",
                    f.offset, f.size
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The fields each syscall tracepoint program reads.
pub fn syscall_fields(name: &str) -> Vec<(&'static str, usize, usize)> {
    use syscall_tp::*;
    match name {
        "sys_enter_connect" => {
            vec![
                ("fd", ENTER_FD, 8),
                ("uservaddr", ENTER_ADDR, 8),
                ("addrlen", ENTER_ADDRLEN, 8),
            ]
        }
        "sys_enter_bind" => {
            vec![
                ("fd", ENTER_FD, 8),
                ("umyaddr", ENTER_ADDR, 8),
                ("addrlen", ENTER_ADDRLEN, 8),
            ]
        }
        _ => vec![("ret", EXIT_RET, 8)],
    }
}

/// Reads `events/<category>/<name>/format` under `tracefs` and checks the program's fields.
pub fn check_tracepoint(tracefs: &Path, category: &str, name: &str) -> Result<(), String> {
    let path = tracefs
        .join("events")
        .join(category)
        .join(name)
        .join("format");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    check_fields(&text, &syscall_fields(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONNECT_6_18: &str = "name: sys_enter_connect
ID: 1709
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int fd;\toffset:16;\tsize:8;\tsigned:0;
\tfield:struct sockaddr * uservaddr;\toffset:24;\tsize:8;\tsigned:0;
\tfield:int addrlen;\toffset:32;\tsize:8;\tsigned:0;
\tfield:__u8 saddr[4];\toffset:36;\tsize:4;\tsigned:0;
";

    #[test]
    fn parses_names_offsets_and_sizes() {
        let f = parse_format(CONNECT_6_18);
        assert_eq!(f.len(), 9);
        assert_eq!(
            f[5],
            FormatField {
                name: "fd".into(),
                offset: 16,
                size: 8
            }
        );
        assert_eq!(
            f[6],
            FormatField {
                name: "uservaddr".into(),
                offset: 24,
                size: 8
            }
        );
        assert_eq!(
            f[8],
            FormatField {
                name: "saddr".into(),
                offset: 36,
                size: 4
            }
        );
    }

    #[test]
    fn accepts_the_6_18_layout_and_rejects_a_moved_field() {
        let want = syscall_fields("sys_enter_connect");
        assert_eq!(check_fields(CONNECT_6_18, &want), Ok(()));
        let moved = CONNECT_6_18.replace("offset:24", "offset:20");
        assert!(
            check_fields(&moved, &want)
                .unwrap_err()
                .contains("uservaddr")
        );
        let missing = CONNECT_6_18.replace("addrlen", "len");
        assert_eq!(
            check_fields(&missing, &want),
            Err("no field `addrlen`".into())
        );
    }
}
