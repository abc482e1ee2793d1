//! The TA1 and 999 writers: what they write, pyx12 accepts (the 999) and
//! our reader reads back to the same acknowledgments.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::*;
use edi_courier::inspect::{read_items, Item};
use edi_courier::model::response::{
    Ack999, ElementError, EnvelopeRef, Response, SegmentError, SetAck, Ta1,
};
use edi_courier::profile::Profile;
use edi_courier::x12::{write_999, write_ta1, Sequential};

fn now() -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 20)
        .unwrap()
        .and_hms_opt(10, 5, 0)
        .unwrap()
}

fn read_back(bytes: &[u8]) -> Vec<Response> {
    let mut out = Vec::new();
    let summary = read_items(bytes, |i| {
        if let Item::Response(r) = i {
            out.push(*r)
        }
    })
    .unwrap();
    assert!(summary.is_valid(), "{:?}", summary.problems);
    out
}

fn acks() -> Vec<Ack999> {
    let accepted = Ack999 {
        functional_id: "HC".into(),
        group: "41".into(),
        version: "005010X222A1".into(),
        sets: vec![SetAck {
            set_id: "837".into(),
            set: "0001".into(),
            status: "A".into(),
            // AK203: the writer gives each set its group's version.
            version: "005010X222A1".into(),
            ..SetAck::default()
        }],
        status: "A".into(),
        sets_included: 1,
        sets_received: 1,
        sets_accepted: 1,
        ..Ack999::default()
    };
    let partly = Ack999 {
        functional_id: "HC".into(),
        group: "42".into(),
        version: "005010X223A2".into(),
        sets: vec![
            SetAck {
                set_id: "837".into(),
                set: "0002".into(),
                status: "A".into(),
                version: "005010X223A2".into(),
                ..SetAck::default()
            },
            SetAck {
                set_id: "837".into(),
                set: "0003".into(),
                errors: vec![
                    SegmentError {
                        segment: "NM1".into(),
                        position: 23,
                        loop_id: "2010".into(),
                        code: "8".into(),
                        context: vec!["CLM01=C00042".into()],
                        elements: vec![ElementError {
                            element: 9,
                            component: None,
                            repetition: None,
                            reference: "67".into(),
                            code: "7".into(),
                        }],
                    },
                    SegmentError {
                        segment: "DTP".into(),
                        position: 31,
                        loop_id: "2300".into(),
                        code: "8".into(),
                        context: vec![],
                        elements: vec![ElementError {
                            element: 3,
                            component: None,
                            repetition: None,
                            reference: "1251".into(),
                            code: "8".into(),
                        }],
                    },
                ],
                status: "R".into(),
                codes: vec!["5".into()],
                version: "005010X223A2".into(),
            },
        ],
        status: "P".into(),
        sets_included: 2,
        sets_received: 2,
        sets_accepted: 1,
        ..Ack999::default()
    };
    vec![accepted, partly]
}

#[test]
fn a_999_we_write_passes_pyx12_and_reads_back_the_same() {
    let env = Profile::sandbox().unwrap().envelope.reply();
    let mut out = Vec::new();
    let control = write_999(
        &env,
        now(),
        &mut Sequential::starting_at(7),
        &acks(),
        &mut out,
    )
    .unwrap();
    assert_eq!(control, 7);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reply.999");
    std::fs::write(&file, &out).unwrap();
    assert_pyx12_valid(&[file]);

    let back = read_back(&out);
    assert_eq!(back.len(), 2);
    for (read, wrote) in back.iter().zip(acks()) {
        let Response::Ack999(read) = read else {
            panic!("{read:?}")
        };
        let expected = Ack999 {
            envelope: read.envelope.clone(),
            ..wrote
        };
        assert_eq!(read, &expected);
        assert_eq!(read.envelope.sender, env.sender_id);
    }
}

#[test]
fn a_ta1_we_write_reads_back_the_same() {
    let env = Profile::sandbox().unwrap().envelope.reply();
    let ta1 = Ta1 {
        envelope: EnvelopeRef::default(),
        interchange: "000000042".into(),
        date: "261120".into(),
        time: "1005".into(),
        code: "R".into(),
        note: "008".into(),
    };
    let mut out = Vec::new();
    write_ta1(&env, now(), &mut Sequential::starting_at(3), &ta1, &mut out).unwrap();
    let back = read_back(&out);
    let [Response::Ta1(read)] = back.as_slice() else {
        panic!("{back:?}")
    };
    assert_eq!(
        read,
        &Ta1 {
            envelope: read.envelope.clone(),
            ..ta1
        }
    );
    assert_eq!(read.envelope.interchange, "000000003");
}

#[test]
fn a_277ca_we_write_passes_pyx12_and_reads_back_claim_by_claim() {
    use edi_courier::model::response::{ClaimStatus, StatusCode};
    use edi_courier::model::ClaimKind;
    use edi_courier::x12::{write_277ca, Answer277};

    let env = Profile::sandbox().unwrap().envelope.reply();
    let claims = common::gen::batch(11, 40, ClaimKind::Professional, true);
    let answered: Vec<_> = claims
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let status = if i % 4 == 3 {
                StatusCode {
                    category: "A7".into(),
                    code: "562".into(),
                    entity: Some("85".into()),
                    ..StatusCode::default()
                }
            } else {
                StatusCode {
                    category: "A2".into(),
                    code: "20".into(),
                    ..StatusCode::default()
                }
            };
            (
                c,
                ClaimStatus {
                    claim_id: c.id.clone(),
                    payer_claim_number: (i % 4 != 3).then(|| format!("PCN{i:06}")),
                    statuses: vec![status],
                    ..ClaimStatus::default()
                },
            )
        })
        .collect();
    let answer = Answer277 {
        reference: "R277-1",
        payer_name: "ACME HEALTH PLAN",
        payer_id: "ACME01",
        submitter_name: "RIVERSIDE FAMILY MEDICINE",
        submitter_id: "EDICOURIER",
        batch_trace: "BHT0001",
        received: now().date(),
        claims: &answered,
    };
    let mut out = Vec::new();
    write_277ca(
        &env,
        now(),
        &mut Sequential::starting_at(9),
        &answer,
        &mut out,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reply.277");
    std::fs::write(&file, &out).unwrap();
    assert_pyx12_valid(&[file]);

    let back = read_back(&out);
    let [Response::Status277(s)] = back.as_slice() else {
        panic!("{back:?}")
    };
    assert_eq!(s.reference, "R277-1");
    assert_eq!(s.claims.len(), 40);
    for (read, (claim, wrote)) in s.claims.iter().zip(&answered) {
        assert_eq!(read.claim_id, claim.id);
        assert_eq!(read.payer_claim_number, wrote.payer_claim_number);
        assert_eq!(read.statuses[0].category, wrote.statuses[0].category);
        assert_eq!(read.statuses[0].amount, Some(claim.total_charge));
        assert_eq!(
            read.statuses[0].is_rejection(),
            wrote.statuses[0].is_rejection()
        );
    }
    assert_eq!(
        s.claims
            .iter()
            .filter(|c| c.statuses[0].is_rejection())
            .count(),
        10
    );
}
