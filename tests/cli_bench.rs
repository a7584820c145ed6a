//! `behavd bench --quick --json` measures every quantity it lists (values are not asserted
//! against wall-clock limits, only for consistency).

mod common;

use common::*;

#[test]
fn bench_reports_percentiles_and_throughputs() {
    let out = run_ok(behavd().args(["bench", "--quick", "--json"]));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = report.as_object().unwrap();
    let latencies: Vec<_> = entries
        .iter()
        .filter(|(_, v)| v.get("p50_us").is_some())
        .collect();
    assert_eq!(latencies.len(), 4, "{report:#}");
    for (name, l) in latencies {
        let (p50, p99, max) = (
            l["p50_us"].as_f64().unwrap(),
            l["p99_us"].as_f64().unwrap(),
            l["max_us"].as_f64().unwrap(),
        );
        assert!(p50 > 0.0 && p50 <= p99 && p99 <= max * 1.001, "{name}: {l}");
        assert!(l["samples"].as_u64().unwrap() >= 60, "{name}");
    }
    for protocol in ["behavd", "firmata"] {
        let link = &report[format!("stimulator link {protocol}")];
        let write = &link["decision_to_write"];
        assert!(write["samples"].as_u64().unwrap() >= 50, "{link}");
        assert!(write["p50_us"].as_f64().unwrap() > 0.0, "{link}");
        // Device edges and a clock fit exist only where the device acknowledges.
        assert_eq!(
            link["decision_to_edge"].is_null(),
            protocol == "firmata",
            "{link}"
        );
        assert_eq!(
            link["sync_residual_us"].is_null(),
            protocol == "firmata",
            "{link}"
        );
    }
    let recorders: Vec<_> = entries
        .iter()
        .filter(|(k, _)| k.starts_with("recorder"))
        .collect();
    assert_eq!(recorders.len(), 4);
    for (name, r) in recorders {
        assert!(r["mb_per_s"].as_f64().unwrap() > 0.0, "{name}");
        let ratio = r["compression_ratio"].as_f64().unwrap();
        if name.contains("gzip") {
            assert!(
                ratio > 1.1,
                "{name}: gzip compressed synthetic Miniscope frames {ratio}:1"
            );
        } else {
            assert!(
                (0.9..=1.01).contains(&ratio),
                "{name}: uncompressed ratio {ratio}"
            );
        }
    }
}
