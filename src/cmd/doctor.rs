//! `wbl doctor`: runs the checks of `crate::doctor` and prints each one's verdict, the time it
//! took, what was found and how to fix it; exit status 1 when any check is a problem.

use crate::cli::DoctorArgs;
use crate::doctor::{self, Report, Verdict};

/// Prints the report; `Ok(false)` (exit 1) when a check found a problem.
pub fn run(args: DoctorArgs) -> anyhow::Result<bool> {
    let report = doctor::run();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(report.healthy)
}

/// The report for people: one line per check, its fix below it, and a summary.
pub fn render(report: &Report) -> String {
    let title_width = report
        .checks
        .iter()
        .map(|c| c.title.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for c in &report.checks {
        let head = format!(
            "{:<8} {:<title_width$} {:>5} ms  ",
            c.verdict.label(),
            c.title,
            c.ms
        );
        out.push_str(&format!("{head}{}\n", c.detail));
        if let (Some(fix), Verdict::Warning | Verdict::Problem) = (&c.fix, c.verdict) {
            out.push_str(&format!("{:width$}fix: {fix}\n", "", width = head.len()));
        }
    }
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    out.push('\n');
    out.push_str(&match (report.problems, report.warnings) {
        (0, 0) => "wbl doctor: no problems found.\n".to_owned(),
        (0, w) => format!(
            "wbl doctor: no problems, {}; the fixes above are optional.\n",
            plural(w, "warning")
        ),
        (p, w) => format!(
            "wbl doctor: {}, {}. Run the fixes above, then `wbl doctor` again.\n",
            plural(p, "problem"),
            plural(w, "warning")
        ),
    });
    out
}
