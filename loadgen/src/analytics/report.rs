//! The end-of-run summary: JSON for machines, a few lines for people.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};

use super::metrics::Second;

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub p9999: u64,
    pub max: u64,
}

impl LatencySummary {
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            min: h.min(),
            mean: (h.mean() * 10.0).round() / 10.0,
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            p9999: h.value_at_quantile(0.9999),
            max: h.max(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SeriesPoint {
    pub t_s: u64,
    pub records: u64,
    pub bytes: u64,
}

/// Everything a run reports.
#[derive(Debug, Clone)]
pub struct Report {
    /// "produce", "consume" or "e2e".
    pub command: String,
    /// The command line, parsed (every option, defaults included).
    pub parameters: Value,
    /// Records that made it (acknowledged; consumed for consume and e2e).
    pub records: u64,
    /// Their key + value bytes.
    pub bytes: u64,
    /// Bytes on the wire: produce request frames, or fetch response frames.
    pub wire_bytes: u64,
    pub elapsed_s: f64,
    /// What `latency_us` measures, in words.
    pub latency_kind: String,
    pub latency: LatencySummary,
    /// Other latencies (name → summary), e.g. "request_latency_us".
    pub other_latencies: Vec<(String, String, LatencySummary)>,
    /// Records that failed.
    pub errors: u64,
    pub error_kinds: BTreeMap<String, u64>,
    /// Records the run should have completed (None when open-ended).
    pub expected: Option<u64>,
    /// Expected records that neither completed nor failed.
    pub shortfall: u64,
    /// Why the run was cut short, if it was.
    pub aborted: Option<String>,
    pub series: Vec<Second>,
    /// Extra named numbers (e.g. records produced in an e2e run).
    pub extra: Vec<(String, Value)>,
    /// Things worth knowing that happened during the run.
    pub notes: Vec<String>,
}

impl Report {
    pub fn records_per_s(&self) -> f64 {
        if self.elapsed_s > 0.0 {
            self.records as f64 / self.elapsed_s
        } else {
            0.0
        }
    }

    pub fn bytes_per_s(&self) -> f64 {
        if self.elapsed_s > 0.0 {
            self.bytes as f64 / self.elapsed_s
        } else {
            0.0
        }
    }

    /// Whether the run did everything it was asked to, without errors.
    pub fn ok(&self) -> bool {
        self.errors == 0 && self.shortfall == 0 && self.aborted.is_none()
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "command": self.command,
            "records": self.records,
            "bytes": self.bytes,
            "wire_bytes": self.wire_bytes,
            "elapsed_s": round3(self.elapsed_s),
            "records_per_s": round3(self.records_per_s()),
            "bytes_per_s": round3(self.bytes_per_s()),
            "latency_us": self.latency,
            "latency_measures": self.latency_kind,
            "errors": self.errors,
            "error_kinds": self.error_kinds,
            "expected_records": self.expected,
            "shortfall": self.shortfall,
            "aborted": self.aborted,
            "notes": self.notes,
            "ok": self.ok(),
            "parameters": self.parameters,
            "series": self.series.iter().enumerate().map(|(t, s)| SeriesPoint {
                t_s: t as u64,
                records: s.records,
                bytes: s.bytes,
            }).collect::<Vec<_>>(),
        });
        let obj = v.as_object_mut().unwrap();
        for (name, _, summary) in &self.other_latencies {
            obj.insert(name.clone(), serde_json::to_value(summary).unwrap());
        }
        for (k, x) in &self.extra {
            obj.insert(k.clone(), x.clone());
        }
        v
    }

    pub fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "loadgen {}: {}",
            self.command,
            describe(&self.parameters)
        );
        let _ = writeln!(
            s,
            "  records   {} in {:.2} s: {} records/s, {:.2} MB/s ({:.2} MiB/s) payload{}",
            group(self.records),
            self.elapsed_s,
            group(self.records_per_s().round() as u64),
            self.bytes_per_s() / 1e6,
            self.bytes_per_s() / (1024.0 * 1024.0),
            if self.wire_bytes > 0 && self.elapsed_s > 0.0 {
                format!(
                    ", {:.2} MB/s on the wire",
                    self.wire_bytes as f64 / self.elapsed_s / 1e6
                )
            } else {
                String::new()
            }
        );
        for (k, x) in &self.extra {
            let _ = writeln!(s, "  {k:<9} {x}");
        }
        let _ = writeln!(
            s,
            "  latency   {} ({} samples)",
            self.latency_kind,
            group(self.latency.count)
        );
        let _ = writeln!(s, "            {}", latency_line(&self.latency));
        for (name, kind, l) in &self.other_latencies {
            let short = name.trim_end_matches("_us").replace('_', " ");
            let _ = writeln!(s, "  {short}: {kind} ({} samples)", group(l.count));
            let _ = writeln!(s, "            {}", latency_line(l));
        }
        let _ = write!(s, "  errors    {}", group(self.errors));
        if !self.error_kinds.is_empty() {
            let kinds: Vec<String> = self
                .error_kinds
                .iter()
                .map(|(k, n)| format!("{k}: {}", group(*n)))
                .collect();
            let _ = write!(s, " ({})", kinds.join(", "));
        }
        let _ = writeln!(s);
        if let Some(e) = self.expected {
            if self.shortfall > 0 {
                let _ = writeln!(
                    s,
                    "  SHORTFALL {} of {} expected records neither completed nor failed",
                    group(self.shortfall),
                    group(e)
                );
            }
        }
        for n in &self.notes {
            let _ = writeln!(s, "  note      {n}");
        }
        if let Some(why) = &self.aborted {
            let _ = writeln!(s, "  ABORTED   {why}");
        }
        let _ = write!(s, "  result    {}", if self.ok() { "OK" } else { "FAILED" });
        s
    }
}

fn latency_line(l: &LatencySummary) -> String {
    format!(
        "p50 {}  p90 {}  p99 {}  p99.9 {}  p99.99 {}  max {}  (ms)",
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.p999),
        ms(l.p9999),
        ms(l.max)
    )
}

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// 1234567 → "1,234,567".
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "topic=t partitions=8 ..." from the parameters, skipping the unset ones.
fn describe(params: &Value) -> String {
    let Some(obj) = params.as_object() else {
        return String::new();
    };
    obj.iter()
        .filter(|(k, v)| !v.is_null() && *k != "json")
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::metrics::new_histogram;

    fn sample() -> Report {
        let mut h = new_histogram();
        for v in 1..=1000u64 {
            h.record(v).unwrap();
        }
        Report {
            command: "produce".into(),
            parameters: json!({"bootstrap": "127.0.0.1:9092", "topic": "t", "record_bytes": 1024, "rate": null, "json": "out.json"}),
            records: 3000,
            bytes: 3000 * 1024,
            wire_bytes: 3_100_000,
            elapsed_s: 2.5,
            latency_kind: "record scheduled → batch acknowledged".into(),
            latency: LatencySummary::of(&h),
            other_latencies: vec![(
                "request_latency_us".into(),
                "produce request → response".into(),
                LatencySummary::of(&h),
            )],
            errors: 2,
            error_kinds: [("NotLeaderOrFollower".to_string(), 2u64)]
                .into_iter()
                .collect(),
            expected: Some(3002),
            shortfall: 0,
            aborted: None,
            series: vec![
                Second {
                    records: 1000,
                    bytes: 1_024_000,
                },
                Second {
                    records: 1500,
                    bytes: 1_536_000,
                },
                Second {
                    records: 500,
                    bytes: 512_000,
                },
            ],
            extra: vec![],
            notes: vec![],
        }
    }

    /// The JSON has every field the brief asks for, with the right types.
    #[test]
    fn json_shape() {
        let v = sample().to_json();
        for key in ["records", "bytes", "errors"] {
            assert!(v[key].is_u64(), "{key}");
        }
        for key in ["elapsed_s", "records_per_s", "bytes_per_s"] {
            assert!(v[key].is_number(), "{key}");
        }
        assert_eq!(v["records"], 3000);
        assert_eq!(v["records_per_s"], 1200.0);
        assert_eq!(v["bytes_per_s"], 1_228_800.0);
        for key in ["p50", "p90", "p99", "p999", "p9999", "max"] {
            assert!(v["latency_us"][key].is_u64(), "latency_us.{key}");
        }
        assert_eq!(v["latency_us"]["p50"], 500);
        assert_eq!(v["latency_us"]["max"], 1000);
        assert!(v["request_latency_us"]["p99"].is_u64());
        assert_eq!(v["parameters"]["topic"], "t");
        assert_eq!(v["parameters"]["record_bytes"], 1024);
        let series = v["series"].as_array().unwrap();
        assert_eq!(series.len(), 3);
        assert_eq!(
            series[1],
            json!({"t_s": 1, "records": 1500, "bytes": 1_536_000})
        );
        assert_eq!(v["error_kinds"]["NotLeaderOrFollower"], 2);
        assert_eq!(v["ok"], false);
        // It round-trips as text.
        let text = serde_json::to_string_pretty(&v).unwrap();
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn human_summary_mentions_the_numbers() {
        let s = sample().human();
        assert!(s.contains("3,000 in 2.50 s"), "{s}");
        assert!(s.contains("1,200 records/s"), "{s}");
        assert!(s.contains("p99 0.990"), "{s}");
        assert!(s.contains("NotLeaderOrFollower: 2"), "{s}");
        assert!(s.contains("FAILED"), "{s}");
        assert!(!s.contains("json="), "{s}");
    }

    #[test]
    fn grouping() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1234567), "1,234,567");
    }
}
