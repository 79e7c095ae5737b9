//! The table figures of `snapshot::cells`.

use crate::snapshot::cells::*;

#[test]
fn table_numbers() {
    // Exact with separators, as the text report printed them; the TUI printed `9999` and
    // `12.3k` below 100 000 before both views shared these.
    assert_eq!(count(9_999), "9,999");
    assert_eq!(count(12_345), "12,345");
    assert_eq!(count(28_232), "28,232");
    assert_eq!(count(123_456), "123k");
    assert_eq!(count(2_000_000), "2.0M");
    assert_eq!(count(20_000_000), "20M");
    assert_eq!(rate(0.44), "0.4");
    assert_eq!(rate(3.0), "3");
    assert_eq!(rate(480.0), "480");
    assert_eq!(rate(1234.4), "1,234");
    assert_eq!(duration(59.4), "59s");
    assert_eq!(duration(3725.0), "1h02m");
    assert_eq!(duration(10.0 * 3600.0 + 3540.0), "10h");
    for secs in (0..200_000).step_by(7) {
        assert!(duration(f64::from(secs)).chars().count() <= 5, "{secs}");
    }
    assert_eq!(short(1_234), "1.2k");
    assert_eq!(short(28_232), "28k");
    assert_eq!(short(1_999_999), "1.9M");
    assert_eq!(count_in(12_345, 5), "12k");
    assert_eq!(count_in(12_345, 6), "12,345");
    assert_eq!(fraction_in(28_232, 28_232, 9), "28k/28k");
    assert_eq!(fraction_in(1_234, 28_232, 9), "1,234/28k");
    assert_eq!(fraction_in(20, 28_232, 9), "20/28,232");
    assert_eq!(eta(Some(0.0)), "OUT");
    assert_eq!(eta(None), "—");
    assert_eq!(percent(0.999), "99%");
    assert_eq!(percent(f64::INFINITY), "∞");
}
