//! The export columns are a stable interface: these tests pin them.

use super::*;
use crate::record::export::{COLUMNS, Clock, CsvWriter, Format, JsonlWriter, Row, export};

const HEADER: &str = "time,ts_ns,netns,pid,tid,ppid,comm,type,op,old_state,new_state,\
local,remote,errno,fd,sk,bound_port,remaining_jiffies";

#[test]
fn csv_header_is_exact() {
    let w = CsvWriter::new(Vec::new()).unwrap();
    let out = String::from_utf8(w.into_inner()).unwrap();
    assert_eq!(out, format!("{HEADER}\n"));
    assert_eq!(COLUMNS.join(","), HEADER);
}

#[test]
fn jsonl_keys_are_exact_and_always_present() {
    let clock = Clock::new(&host());
    for e in sample_events() {
        let mut w = JsonlWriter::new(Vec::new());
        w.write(&Row::new(&e, &clock)).unwrap();
        let line = String::from_utf8(w.into_inner()).unwrap();
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        // Keys in column order (serde_json keeps struct field order).
        let mut keys = Vec::new();
        let mut de = serde_json::Deserializer::from_str(&line);
        let map: serde_json::Map<String, serde_json::Value> =
            serde::Deserialize::deserialize(&mut de).unwrap();
        keys.extend(map.keys().cloned());
        let mut sorted: Vec<&str> = COLUMNS.to_vec();
        sorted.sort_unstable();
        assert_eq!(keys, sorted, "every key, once");
        let order: Vec<usize> = COLUMNS
            .iter()
            .map(|c| line.find(&format!("\"{c}\":")).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{line}");
    }
}

#[test]
fn rows_carry_readable_values() {
    let clock = Clock::new(&host());
    let ev = sample_events();
    let r = Row::new(&ev[1], &clock);
    // Header clocks: wall 1_700_000_000 s at mono 86_400 s; event at mono 2 µs.
    assert_eq!(r.time.as_deref(), Some("2023-11-13T22:13:20.000002000Z"));
    let f = r.fields();
    let csv = |i: usize| f[i].clone().unwrap_or_default();
    assert_eq!(csv(7), "state");
    assert_eq!((csv(9), csv(10)), ("SYN_SENT".into(), "ESTABLISHED".into()));
    assert_eq!(
        (csv(11), csv(12)),
        ("127.0.0.1:40000".into(), "127.0.0.1:8080".into())
    );
    assert_eq!(csv(15), "0xffff888000001000");

    let r = Row::new(&ev[5], &clock);
    assert_eq!(
        (r.kind, r.op, r.errno.as_deref()),
        ("call", Some("connect"), Some("EADDRNOTAVAIL"))
    );
    assert_eq!(r.remote.as_deref(), Some("10.0.0.1:80"));
    let r = Row::new(&ev[7], &clock);
    assert_eq!(
        (r.op, r.local.as_deref(), r.bound_port),
        (Some("bind"), Some("[::]:0"), Some(40001))
    );
    let r = Row::new(&ev[12], &clock);
    assert_eq!(
        (r.kind, r.op, r.new_state),
        ("timewait", Some("cancel"), Some("TIME_WAIT"))
    );
    assert_eq!(r.remaining_jiffies, Some(-2));
    // Without clocks there is no wall time, not a wrong one.
    assert_eq!(Row::new(&ev[0], &Clock::default()).time, None);
}

#[test]
fn csv_quotes_what_needs_quoting() {
    let mut e = sample_events()[0];
    e.task.comm = crate::event::Comm::new("a,b\"c");
    let mut w = CsvWriter::new(Vec::new()).unwrap();
    w.write(&Row::new(&e, &Clock::default())).unwrap();
    let out = String::from_utf8(w.into_inner()).unwrap();
    let line = out.lines().nth(1).unwrap();
    assert!(
        line.starts_with(",1000,4026531840,4242,4243,1,\"a,b\"\"c\",state,,CLOSE,SYN_SENT,"),
        "{line}"
    );
    assert_eq!(out.lines().count(), 2);
}

#[test]
fn export_writes_one_row_per_event() {
    let (_d, path) = tmp();
    write(&path, &sample_items(), Options::default());
    for format in [Format::Csv, Format::Jsonl] {
        let mut r = Reader::open(&path).unwrap();
        let mut out = Vec::new();
        let done = export(&mut r, format, &mut out).unwrap();
        assert_eq!(done.rows as usize, sample_events().len());
        assert!(done.errors.is_empty());
        let lines = String::from_utf8(out).unwrap().lines().count();
        let header = (format == Format::Csv) as usize;
        assert_eq!(lines, sample_events().len() + header);
    }
}
