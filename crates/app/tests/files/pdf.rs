//! `pdfGeneration:*`: the report of an incident as a real PDF whose text (read back with
//! `pdftotext` from poppler-utils) holds the chosen sections and only those; downloads for readers
//! of the incident only.

use std::process::Command;

use serde_json::json;

use crate::harness::{backends, App, Place};
use crate::seed::{anyone, insert, now_ms};
use crate::{company, failure};

const DURING: &str = "Sarah threw her cup when the television was switched off and shouted at \
                      the support worker for several minutes before sitting down again.";

/// The text of a PDF, as a reader would copy it.
fn pdf_text(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.pdf");
    std::fs::write(&path, bytes).unwrap();
    let output = Command::new("pdftotext")
        .args(["-layout", path.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext is installed (apt-get install poppler-utils; .ci/run does it)");
    assert!(output.status.success(), "pdftotext refused the file");
    // Lines are wrapped: compare words, not layout.
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

async fn download(app: &App, token: &str, storage_id: &str) -> Vec<u8> {
    let link = app
        .ok(
            "action",
            "pdfGeneration:downloadPDF",
            json!({"sessionToken": token, "storageId": storage_id}),
        )
        .await;
    assert_eq!(link["contentType"], "application/pdf");
    // The web app fetches it cross-origin without credentials.
    let response = app
        .http
        .get(link["downloadUrl"].as_str().unwrap())
        .header("origin", "http://localhost:3200")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://localhost:3200"
    );
    let bytes = response.bytes().await.unwrap().to_vec();
    assert_eq!(link["fileSize"], bytes.len() as f64);
    bytes
}

#[tokio::test]
async fn the_report_is_a_pdf_of_the_chosen_sections_for_readers_of_the_incident() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let acme = company(&app, "Acme Care").await;
        let other = company(&app, "Other Care").await;
        let worker = anyone(&app, Some(&acme.id), "frontline_worker").await;
        let colleague = anyone(&app, Some(&acme.id), "frontline_worker").await;
        let lead = anyone(&app, Some(&acme.id), "team_lead").await;
        let outsider = anyone(&app, Some(&other.id), "company_admin").await;
        let sarah = insert(
            &app,
            "participants",
            json!({"company_id": acme.id, "site_id": acme.site, "first_name": "Sarah",
                   "last_name": "Williams", "date_of_birth": "1985-04-12",
                   "ndis_number": "431234567", "support_level": "high", "status": "active",
                   "care_notes": "Prefers quiet spaces", "name_key": "williams\u{1}sarah",
                   "created_at": 1.0, "created_by": worker.id, "updated_at": 1.0,
                   "updated_by": worker.id}),
        )
        .await;
        let id = app
            .ok(
                "mutation",
                "incidents:create",
                json!({"sessionToken": worker.token, "site_id": acme.site,
                       "participant_id": sarah, "reporter_name": "Kim Lee",
                       "participant_name": "Sarah Williams", "location": "Lounge room",
                       "event_date_time": "2026-11-30T14:30"}),
            )
            .await;
        let id = id.as_str().unwrap().to_string();
        let by_id = json!({"sessionToken": worker.token, "incident_id": id});
        app.ok("mutation", "narratives:create", by_id.clone()).await;
        let mut edit = by_id.clone();
        edit["before_event"] = json!("Sarah was watching a cooking show after lunch.");
        edit["during_event"] = json!(DURING);
        app.ok("mutation", "narratives:update", edit).await;
        let now = now_ms();
        insert(
            &app,
            "clarification_questions",
            json!({"company_id": acme.id, "incident_id": id, "phase": "during_event",
                   "question_id": "during_event_q1", "question_text": "What did Sarah say?",
                   "question_order": 1.0, "is_active": true, "ai_model": "offline",
                   "provider": "offline", "correlation_id": "c1", "created_at": now,
                   "created_by": worker.id, "updated_at": now}),
        )
        .await;
        insert(
            &app,
            "clarification_answers",
            json!({"company_id": acme.id, "incident_id": id, "question_id": "during_event_q1",
                   "phase": "during_event", "answer_text": "She asked for the show back.",
                   "character_count": 28.0, "word_count": 6.0, "is_complete": true,
                   "answered_by": worker.id, "created_at": now, "updated_at": now}),
        )
        .await;

        // Every section (the default).
        let generated = app
            .ok(
                "action",
                "pdfGeneration:generateIncidentPDF",
                json!({"sessionToken": worker.token, "incident_id": id}),
            )
            .await;
        let filename = generated["filename"].as_str().unwrap();
        assert!(
            filename.starts_with(&format!("incident-sarah-williams-{id}-"))
                && filename.ends_with(".pdf"),
            "{db:?} {filename}"
        );
        assert_eq!(generated["sections"].as_array().unwrap().len(), 6);
        let pages = generated["metrics"]["pageCount"].as_f64().unwrap();
        assert!(pages >= 1.0);
        let storage_id = generated["storageId"].as_str().unwrap().to_string();
        // The team lead reads the incident, so downloads its report.
        let bytes = download(&app, &lead.token, &storage_id).await;
        assert!(bytes.starts_with(b"%PDF-"));
        assert_eq!(generated["fileSize"], bytes.len() as f64);
        let text = pdf_text(&bytes);
        for expected in [
            "Incident Report",
            "Acme Care",
            "Incident overview",
            "Lounge room",
            "Participant details",
            "431234567",
            "Prefers quiet spaces",
            "Sarah was watching a cooking show after lunch.",
            DURING,
            "What did Sarah say?",
            "She asked for the show back.",
            "Processing information",
            "Confidential",
            &format!("Page 1 of {pages}"),
            &format!("Page {pages} of {pages}"),
        ] {
            let expected = expected.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                text.contains(&expected),
                "{db:?}: missing {expected:?} in {text}"
            );
        }

        // Only the narrative; unknown keys are ignored.
        let narrative_only = app
            .ok(
                "action",
                "pdfGeneration:generateIncidentPDF",
                json!({"sessionToken": worker.token, "incident_id": id,
                       "sections": ["incident_narratives", "no_such_section"]}),
            )
            .await;
        assert_eq!(narrative_only["sections"], json!(["incident_narratives"]));
        let only = narrative_only["storageId"].as_str().unwrap();
        let text = pdf_text(&download(&app, &worker.token, only).await);
        assert!(text.contains("cooking show"), "{text}");
        for absent in [
            "431234567",
            "Participant details",
            "What did Sarah say?",
            "Processing",
        ] {
            assert!(
                !text.contains(absent),
                "{db:?}: {absent:?} should not be in {text}"
            );
        }

        // Other companies, and colleagues who may not read the incident, get nothing.
        let body = app
            .call(
                "action",
                "pdfGeneration:generateIncidentPDF",
                json!({"sessionToken": outsider.token, "incident_id": id}),
            )
            .await;
        assert_eq!(body["errorData"]["code"], "NOT_FOUND", "{body}");
        assert!(body["errorData"]["message"]
            .as_str()
            .unwrap()
            .starts_with("PDF generation failed: "));
        let (code, message) = failure(
            &app,
            "action",
            "pdfGeneration:downloadPDF",
            json!({"sessionToken": outsider.token, "storageId": storage_id}),
        )
        .await;
        assert_eq!(
            (code.as_str(), message.as_str()),
            (
                "NOT_FOUND",
                "PDF download failed: PDF file not found in storage"
            )
        );
        let (code, _) = failure(
            &app,
            "action",
            "pdfGeneration:downloadPDF",
            json!({"sessionToken": colleague.token, "storageId": storage_id}),
        )
        .await;
        assert_eq!(code, "FORBIDDEN");
        let (code, _) = failure(
            &app,
            "action",
            "pdfGeneration:generateIncidentPDF",
            json!({"sessionToken": colleague.token, "incident_id": id}),
        )
        .await;
        assert_eq!(code, "FORBIDDEN");
        app.stop().await;
    }
}
