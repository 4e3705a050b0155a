//! `wbl doctor`: runs the checks of `crate::doctor` and prints each one's verdict, the time it
//! took, what was found and how to fix it; exit status 1 when any check is a problem.

use crate::cli::DoctorArgs;
use crate::doctor::{self, Report, Verdict};
use crate::term::Style;

/// Prints the report; `Ok(false)` (exit 1) when a check found a problem.
pub fn run(args: DoctorArgs) -> anyhow::Result<bool> {
    let report = doctor::run();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report, Style::stdout()));
    }
    Ok(report.healthy)
}

/// The report for people: one line per check, its fix below it, and a summary. With a fancy
/// style (a terminal) each verdict is coloured and marked ✓/✗/!, and long details and fixes
/// are wrapped at the terminal's width under their column.
pub fn render(report: &Report, style: Style) -> String {
    let title_width = report
        .checks
        .iter()
        .map(|c| c.title.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for c in &report.checks {
        let label = format!("{:<8}", c.verdict.label());
        let verdict = match c.verdict {
            Verdict::Ok => style.good(&label),
            Verdict::Warning => style.warning(&label),
            Verdict::Problem => style.bad(&label),
            Verdict::Skipped => style.skipped(&label),
        };
        let rest = format!("{:<title_width$} {:>5} ms  ", c.title, c.ms);
        let indent = style.mark_width() + label.len() + 1 + rest.chars().count();
        out.push_str(&format!(
            "{verdict} {rest}{}\n",
            style.wrap(&c.detail, indent)
        ));
        if let (Some(fix), Verdict::Warning | Verdict::Problem) = (&c.fix, c.verdict) {
            let fix = style.wrap(&format!("fix: {fix}"), indent + 5);
            out.push_str(&format!("{:indent$}{fix}\n", ""));
        }
    }
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    out.push('\n');
    let summary = match (report.problems, report.warnings) {
        (0, 0) => style.good("wbl doctor: no problems found."),
        (0, w) => style.warning(&format!(
            "wbl doctor: no problems, {}; the fixes above are optional.",
            plural(w, "warning")
        )),
        (p, w) => style.bad(&format!(
            "wbl doctor: {}, {}. Run the fixes above, then `wbl doctor` again.",
            plural(p, "problem"),
            plural(w, "warning")
        )),
    };
    out.push_str(&style.wrap(&summary, 0));
    out.push('\n');
    out
}
