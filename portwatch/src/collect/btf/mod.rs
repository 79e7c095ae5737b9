//! Just enough of a BTF reader to find struct member offsets in the running kernel
//! (/sys/kernel/btf/vmlinux), so that the eBPF programs read `struct sock`, `struct net`,
//! `struct inet_timewait_sock`… at the offsets of *this* kernel rather than hard-coded ones.
//! Format: Documentation/bpf/btf.rst.
//!
//! Why not `aya-obj`'s BTF parser (`aya_obj::btf::Btf`, 0.3.0, which aya uses for CO-RE)? It
//! parses vmlinux fine, but its public API answers only "which type id has this name"
//! (`id_by_type_name_kind`): `type_by_id`, `string_at` and `type_size` are `pub(crate)`, and
//! so are `Struct::members`/`Union::members` and every field of `BtfMember` (name, type,
//! offset) — no struct member, no offset and no bitfield flag can be read from outside the
//! crate. Member offsets are what this module exists for, so it stays hand-written (about
//! 200 lines of parsing; no `unsafe`). Bitfields: none of the members portwatch reads is one,
//! and [`Btf::field`] refuses one ([`BtfError::Bitfield`]) rather than give a byte offset.

use std::{collections::HashMap, path::Path};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BtfError {
    #[error("BTF data is truncated or malformed at byte {offset}: {what}")]
    Malformed { offset: usize, what: &'static str },
    #[error("no struct or union named `{0}` in the kernel's BTF")]
    NoStruct(String),
    #[error("`{ty}` has no member `{member}` in the kernel's BTF")]
    NoMember { ty: String, member: String },
    #[error("`{ty}.{member}` is a bitfield; portwatch cannot read it")]
    Bitfield { ty: String, member: String },
    #[error("`{ty}.{member}` is not a struct or union, so `{next}` cannot be inside it")]
    NotComposite {
        ty: String,
        member: String,
        next: String,
    },
    #[error("reading {path}: {err}")]
    Io { path: String, err: String },
}

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_FLOAT: u32 = 16;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

#[derive(Debug, Clone)]
struct Member {
    name: u32,
    ty: u32,
    /// Bit offset from the start of the composite.
    bit_offset: u32,
    /// Non-zero for bitfields (only with `kind_flag`).
    bitfield_size: u32,
}

#[derive(Debug, Clone)]
enum Type {
    /// struct or union
    Composite {
        size: u32,
        members: Vec<Member>,
    },
    /// typedef, volatile, const, restrict, type tag: look through to `ty`.
    Alias {
        ty: u32,
    },
    Int {
        size: u32,
    },
    Ptr,
    Array {
        elem: u32,
        n: u32,
    },
    Other {
        size: u32,
    },
}

/// A member found by [`Btf::field`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Byte offset from the start of the outer struct.
    pub offset: u64,
    /// Size in bytes, when BTF gives one.
    pub size: Option<u64>,
}

pub struct Btf {
    types: Vec<Type>, // index = type id; id 0 is void
    strings: Vec<u8>,
    composites_by_name: HashMap<String, u32>,
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, BtfError> {
    data.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(BtfError::Malformed {
            offset: at,
            what: "unexpected end",
        })
}

impl Btf {
    pub fn from_file(path: &Path) -> Result<Btf, BtfError> {
        let data = std::fs::read(path).map_err(|e| BtfError::Io {
            path: path.display().to_string(),
            err: e.to_string(),
        })?;
        Btf::parse(&data)
    }

    /// Parses raw (little-endian) BTF as /sys/kernel/btf/vmlinux holds it.
    pub fn parse(data: &[u8]) -> Result<Btf, BtfError> {
        let magic = data.get(0..2).ok_or(BtfError::Malformed {
            offset: 0,
            what: "empty",
        })?;
        if magic != [0x9f, 0xeb] {
            return Err(BtfError::Malformed {
                offset: 0,
                what: "bad magic (not little-endian BTF)",
            });
        }
        let hdr_len = u32_at(data, 4)? as usize;
        let type_off = u32_at(data, 8)? as usize;
        let type_len = u32_at(data, 12)? as usize;
        let str_off = u32_at(data, 16)? as usize;
        let str_len = u32_at(data, 20)? as usize;
        let types_start = hdr_len + type_off;
        let types_end = types_start + type_len;
        let strs_start = hdr_len + str_off;
        let strings = data
            .get(strs_start..strs_start + str_len)
            .ok_or(BtfError::Malformed {
                offset: strs_start,
                what: "string section",
            })?
            .to_vec();
        if types_end > data.len() {
            return Err(BtfError::Malformed {
                offset: types_end,
                what: "type section",
            });
        }
        let mut types = vec![Type::Other { size: 0 }];
        let mut named = Vec::new();
        let mut at = types_start;
        while at < types_end {
            let name_off = u32_at(data, at)?;
            let info = u32_at(data, at + 4)?;
            let size_or_type = u32_at(data, at + 8)?;
            at += 12;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 == 1;
            let ty = match kind {
                KIND_INT => {
                    at += 4;
                    Type::Int { size: size_or_type }
                }
                KIND_PTR => Type::Ptr,
                KIND_ARRAY => {
                    let elem = u32_at(data, at)?;
                    let n = u32_at(data, at + 8)?;
                    at += 12;
                    Type::Array { elem, n }
                }
                KIND_STRUCT | KIND_UNION => {
                    let mut members = Vec::with_capacity(vlen);
                    for _ in 0..vlen {
                        let name = u32_at(data, at)?;
                        let ty = u32_at(data, at + 4)?;
                        let off = u32_at(data, at + 8)?;
                        at += 12;
                        let (bit_offset, bitfield_size) = if kind_flag {
                            (off & 0xff_ffff, off >> 24)
                        } else {
                            (off, 0)
                        };
                        members.push(Member {
                            name,
                            ty,
                            bit_offset,
                            bitfield_size,
                        });
                    }
                    if name_off != 0 {
                        named.push((name_off, types.len() as u32));
                    }
                    Type::Composite {
                        size: size_or_type,
                        members,
                    }
                }
                KIND_ENUM => {
                    at += 8 * vlen;
                    Type::Other { size: size_or_type }
                }
                KIND_ENUM64 => {
                    at += 12 * vlen;
                    Type::Other { size: size_or_type }
                }
                KIND_FWD | KIND_FUNC => Type::Other { size: 0 },
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    Type::Alias { ty: size_or_type }
                }
                KIND_FUNC_PROTO => {
                    at += 8 * vlen;
                    Type::Other { size: 0 }
                }
                KIND_VAR | KIND_DECL_TAG => {
                    at += 4;
                    Type::Other { size: 0 }
                }
                KIND_DATASEC => {
                    at += 12 * vlen;
                    Type::Other { size: size_or_type }
                }
                KIND_FLOAT => Type::Other { size: size_or_type },
                _ => {
                    return Err(BtfError::Malformed {
                        offset: at - 12,
                        what: "unknown type kind",
                    });
                }
            };
            types.push(ty);
        }
        let mut btf = Btf {
            types,
            strings,
            composites_by_name: HashMap::new(),
        };
        for (name_off, id) in named {
            let name = btf.str_at(name_off).to_string();
            // The first definition wins (vmlinux has one per name; duplicates are forwards).
            btf.composites_by_name.entry(name).or_insert(id);
        }
        Ok(btf)
    }

    fn str_at(&self, off: u32) -> &str {
        let start = off as usize;
        let Some(rest) = self.strings.get(start..) else {
            return "";
        };
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).unwrap_or("")
    }

    fn resolve(&self, mut id: u32) -> Option<&Type> {
        for _ in 0..32 {
            match self.types.get(id as usize)? {
                Type::Alias { ty } => id = *ty,
                t => return Some(t),
            }
        }
        None
    }

    fn size_of(&self, id: u32) -> Option<u64> {
        match self.resolve(id)? {
            Type::Composite { size, .. } | Type::Int { size } | Type::Other { size } => {
                Some(*size as u64).filter(|&s| s > 0)
            }
            Type::Ptr => Some(8),
            Type::Array { elem, n } => Some(self.size_of(*elem)? * *n as u64),
            Type::Alias { .. } => None,
        }
    }

    /// Finds `name` among the members of composite `id`, looking inside anonymous struct and
    /// union members as C does. Returns the member and its bit offset from `id`'s start.
    fn find_member(&self, id: u32, name: &str) -> Option<(Member, u32)> {
        let Some(Type::Composite { members, .. }) = self.resolve(id) else {
            return None;
        };
        for m in members {
            let mname = self.str_at(m.name);
            if mname == name {
                return Some((m.clone(), m.bit_offset));
            }
            if mname.is_empty()
                && let Some((found, off)) = self.find_member(m.ty, name)
            {
                return Some((found, m.bit_offset + off));
            }
        }
        None
    }

    /// Offset and size of `path` (members separated by dots, e.g. `"ns.inum"`) inside the
    /// struct or union named `ty`.
    pub fn field(&self, ty: &str, path: &str) -> Result<Field, BtfError> {
        let mut id = *self
            .composites_by_name
            .get(ty)
            .ok_or_else(|| BtfError::NoStruct(ty.to_string()))?;
        let mut cur_name = ty.to_string();
        let mut bits: u64 = 0;
        let mut last: Option<Member> = None;
        for part in path.split('.') {
            if let Some(prev) = &last {
                if !matches!(self.resolve(prev.ty), Some(Type::Composite { .. })) {
                    return Err(BtfError::NotComposite {
                        ty: ty.to_string(),
                        member: cur_name,
                        next: part.to_string(),
                    });
                }
                id = prev.ty;
            }
            let (m, off) = self
                .find_member(id, part)
                .ok_or_else(|| BtfError::NoMember {
                    ty: cur_name.clone(),
                    member: part.to_string(),
                })?;
            if m.bitfield_size != 0 || off % 8 != 0 {
                return Err(BtfError::Bitfield {
                    ty: ty.to_string(),
                    member: path.to_string(),
                });
            }
            bits += off as u64;
            cur_name = part.to_string();
            last = Some(m);
        }
        let last = last.expect("split yields at least one part");
        Ok(Field {
            offset: bits / 8,
            size: self.size_of(last.ty),
        })
    }
}

#[cfg(test)]
mod tests;
