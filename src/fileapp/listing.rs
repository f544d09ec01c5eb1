//! `list`: the table rendered the way the original's PrettyTable printed it.
//!
//! PrettyTable with `border=False, hrules=False, align="l"` pads each cell to its column's display
//! width (wcwidth, so wide characters count double) with one space either side and joins the
//! columns with nothing. Rows are sorted by filename; a stable sort keeps equal filenames in table
//! order (the original sorted on the filename only).

use super::wire::TableRow;
use unicode_width::UnicodeWidthStr;

/// The lines `list` prints for a non-empty table (header first, no trailing newline handling).
pub fn render(rows: &[TableRow]) -> Vec<String> {
    let mut sorted: Vec<&TableRow> = rows.iter().collect();
    sorted.sort_by(|a, b| a.file.cmp(&b.file));
    let header = ["FILENAME", "OWNER", "IP ADDRESS", "TCP PORT"].map(String::from);
    let cells: Vec<[String; 4]> = sorted
        .iter()
        .map(|r| {
            [
                r.file.clone(),
                r.owner.clone(),
                r.ip.clone(),
                r.tcp_port.to_string(),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.width());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.width());
        }
    }
    std::iter::once(&header)
        .chain(cells.iter())
        .map(|row| {
            let mut line = String::new();
            for (cell, w) in row.iter().zip(widths) {
                line.push(' ');
                line.push_str(cell);
                line.push_str(&" ".repeat(w - cell.width() + 1));
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(file: &str, owner: &str, port: u16) -> TableRow {
        TableRow {
            file: file.into(),
            owner: owner.into(),
            ip: "127.0.0.1".into(),
            tcp_port: port,
        }
    }

    #[test]
    fn matches_the_spec_example_sorted_with_ties_in_table_order() {
        let lines = render(&[
            row("jjs.jpg", "waa", 1031),
            row("jjs.jpg", "heyy", 1030),
            row("hello.txt", "alice", 41027),
        ]);
        assert_eq!(
            lines,
            vec![
                " FILENAME   OWNER  IP ADDRESS  TCP PORT ",
                " hello.txt  alice  127.0.0.1   41027    ",
                " jjs.jpg    waa    127.0.0.1   1031     ",
                " jjs.jpg    heyy   127.0.0.1   1030     ",
            ]
        );
    }

    #[test]
    fn wide_characters_count_double_and_long_cells_widen_columns() {
        let lines = render(&[row("日本.txt", "a-very-long-owner", 1)]);
        assert_eq!(
            lines[0],
            " FILENAME  OWNER              IP ADDRESS  TCP PORT "
        );
        assert_eq!(
            lines[1],
            " 日本.txt  a-very-long-owner  127.0.0.1   1        "
        );
    }
}
