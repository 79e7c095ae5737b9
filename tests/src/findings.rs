//! Reading a `portwatch report --json` document: its findings in rank order, the top one,
//! one by cause, and their remedies.

use serde_json::Value;

/// The findings of a report, in rank order.
pub fn findings(report: &Value) -> &[Value] {
    report["findings"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// One line per finding (severity, cause, issue, title, evidence), for failure messages.
pub fn describe(report: &Value) -> String {
    let mut s = String::new();
    for f in findings(report) {
        s.push_str(&format!(
            "- {} {} {} [{} pid {} dst {}] {}\n    {}\n",
            f["severity"],
            f["cause"],
            f["issue"],
            f["comm"],
            f["pid"],
            f["dst"],
            f["title"],
            f["evidence"]
        ));
    }
    if s.is_empty() {
        s.push_str("(no findings)\n");
    }
    s.push_str(&format!(
        "pools: {}\nlost: {}",
        report["pools"], report["lost_events"]
    ));
    s
}

/// The top-ranked finding; panics if there is none.
pub fn top(report: &Value) -> &Value {
    findings(report)
        .first()
        .unwrap_or_else(|| panic!("no finding at all:\n{}", describe(report)))
}

/// The first finding of this cause (and config issue).
pub fn finding<'a>(report: &'a Value, cause: &str, issue: Option<&str>) -> &'a Value {
    findings(report)
        .iter()
        .find(|f| f["cause"] == cause && issue.is_none_or(|i| f["issue"] == i))
        .unwrap_or_else(|| panic!("no {cause} {issue:?} finding:\n{}", describe(report)))
}

/// The remedies of a finding with this id.
pub fn remedies<'a>(f: &'a Value, id: &str) -> Vec<&'a Value> {
    f["remedies"]
        .as_array()
        .map(|v| v.iter().filter(|r| r["id"] == id).collect())
        .unwrap_or_default()
}

/// Asserts the finding has a remedy `id` and every remedy with that id has `helps`.
pub fn assert_remedy(f: &Value, id: &str, helps: bool) {
    let r = remedies(f, id);
    assert!(
        !r.is_empty() && r.iter().all(|r| r["helps"] == helps),
        "remedy {id} helps={helps} in {:#}",
        f["remedies"]
    );
}
