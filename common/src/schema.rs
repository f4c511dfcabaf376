//! Validation of report.json against the checked-in JSON Schema (`common/report.schema.json`).
//! Compiled only with the `schema` feature, which tests enable.

/// The schema text.
pub const REPORT_SCHEMA: &str = include_str!("../report.schema.json");

/// Every violation of the schema in `report`, as "path: message" lines; empty when it conforms.
pub fn report_violations(report: &serde_json::Value) -> Vec<String> {
    let schema: serde_json::Value = match serde_json::from_str(REPORT_SCHEMA) {
        Ok(s) => s,
        Err(e) => return vec![format!("the checked-in schema is not JSON: {e}")],
    };
    let validator = match jsonschema::validator_for(&schema) {
        Ok(v) => v,
        Err(e) => return vec![format!("the checked-in schema is invalid: {e}")],
    };
    validator
        .iter_errors(report)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_missing_a_contract_field_is_rejected() {
        let mut report = serde_json::json!({
            "schema_version": 1, "run_id": "r", "plan_name": "p",
            "started_at": "2026-11-27T00:00:00Z", "finished_at": "2026-11-27T00:00:01Z",
            "verdict": "PASS", "grade": "A", "grade_reason": "", "verdict_reasons": [],
            "agents": [], "scenarios": []
        });
        assert_eq!(report_violations(&report), Vec::<String>::new());
        report.as_object_mut().expect("object").remove("verdict");
        assert_eq!(report_violations(&report).len(), 1);
        report["verdict"] = serde_json::json!("MAYBE");
        assert_eq!(report_violations(&report).len(), 1);
    }
}
