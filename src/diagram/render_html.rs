//! One self-contained HTML page: inline SVG, CSS and a little JavaScript, nothing fetched (it
//! opens from disk with no network, so it can be mailed or attached to a grade).
//!
//! Long runs stay usable without a virtualising script: rows are cut into blocks of
//! [`BLOCK_ROWS`], each its own `<svg>` in a box with `content-visibility: auto`, so the browser
//! lays out and paints only the blocks on screen while the DOM still holds every arrow (which the
//! tests count). Filters are CSS classes on the scroll box (`hp3` hides every row touching
//! lifeline 3), so a click restyles instead of walking 20,000 nodes. The full message sits in
//! each row's `<desc>`; the script shows it in a box on hover.
//!
//! Structure the tests rely on: each lifeline's name is a `<text class="ll" data-i="N">` in the
//! header; each drawn row is `<g class="r k-KIND …" data-from="N" data-to="M">` (no `data-to` for
//! a marker on one lifeline), in reading order; a collapsed block is `<g class="rep"
//! data-times="N">` around its rows; failed rows also have the class `f`.

use super::model::{Diagram, Item, Row, RowKind};
use std::fmt::Write;

/// Rows per `<svg>` block.
pub const BLOCK_ROWS: usize = 200;
const ROW_H: usize = 24;
const HEAD_H: usize = 40;
const LEFT: usize = 84;
const COL: usize = 200;

fn x(i: usize) -> usize {
    LEFT + COL / 2 + i * COL
}

/// Escapes text for HTML and SVG content and attributes; control characters become their
/// visible symbols so a message with a NUL or a newline still shows and stays on one line.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 => out.push(char::from_u32(0x2400 + c as u32).unwrap_or('?')),
            '\u{7f}' => out.push('\u{2421}'),
            c => out.push(c),
        }
    }
    out
}

/// A message as drawn on its arrow: without the line ending most text protocols send (the
/// hover text keeps it, shown as ␊).
fn shown(label: &str) -> &str {
    label.trim_end_matches(['\n', '\r'])
}

/// At most `max` characters of `s`, with `…` when cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The whole page for `d`; `title` names the inputs, `problems` counts skipped lines.
pub fn render(d: &Diagram, title: &str, problems: usize) -> String {
    let width = LEFT + COL * d.lifelines.len().max(1) + 40;
    let words = d.words();
    let mut html = String::with_capacity(4096 + d.event_count() * 400);
    html.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    // The page must open from disk and never reach the network, whatever a message holds.
    html.push_str(CSP);
    let _ = writeln!(html, "<title>{}</title>", escape(title));
    html.push_str("<style>\n");
    html.push_str(STYLE);
    for i in 0..d.lifelines.len() {
        let _ = writeln!(html, "#scroll.hp{i} .p{i}{{display:none}}");
    }
    for i in 0..words.len() {
        let _ = writeln!(html, "#scroll.hw{i} .w{i}{{display:none}}");
    }
    html.push_str("</style></head><body>\n");
    bar(&mut html, d, &words, title, problems);
    html.push_str("<div id=\"scroll\"><div id=\"zoom\">\n");
    heads(&mut html, d, width);
    body(&mut html, d, &words, width);
    html.push_str("</div></div>\n<div id=\"tip\" hidden></div>\n<script>\n");
    html.push_str(SCRIPT);
    html.push_str("</script></body></html>\n");
    html
}

fn bar(html: &mut String, d: &Diagram, words: &[&str], title: &str, problems: usize) {
    let rows = d.drawn_rows().count();
    let _ = write!(
        html,
        "<div id=\"bar\"><b>{}</b> <span class=\"n\">{} lifelines, {} events, {} rows drawn",
        escape(title),
        d.lifelines.len(),
        d.event_count(),
        rows
    );
    if problems > 0 {
        let _ = write!(html, ", {problems} malformed input lines skipped");
    }
    html.push_str("</span>\n<span class=\"zoom\"><button data-z=\"0.8\">−</button>");
    html.push_str("<button data-z=\"1.25\">+</button><button data-z=\"0\">1:1</button></span>\n");
    html.push_str("<details><summary>filter</summary><div class=\"f\">processes: ");
    for (i, name) in d.lifelines.iter().enumerate() {
        let _ = write!(
            html,
            "<label><input type=\"checkbox\" checked data-h=\"hp{i}\">{}</label> ",
            escape(&clip(name, 40))
        );
    }
    html.push_str("<br>kinds: ");
    for kind in ["message", "transfer", "failure"] {
        let _ = write!(
            html,
            "<label><input type=\"checkbox\" checked data-h=\"hk-{kind}\">{kind}s</label> "
        );
    }
    html.push_str("<br>messages: ");
    for (i, w) in words.iter().enumerate() {
        let _ = write!(
            html,
            "<label><input type=\"checkbox\" checked data-h=\"hw{i}\">{}</label> ",
            escape(w)
        );
    }
    html.push_str("</div></details></div>\n");
}

fn heads(html: &mut String, d: &Diagram, width: usize) {
    let _ = writeln!(
        html,
        "<div id=\"heads\"><svg class=\"heads\" width=\"{width}\" height=\"{HEAD_H}\">"
    );
    for (i, name) in d.lifelines.iter().enumerate() {
        let cx = x(i);
        let _ = writeln!(
            html,
            "<rect x=\"{}\" y=\"6\" width=\"{}\" height=\"28\" rx=\"4\"/><text class=\"ll\" data-i=\"{i}\" x=\"{cx}\" y=\"25\">{}<title>{}</title></text>",
            cx - COL / 2 + 6,
            COL - 12,
            escape(&clip(name, 28)),
            escape(name)
        );
    }
    html.push_str("</svg></div>\n");
}

/// One slot per drawn row, in order: (row, Some((times, first slot of block, block length))).
type Slot<'a> = (&'a Row, Option<(usize, usize, &'a [String])>);

fn slots(d: &Diagram) -> Vec<Slot<'_>> {
    let mut out = Vec::new();
    for item in &d.items {
        match item {
            Item::Row(r) => out.push((r, None)),
            Item::Repeat { body, times, last } => {
                for (j, r) in body.iter().enumerate() {
                    let info = (j == 0).then_some((*times, body.len(), last.as_slice()));
                    out.push((r, info));
                }
            }
        }
    }
    out
}

fn body(html: &mut String, d: &Diagram, words: &[&str], width: usize) {
    let slots = slots(d);
    let word_class = |w: &str| words.iter().position(|x| *x == w).unwrap_or(0);
    let mut open_repeat = 0; // rows left in the current collapsed block
    for (b, block) in slots.chunks(BLOCK_ROWS).enumerate() {
        let height = block.len() * ROW_H + 8;
        let _ = writeln!(
            html,
            "<div class=\"blk\" style=\"height:{height}px;contain-intrinsic-size:{width}px {height}px\"><svg width=\"{width}\" height=\"{height}\">"
        );
        for i in 0..d.lifelines.len() {
            let _ = writeln!(
                html,
                "<line class=\"life\" x1=\"{0}\" y1=\"0\" x2=\"{0}\" y2=\"{height}\"/>",
                x(i)
            );
        }
        for (j, (row, repeat)) in block.iter().enumerate() {
            let y = j * ROW_H + ROW_H / 2 + 6;
            if let Some((times, len, last)) = repeat {
                let h = len * ROW_H;
                let _ = writeln!(
                    html,
                    "<g class=\"rep\" data-times=\"{times}\"><desc>repeated {times} times; the last time: {}</desc><path class=\"brace\" d=\"M8 {} h-4 v{} h4\"/><text class=\"times\" x=\"12\" y=\"{}\">×{times}</text>",
                    escape(&last.join(" | ")),
                    y - ROW_H / 2 + 2,
                    h - 4,
                    y + 4
                );
                open_repeat = *len;
            }
            draw_row(html, row, word_class(&row.word), y, b * BLOCK_ROWS + j);
            if open_repeat > 0 {
                open_repeat -= 1;
                if open_repeat == 0 {
                    html.push_str("</g>\n");
                }
            }
        }
        if open_repeat > 0 {
            // A block of repeats cut by the end of an <svg>: close it here, it goes on below.
            html.push_str("</g>\n");
            open_repeat = 0;
        }
        html.push_str("</svg></div>\n");
    }
}

fn draw_row(html: &mut String, r: &Row, word: usize, y: usize, n: usize) {
    let kind = r.kind.name();
    let failed = if r.failed { " f" } else { "" };
    let mut class = format!("r k-{kind} w{word} p{}{failed}", r.from);
    // The id lets a link (or a screenshot) open the page at row n: `page.html#r120`.
    let mut data = format!("id=\"r{n}\" data-n=\"{n}\" data-from=\"{}\"", r.from);
    if let Some(to) = r.to {
        if to != r.from {
            let _ = write!(class, " p{to}");
        }
        let _ = write!(data, " data-to=\"{to}\"");
    }
    let _ = write!(
        html,
        "<g class=\"{class}\" {data}><desc>{}\n{}</desc>",
        escape(&r.label),
        r.detail.lines().map(escape).collect::<Vec<_>>().join("\n")
    );
    if let Some(t) = r.t_us {
        let _ = write!(
            html,
            "<text class=\"t\" x=\"{}\" y=\"{}\">{:.3} ms</text>",
            LEFT - 6,
            y + 4,
            t as f64 / 1000.0
        );
    }
    match r.to {
        Some(to) if to != r.from => draw_arrow(html, r, x(r.from), x(to), y),
        _ => draw_local(html, r, x(r.from), y),
    }
    html.push_str("</g>\n");
}

/// A message between two lifelines: the arrow, a ✗ at its head when it failed, the label
/// above it clipped to the span.
fn draw_arrow(html: &mut String, r: &Row, x1: usize, x2: usize, y: usize) {
    let dir: isize = if x2 > x1 { 1 } else { -1 };
    let tip = x2 as isize - dir * 2;
    let _ = write!(
        html,
        "<line x1=\"{x1}\" y1=\"{y}\" x2=\"{tip}\" y2=\"{y}\"/><path class=\"head\" d=\"M{tip} {y} l{} -4 v8 z\"/>",
        -dir * 9
    );
    if r.kind == RowKind::Failure {
        let _ = write!(
            html,
            "<text class=\"x\" x=\"{x2}\" y=\"{}\">✗</text>",
            y + 5
        );
    }
    let span = x1.abs_diff(x2);
    let label = clip(shown(&r.label), (span / 7).max(34));
    let _ = write!(
        html,
        "<text class=\"m\" x=\"{}\" y=\"{}\">{}</text>",
        (x1 + x2) / 2,
        y - 4,
        escape(&label)
    );
}

/// A row on one lifeline: a loop for a message to itself, else a ● (or ✗ when it failed),
/// with the label beside it.
fn draw_local(html: &mut String, r: &Row, x1: usize, y: usize) {
    if r.to.is_some() {
        let _ = write!(
            html,
            "<path class=\"loop\" d=\"M{x1} {} h16 v10 h-14\"/>",
            y - 6
        );
    } else {
        let mark = if r.failed { "✗" } else { "●" };
        let _ = write!(
            html,
            "<text class=\"x\" x=\"{x1}\" y=\"{}\">{mark}</text>",
            y + 5
        );
    }
    let _ = write!(
        html,
        "<text class=\"m side\" x=\"{}\" y=\"{}\">{}</text>",
        x1 + 22,
        y + 4,
        escape(&clip(shown(&r.label), 48))
    );
}

const CSP: &str = "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
     style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n";

const STYLE: &str = r#"body{margin:0;font:13px system-ui,sans-serif;color:#222;background:#fff}
#bar{position:sticky;top:0;z-index:3;background:#f4f4f6;border-bottom:1px solid #ccc;padding:6px 10px}
#bar .n{color:#555;margin:0 12px}#bar details{display:inline-block}#bar .f{max-height:30vh;overflow:auto;padding:4px 0}
#bar label{white-space:nowrap;margin-right:6px}button{min-width:2.2em}
#scroll{overflow:auto;height:calc(100vh - 42px)}
#heads{position:sticky;top:0;z-index:2;background:#fff}
.heads rect{fill:#e8eef8;stroke:#5a7bb5}.heads text{text-anchor:middle;font-weight:600;font-size:12px}
.blk{content-visibility:auto}
svg{display:block}
.life{stroke:#bbb;stroke-dasharray:4 4}
.r line,.r path.loop{stroke:#2a4f8f;stroke-width:1.4;fill:none}.r .head{fill:#2a4f8f}
.r text.m{text-anchor:middle;font-size:12px;fill:#111;font-family:ui-monospace,monospace}
.r text.side{text-anchor:start}
.r text.t{text-anchor:end;font-size:10px;fill:#888}
.k-transfer line{stroke:#2e8b57;stroke-width:5;stroke-opacity:.55}.k-transfer .head{fill:#2e8b57}
.k-transfer text.m{fill:#1d6b3f;font-style:italic}
.k-failure line{stroke:#c0392b;stroke-dasharray:5 3}.k-failure .head{fill:#c0392b}
.f text.m{fill:#b02a1e}.f.k-transfer line{stroke:#c0392b;stroke-dasharray:6 3}
text.x{fill:#c0392b;font-size:15px;text-anchor:middle;font-weight:700}
.rep .brace{stroke:#8a5a00;fill:none;stroke-width:2}.rep .times{fill:#8a5a00;font-weight:700;font-size:12px}
.r:hover line{stroke-width:3}.r:hover text.m{font-weight:700}
desc{display:none}
#tip{position:fixed;z-index:5;max-width:60vw;white-space:pre-wrap;word-break:break-all;background:#ffffe8;border:1px solid #aa9;padding:6px 8px;font:12px ui-monospace,monospace;box-shadow:2px 2px 6px #0003;pointer-events:none}
"#;

const SCRIPT: &str = r#"(function(){
var scroll=document.getElementById('scroll'),zoom=document.getElementById('zoom'),tip=document.getElementById('tip'),z=1;
document.querySelectorAll('#bar input[data-h]').forEach(function(box){
  box.addEventListener('change',function(){scroll.classList.toggle(box.dataset.h,!box.checked);});
});
document.querySelectorAll('#bar button[data-z]').forEach(function(b){
  b.addEventListener('click',function(){var f=parseFloat(b.dataset.z);z=f?Math.min(4,Math.max(0.1,z*f)):1;zoom.style.zoom=z;});
});
scroll.addEventListener('mousemove',function(e){
  var g=e.target.closest&&e.target.closest('g.r,g.rep');
  if(!g){tip.hidden=true;return;}
  var d=g.querySelector('desc');if(!d){tip.hidden=true;return;}
  var text=d.textContent;
  if(g.classList.contains('r')){var rep=g.closest('g.rep');if(rep){text+='\n\n'+rep.querySelector('desc').textContent;}}
  tip.textContent=text;tip.hidden=false;
  var x=Math.min(e.clientX+14,window.innerWidth-tip.offsetWidth-8),y=e.clientY+14;
  if(y+tip.offsetHeight>window.innerHeight){y=e.clientY-tip.offsetHeight-8;}
  tip.style.left=Math.max(0,x)+'px';tip.style.top=Math.max(0,y)+'px';
});
scroll.addEventListener('mouseleave',function(){tip.hidden=true;});
})();
"#;
