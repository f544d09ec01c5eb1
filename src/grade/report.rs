//! What a grading run says: one line per rubric test (`PASS  5.0/5.0  tracker 2: …`), the
//! evidence indented under it, `score: X/100`, and the same as Gradescope's `results.json`
//! (top-level `score`, `execution_time`, `output`, `tests[]` with `name`, `score`, `max_score`,
//! `status` `passed`/`failed` and `output`).

use crate::core::pyjson::quote;
use std::fmt::Write as _;
use std::time::Duration;

/// One rubric test's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResult {
    /// `tracker 2: chunk list where a chunk exists and one client has it`.
    pub name: String,
    pub max: f64,
    pub passed: bool,
    /// What was sent, what came back, which log line, the program's last stderr lines; under a
    /// pass, a short note (a measured time and the bound applied).
    pub evidence: Vec<String>,
}

impl TestResult {
    pub fn new(name: &str, max: f64, passed: bool, evidence: Vec<String>) -> TestResult {
        TestResult {
            name: name.to_string(),
            max,
            passed,
            evidence,
        }
    }

    pub fn score(&self) -> f64 {
        if self.passed {
            self.max
        } else {
            0.0
        }
    }

    /// The `tracker 2` part of the name.
    pub fn id(&self) -> &str {
        self.name.split(':').next().unwrap_or(&self.name)
    }
}

/// A whole run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub tests: Vec<TestResult>,
    pub elapsed: Duration,
    /// Lines about the run as a whole (what was graded, with which commands).
    pub notes: Vec<String>,
}

impl Report {
    pub fn score(&self) -> f64 {
        self.tests.iter().map(TestResult::score).sum()
    }

    pub fn max_score(&self) -> f64 {
        self.tests.iter().map(|t| t.max).sum()
    }

    pub fn all_passed(&self) -> bool {
        self.tests.iter().all(|t| t.passed)
    }

    /// The text report.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for n in &self.notes {
            let _ = writeln!(out, "{n}");
        }
        for t in &self.tests {
            let _ = writeln!(out, "{}", result_line(t));
            for e in &t.evidence {
                let _ = writeln!(out, "      {e}");
            }
        }
        let _ = writeln!(
            out,
            "score: {}/{} ({:.0} s)",
            points(self.score()),
            points(self.max_score()),
            self.elapsed.as_secs_f64()
        );
        out
    }

    /// Gradescope's `results.json`.
    pub fn render_json(&self) -> String {
        let mut out = String::from("{\n");
        let _ = writeln!(out, "  \"score\": {},", number(self.score()));
        let _ = writeln!(
            out,
            "  \"execution_time\": {},",
            self.elapsed.as_secs_f64().round() as u64
        );
        let _ = writeln!(out, "  \"output\": {},", quote(&self.notes.join("\n")));
        out.push_str("  \"tests\": [");
        for (i, t) in self.tests.iter().enumerate() {
            out.push_str(if i == 0 { "\n" } else { ",\n" });
            let _ = write!(
                out,
                "    {{\"name\": {}, \"score\": {}, \"max_score\": {}, \"status\": {}, \"output\": {}}}",
                quote(&t.name),
                number(t.score()),
                number(t.max),
                quote(if t.passed { "passed" } else { "failed" }),
                quote(&t.evidence.join("\n"))
            );
        }
        out.push_str("\n  ]\n}\n");
        out
    }
}

/// `PASS  5.0/5.0  tracker 2: …`.
pub fn result_line(t: &TestResult) -> String {
    format!(
        "{}  {:.1}/{:.1}  {}",
        if t.passed { "PASS" } else { "FAIL" },
        t.score(),
        t.max,
        t.name
    )
}

/// `100`, `87.5`.
pub fn points(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        format!("{x:.1}")
    }
}

fn number(x: f64) -> String {
    format!("{x:.1}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::pyjson::{parse, Json};

    fn sample() -> Report {
        Report {
            tests: vec![
                TestResult::new("tracker 1: ok", 5.0, true, vec![]),
                TestResult::new(
                    "client 1: \"quoted\"",
                    2.5,
                    false,
                    vec!["sent: WHERE_CHUNK,3".into(), "got nothing".into()],
                ),
            ],
            elapsed: Duration::from_secs(3),
            notes: vec!["grading x".into()],
        }
    }

    #[test]
    fn text_report_has_one_line_per_test_evidence_indented_and_the_score() {
        let text = sample().render_text();
        assert!(text.contains("PASS  5.0/5.0  tracker 1: ok\n"), "{text}");
        assert!(text.contains("FAIL  0.0/2.5  client 1: \"quoted\"\n      sent: WHERE_CHUNK,3\n      got nothing\n"), "{text}");
        assert!(text.contains("score: 5/7.5"), "{text}");
    }

    #[test]
    fn json_report_parses_with_the_gradescope_fields() {
        let json = sample().render_json();
        let v = parse(json.as_bytes(), 16).unwrap();
        assert_eq!(v.get("score"), Some(&Json::Number("5.0".into())));
        assert_eq!(v.get("execution_time"), Some(&Json::Number("3".into())));
        let Some(Json::Array(tests)) = v.get("tests") else {
            panic!("{json}")
        };
        assert_eq!(tests.len(), 2);
        assert_eq!(tests[1].get("status"), Some(&Json::String("failed".into())));
        assert_eq!(tests[1].get("max_score"), Some(&Json::Number("2.5".into())));
        assert_eq!(
            tests[1].get("output"),
            Some(&Json::String("sent: WHERE_CHUNK,3\ngot nothing".into()))
        );
    }
}
