//! SARIF 2.1.0 for compliance findings, so code-scanning tools can show them beside the
//! source line of the failing `require`: a documented output format, like the JSON of
//! diagnostics, built here so every shell emits the same document.

use iade_intent::{Program, Severity};
use iade_journal::{Finding, FindingOutcome};
use serde_json::{Value, json};

/// SARIF levels for control severities: low → note, medium → warning, high and critical →
/// error.
fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Low => "note",
        Severity::Medium | Severity::Warn => "warning",
        Severity::High | Severity::Critical | Severity::Deny => "error",
    }
}

/// The SARIF document of a run's findings, with the program's controls as its rules.
pub fn sarif(findings: &[Finding], program: &Program) -> Value {
    let rules: Vec<Value> = program
        .controls
        .iter()
        .map(|c| {
            json!({
                "id": c.name,
                "shortDescription": { "text": c.title.clone().unwrap_or_else(|| c.name.clone()) },
                "defaultConfiguration": { "level": level(c.severity) },
                "properties": { "severity": c.severity },
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let mut text = f.message.clone().unwrap_or_else(|| "the control does not hold".into());
            if let Some(s) = &f.subject {
                text = format!("{s}: {text}");
            }
            if !f.evidence.is_empty() {
                text.push_str(&format!(" ({})", f.evidence.join("; ")));
            }
            let locations: Vec<Value> = f
                .location
                .iter()
                .map(|l| {
                    json!({ "physicalLocation": {
                        "artifactLocation": { "uri": l.file },
                        "region": { "startLine": l.line, "startColumn": l.column }
                    }})
                })
                .collect();
            let failed = f.outcome == FindingOutcome::Fail;
            json!({
                "ruleId": f.control,
                "level": if failed { level(f.severity) } else { "none" },
                "kind": if failed { "fail" } else { "review" },
                "message": { "text": text },
                "locations": locations,
                "properties": { "subject": f.subject, "outcome": f.outcome, "intent_compliant": f.intent_compliant },
            })
        })
        .collect();
    json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": { "driver": { "name": "iade", "version": env!("CARGO_PKG_VERSION"), "rules": rules } },
            "results": results,
        }]
    })
}
