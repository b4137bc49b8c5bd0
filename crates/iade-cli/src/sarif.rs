//! SARIF 2.1.0 for compliance findings, so code-scanning tools can show them beside the
//! source line of the failing `require`.

use iade_engine::ComplianceReport;
use iade_intent::Program;
use serde_json::{Value, json};

/// SARIF levels for control severities: low → note, medium → warning, high and critical →
/// error.
fn level(severity: &str) -> &'static str {
    match severity {
        "low" => "note",
        "medium" => "warning",
        _ => "error",
    }
}

fn location(loc: &str) -> Option<Value> {
    let mut parts = loc.rsplitn(3, ':');
    let col: u64 = parts.next()?.parse().ok()?;
    let line: u64 = parts.next()?.parse().ok()?;
    let file = parts.next()?;
    Some(json!({
        "physicalLocation": {
            "artifactLocation": { "uri": file },
            "region": { "startLine": line, "startColumn": col }
        }
    }))
}

pub fn sarif(report: &ComplianceReport, program: &Program) -> Value {
    let rules: Vec<Value> = program
        .controls
        .iter()
        .map(|c| {
            json!({
                "id": c.name,
                "shortDescription": { "text": c.title.clone().unwrap_or_else(|| c.name.clone()) },
                "defaultConfiguration": { "level": level(&c.severity) },
                "properties": { "severity": c.severity },
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut text = f.message.clone().unwrap_or_else(|| "the control does not hold".into());
            if let Some(s) = &f.subject {
                text = format!("{s}: {text}");
            }
            if !f.evidence.is_empty() {
                text.push_str(&format!(" ({})", f.evidence.join("; ")));
            }
            json!({
                "ruleId": f.control,
                "level": if f.outcome == "fail" { level(&f.severity) } else { "none" },
                "kind": if f.outcome == "fail" { "fail" } else { "review" },
                "message": { "text": text },
                "locations": f.location.as_deref().and_then(location).into_iter().collect::<Vec<_>>(),
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
