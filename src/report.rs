//! Rendering reports for people: the table that `apply` and `plan` print, and the one
//! column layout (`columns`) that `config check` prints its resources with too.

use std::fmt::Write;

use crate::plan::ResourceReport;

/// A fixed-width table: resource, stream, action, replicas, and what differs.
pub fn table(reports: &[ResourceReport]) -> String {
    let rows: Vec<[String; 4]> = reports
        .iter()
        .map(|r| {
            let replicas = match r.previous_replicas {
                Some(prev) => format!("{prev} -> {}", r.replicas),
                None if r.replicas == 0 => format!("- -> {}", r.desired_replicas),
                None => r.replicas.to_string(),
            };
            [
                r.name.clone(),
                r.stream.clone(),
                r.action.as_str().to_string(),
                replicas,
            ]
        })
        .collect();
    let headers = ["RESOURCE", "STREAM", "ACTION", "REPLICAS"];
    let mut lines = columns(headers, &rows).into_iter();
    let mut out = String::new();
    for line in lines.by_ref().take(1) {
        out.push_str(&line);
        out.push('\n');
    }
    for (line, report) in lines.zip(reports) {
        out.push_str(&line);
        out.push('\n');
        for d in &report.drift {
            let app = d.breaks.map(|a| a.as_str()).unwrap_or("-");
            let _ = writeln!(
                out,
                "  drift {}: want {} have {} (breaks {app}: {})",
                d.field, d.want, d.have, d.why
            );
        }
        for n in &report.notes {
            let _ = writeln!(
                out,
                "  note  {}: want {} have {} ({})",
                n.field, n.want, n.have, n.why
            );
        }
    }
    out
}

/// The lines of a table for people: a header and rows, each column left-aligned to its
/// widest cell, two spaces apart, no trailing blanks. The one table layout of the CLI
/// (`apply`/`plan` and `config check`): a crate such as comfy-table draws borders and
/// pads cells, which would change output that scripts and the tests read.
pub fn columns<const N: usize>(headers: [&str; N], rows: &[[String; N]]) -> Vec<String> {
    let mut widths = headers.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; N]| {
        let mut l = String::new();
        for (cell, w) in cells.iter().zip(widths) {
            let _ = write!(l, "{cell:<w$}  ");
        }
        l.trim_end().to_string()
    };
    std::iter::once(line(headers))
        .chain(
            rows.iter()
                .map(|row| line(row.each_ref().map(String::as_str))),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_align_to_the_widest_cell_without_trailing_blanks() {
        let rows = [
            ["xyz".to_string(), "1".to_string()],
            ["é".to_string(), String::new()],
        ];
        assert_eq!(
            super::columns(["A", "BB"], &rows),
            ["A    BB", "xyz  1", "é"]
        );
    }
}
