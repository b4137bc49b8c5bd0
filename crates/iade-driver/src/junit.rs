//! JUnit XML of a run's controls, for CI systems that show test reports: one test suite, one
//! test case per control that held everywhere, and one per control and subject that did not
//! (a failure, a skipped case for an unknown, a passing case noting a waiver).

use iade_intent::Program;
use iade_journal::{Finding, FindingOutcome};

fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' => out.push(c),
            // XML 1.0 cannot carry other control characters, even escaped.
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The JUnit document of a run's findings (failures and unknowns) over the program's controls.
pub fn junit(findings: &[Finding], program: &Program) -> String {
    let mut cases = Vec::new();
    let (mut failures, mut skipped) = (0, 0);
    for control in &program.controls {
        let own: Vec<&Finding> = findings.iter().filter(|f| f.control == control.name).collect();
        let class = format!("iade.control.{}", control.name);
        if own.is_empty() {
            cases.push(format!(
                "    <testcase name=\"{}\" classname=\"{}\"/>\n",
                xml(&control.name),
                xml(&class)
            ));
            continue;
        }
        for f in own {
            let name = match &f.subject {
                Some(s) => format!("{} on {s}", control.name),
                None => control.name.clone(),
            };
            let mut detail = f.message.clone().unwrap_or_else(|| "the control does not hold".into());
            for e in &f.evidence {
                detail.push_str(&format!("\n{e}"));
            }
            if let Some(l) = &f.location {
                detail.push_str(&format!("\nat {}:{}:{}", l.file, l.line, l.column));
            }
            let body = match f.outcome {
                FindingOutcome::Fail => {
                    failures += 1;
                    format!(
                        "      <failure message=\"{}\" type=\"{:?}\">{}</failure>\n",
                        xml(f.message.as_deref().unwrap_or("the control does not hold")),
                        f.severity,
                        xml(&detail)
                    )
                }
                FindingOutcome::Unknown => {
                    skipped += 1;
                    format!("      <skipped message=\"{}\"/>\n", xml(&format!("unknown: {detail}")))
                }
                FindingOutcome::Waived => {
                    format!("      <system-out>{}</system-out>\n", xml(&format!("waived: {detail}")))
                }
            };
            cases.push(format!(
                "    <testcase name=\"{}\" classname=\"{}\">\n{body}    </testcase>\n",
                xml(&name),
                xml(&class)
            ));
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"iade\" tests=\"{n}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">\n  <testsuite name=\"iade controls\" tests=\"{n}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">\n{}  </testsuite>\n</testsuites>\n",
        cases.concat(),
        n = cases.len()
    )
}
