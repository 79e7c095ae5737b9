//! The BTF reader on hand-built BTF: direct, anonymous and nested members, errors, and
//! truncated input.

use super::*;

/// Builds raw BTF: `struct inner { int a; int b; }`,
/// `struct outer { long x; union { struct { int p; int q; }; long r; }; struct inner in; }`.
fn sample() -> Vec<u8> {
    let strings = b"\0int\0long\0inner\0a\0b\0outer\0x\0p\0q\0r\0in\0".to_vec();
    let s = |name: &str| -> u32 {
        let needle = format!("\0{name}\0");
        strings
            .windows(needle.len())
            .position(|w| w == needle.as_bytes())
            .unwrap() as u32
            + 1
    };
    let mut t = Vec::<u8>::new();
    let mut put = |v: u32| t.extend_from_slice(&v.to_le_bytes());
    // 1: int (4 bytes)
    put(s("int"));
    put(KIND_INT << 24);
    put(4);
    put(32);
    // 2: long (8 bytes)
    put(s("long"));
    put(KIND_INT << 24);
    put(8);
    put(64);
    // 3: struct inner { int a; int b; }
    put(s("inner"));
    put(KIND_STRUCT << 24 | 2);
    put(8);
    for (n, off) in [("a", 0), ("b", 32)] {
        put(s(n));
        put(1);
        put(off);
    }
    // 4: anonymous struct { int p; int q; }
    put(0);
    put(KIND_STRUCT << 24 | 2);
    put(8);
    for (n, off) in [("p", 0), ("q", 32)] {
        put(s(n));
        put(1);
        put(off);
    }
    // 5: anonymous union { struct 4; long r; }
    put(0);
    put(KIND_UNION << 24 | 2);
    put(8);
    put(0);
    put(4);
    put(0);
    put(s("r"));
    put(2);
    put(0);
    // 6: typedef inner_t = 3 (unnamed here; aliases are looked through)
    put(0);
    put(KIND_TYPEDEF << 24);
    put(3);
    // 7: struct outer { long x; union 5; inner_t in; }
    put(s("outer"));
    put(KIND_STRUCT << 24 | 3);
    put(24);
    for (n, ty, off) in [(0u32, 2u32, 0u32), (0, 5, 64), (s("in"), 6, 128)] {
        put(n);
        put(ty);
        put(off);
    }
    // patch x's name (written as 0 above to keep the closure simple)
    let x_name_at = t.len() - 3 * 12;
    t[x_name_at..x_name_at + 4].copy_from_slice(&s("x").to_le_bytes());
    let mut out = Vec::new();
    out.extend_from_slice(&[0x9f, 0xeb, 1, 0]);
    out.extend_from_slice(&24u32.to_le_bytes()); // hdr_len
    out.extend_from_slice(&0u32.to_le_bytes()); // type_off
    out.extend_from_slice(&(t.len() as u32).to_le_bytes());
    out.extend_from_slice(&(t.len() as u32).to_le_bytes()); // str_off
    out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    out.extend_from_slice(&t);
    out.extend_from_slice(&strings);
    out
}

#[test]
fn finds_direct_anonymous_and_nested_members() {
    let btf = Btf::parse(&sample()).unwrap();
    assert_eq!(
        btf.field("outer", "x").unwrap(),
        Field {
            offset: 0,
            size: Some(8)
        }
    );
    assert_eq!(
        btf.field("outer", "p").unwrap(),
        Field {
            offset: 8,
            size: Some(4)
        }
    );
    assert_eq!(
        btf.field("outer", "q").unwrap(),
        Field {
            offset: 12,
            size: Some(4)
        }
    );
    assert_eq!(
        btf.field("outer", "r").unwrap(),
        Field {
            offset: 8,
            size: Some(8)
        }
    );
    assert_eq!(
        btf.field("outer", "in.b").unwrap(),
        Field {
            offset: 20,
            size: Some(4)
        }
    );
    assert_eq!(
        btf.field("inner", "b").unwrap(),
        Field {
            offset: 4,
            size: Some(4)
        }
    );
}

#[test]
fn reports_what_is_missing() {
    let btf = Btf::parse(&sample()).unwrap();
    assert_eq!(
        btf.field("nope", "x"),
        Err(BtfError::NoStruct("nope".into()))
    );
    assert!(matches!(
        btf.field("outer", "zz"),
        Err(BtfError::NoMember { .. })
    ));
    assert!(matches!(
        btf.field("outer", "x.y"),
        Err(BtfError::NotComposite { .. })
    ));
}

#[test]
fn truncated_input_is_an_error() {
    let data = sample();
    for len in 0..data.len() {
        // Must not panic; most prefixes are errors.
        let _ = Btf::parse(&data[..len]);
    }
    assert!(Btf::parse(&data[..30]).is_err());
    assert!(Btf::parse(b"\x00\x00").is_err());
}
