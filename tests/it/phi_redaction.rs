//! PHI stays out of what people and programs print: `{:?}` of every model
//! type that holds it, and the messages about a claim whose member id,
//! birth date or ZIP came as a JSON number (serde quotes such values in its
//! errors).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{edi_courier, root};
use edi_courier::model::ClaimFile;
use serde_json::Value;

/// Every value here is a canary: none may be printed.
const CANARIES: [&str; 7] = [
    "CANARY",
    "1944-02-29",
    "19440229",
    "1933-03-03",
    "C4A70",
    "998877665",
    "99501",
];

/// Puts a canary into every PHI field of the canonical JSON, wherever it is.
fn plant(v: &mut Value) {
    match v {
        Value::Object(fields) => {
            for (key, value) in fields.iter_mut() {
                match key.as_str() {
                    "last_name"
                    | "first_name"
                    | "middle_name"
                    | "subscriber_last_name"
                    | "subscriber_first_name"
                    | "line1"
                    | "line2"
                    | "city"
                    | "note"
                    | "medical_record_number" => *value = Value::from("CANARY"),
                    "member_id" | "subscriber_member_id" => *value = Value::from("998877665"),
                    "zip" => *value = Value::from("99501"),
                    "birth_date" => *value = Value::from("1944-02-29"),
                    "service_date"
                    | "statement_from"
                    | "statement_to"
                    | "onset_date"
                    | "initial_treatment_date" => *value = Value::from("1933-03-03"),
                    "diagnoses" => *value = serde_json::json!(["C4A70"]),
                    _ => plant(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(plant),
        _ => {}
    }
}

fn leaked(text: &str) -> Vec<&'static str> {
    CANARIES.into_iter().filter(|c| text.contains(c)).collect()
}

#[test]
fn debug_of_claims_and_their_people_shows_no_phi() {
    let text = std::fs::read_to_string(root().join("examples/claims.json")).unwrap();
    let mut json: Value = serde_json::from_str(&text).unwrap();
    // A dependant, so the patient loop is checked too.
    json["claims"][0]["patient"] = serde_json::json!({
        "relationship": "19", "last_name": "X", "first_name": "Y",
        "birth_date": "2010-01-01", "gender": "F",
        "address": { "line1": "X", "city": "X", "state": "AK", "zip": "X" }
    });
    plant(&mut json);
    let file: ClaimFile = serde_json::from_value(json).unwrap();
    assert!(
        file.claims.iter().any(|c| c.patient.is_some()),
        "the sample has a patient loop to check"
    );
    // The canaries are in the model (so the check below can fail)...
    let serialized = serde_json::to_string(&file).unwrap();
    assert_eq!(
        leaked(&serialized).len(),
        CANARIES.len() - 1,
        "all but the compact date planted"
    );
    // ...and in none of its debug forms.
    for shown in [format!("{file:?}"), format!("{file:#?}")] {
        assert_eq!(leaked(&shown), Vec::<&str>::new(), "{shown}");
        assert!(
            shown.contains("RFM-1001"),
            "the claim id is still shown: {shown}"
        );
    }
    for claim in &file.claims {
        let parts = [
            format!("{:?}", claim.subscriber),
            format!("{:?}", claim.patient),
            format!("{:?}", claim.other_payers),
            format!("{:?}", claim.lines),
            format!("{:?}", claim.subscriber.address),
        ];
        for shown in parts {
            assert_eq!(leaked(&shown), Vec::<&str>::new(), "{shown}");
        }
    }
}

#[test]
fn member_id_birth_date_and_zip_as_json_numbers_are_not_quoted_in_messages() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("examples/claims.json")).unwrap();
    let mut json: Value = serde_json::from_str(&text).unwrap();
    let subscriber = &mut json["claims"][0]["subscriber"];
    subscriber["member_id"] = Value::from(998877665u64);
    subscriber["birth_date"] = Value::from(19440229u64);
    subscriber["address"]["zip"] = Value::from(99501u64);
    let input = dir.path().join("numbers.json");
    std::fs::write(&input, serde_json::to_vec(&json).unwrap()).unwrap();
    let out_837 = dir.path().join("out.837");
    let out = edi_courier(&[
        "translate",
        input.to_str().unwrap(),
        "-o",
        out_837.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains("RFM-1001") && stderr.contains("subscriber."),
        "the claim is set aside, naming the claim and the field: {stderr}"
    );
    let report = std::fs::read_to_string(dir.path().join("out.837.report.json")).unwrap();
    for (what, text) in [("stderr", &stderr), ("report", &report)] {
        assert_eq!(leaked(text), Vec::<&str>::new(), "{what}: {text}");
    }
}
