//! Rendering reports for people: the table that `apply` and `plan` print.

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
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: [&str; 4]| {
        let mut l = String::new();
        for (cell, w) in cells.iter().zip(widths) {
            let _ = write!(l, "{cell:<w$}  ");
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut out, headers);
    for (row, report) in rows.iter().zip(reports) {
        line(&mut out, [&row[0], &row[1], &row[2], &row[3]]);
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
