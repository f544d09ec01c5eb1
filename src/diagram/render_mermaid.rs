//! A Mermaid `sequenceDiagram` to paste into Markdown (GitHub, GitLab and most course sites
//! render it). Mermaid slows down and becomes unreadable past a few hundred arrows, so the output
//! is capped and ends with a note saying how many events were left out; collapsed repeats become
//! `loop N times` blocks.

use super::model::{Diagram, Item, Row, RowKind};
use std::fmt::Write;

/// Rows drawn at most, by default.
pub const DEFAULT_CAP: usize = 300;
/// Longest message text in an arrow's label.
const MAX_LABEL: usize = 100;

/// Mermaid text is parsed for `;`, `#` (entity codes), `<`/`>` and line breaks: write those as
/// Mermaid's `#code;` entities so any message shows as sent, on one line.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '#' => out.push_str("#35;"),
            ';' => out.push_str("#59;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The diagram as Mermaid, drawing at most `cap` rows (a collapsed block counts as its rows).
pub fn render(d: &Diagram, cap: usize) -> String {
    let mut out = String::from("sequenceDiagram\n");
    for (i, name) in d.lifelines.iter().enumerate() {
        let _ = writeln!(out, "    participant P{i} as {}", escape(name));
    }
    let mut drawn = 0;
    let mut left_out = 0;
    for item in &d.items {
        let (rows, times): (&[Row], usize) = match item {
            Item::Row(r) => (std::slice::from_ref(r), 1),
            Item::Repeat { body, times, .. } => (body, *times),
        };
        if drawn + rows.len() > cap {
            left_out += rows.len() * times;
            continue;
        }
        drawn += rows.len();
        let indent = if times > 1 {
            let _ = writeln!(out, "    loop {times} times");
            "        "
        } else {
            "    "
        };
        for r in rows {
            out.push_str(indent);
            out.push_str(&arrow(r));
            out.push('\n');
        }
        if times > 1 {
            out.push_str("    end\n");
        }
    }
    if left_out > 0 {
        let over = match d.lifelines.len() {
            0 => String::new(),
            1 => "P0".to_string(),
            n => format!("P0,P{}", n - 1),
        };
        let _ = writeln!(
            out,
            "    Note over {over}: {left_out} more events left out (drawn: {drawn} rows, the cap)"
        );
    }
    out
}

fn arrow(r: &Row) -> String {
    let label = escape(&super::render_html::clip(&r.label, MAX_LABEL));
    let label = if label.trim().is_empty() {
        "(empty)".to_string()
    } else {
        label
    };
    match (r.kind, r.to) {
        (RowKind::Failure, None) => format!("Note over P{}: ✗ {label}", r.from),
        (RowKind::Failure, Some(to)) => format!("P{}-xP{to}: ✗ {label}", r.from),
        (RowKind::Transfer, Some(to)) if r.failed => format!("P{}-xP{to}: {label}", r.from),
        (RowKind::Transfer, Some(to)) => format!("P{}-)P{to}: {label}", r.from),
        (_, None) => format!("Note over P{}: {label}", r.from),
        (RowKind::Message, Some(to)) => format!("P{}->>P{to}: {label}", r.from),
    }
}
