// Shared by xtask (which builds the eBPF object and stamps it) and portwatch/build.rs (which
// refuses to embed an object whose stamp does not match the sources): `include!`d by both,
// so it uses std only and no inner attributes or docs.

/// The files whose content determines the eBPF object, relative to the workspace root.
pub fn ebpf_input_files(root: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    for f in [
        "portwatch-ebpf/Cargo.toml",
        "portwatch-ebpf/Cargo.lock",
        "portwatch-ebpf/.cargo/config.toml",
        "portwatch-common/Cargo.toml",
    ] {
        files.push(root.join(f));
    }
    walk(&root.join("portwatch-ebpf/src"), &mut files)?;
    walk(&root.join("portwatch-common/src"), &mut files)?;
    files.sort();
    Ok(files)
}

/// FNV-1a over each input's path (relative to `root`) and content: what the object was built
/// from. Not cryptographic; it detects edits, not attacks.
pub fn ebpf_inputs_digest(root: &std::path::Path) -> std::io::Result<String> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= *b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for f in ebpf_input_files(root)? {
        let rel = f.strip_prefix(root).unwrap_or(&f);
        eat(rel.to_string_lossy().as_bytes());
        eat(&[0]);
        let content = std::fs::read(&f)?;
        eat(&(content.len() as u64).to_le_bytes());
        eat(&content);
    }
    Ok(format!("{h:016x}"))
}

/// Where `cargo xtask build-ebpf` puts the object and its stamp.
pub fn ebpf_artifacts(target_dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = target_dir.join("bpf");
    (dir.join("portwatch-ebpf.o"), dir.join("portwatch-ebpf.inputs"))
}
