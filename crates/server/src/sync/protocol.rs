//! The messages of the Convex sync protocol (reference §B.3, §B.4): parsing what clients send and
//! writing what the server sends. Values travel as `convex_encoded_json`, timestamps as the base64
//! of their 8 little-endian bytes.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use functions::FunctionError;
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};
use store::Ts;
use values::{Format, Value};

pub type QueryId = u32;

/// A message from the client. Fields the server has no use for (`connectionCount`, `clientTs`,
/// `journal`, ...) are ignored. Not `Debug`: `Authenticate` carries a token.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum ClientMessage {
    Connect {
        session_id: String,
        /// Checked for form only (`decode_ts`).
        #[serde(default)]
        max_observed_timestamp: Option<String>,
    },
    ModifyQuerySet {
        base_version: u32,
        new_version: u32,
        modifications: Vec<Modification>,
    },
    Mutation {
        request_id: u32,
        udf_path: String,
        #[serde(default)]
        args: Json,
    },
    Action {
        request_id: u32,
        udf_path: String,
        #[serde(default)]
        args: Json,
    },
    Authenticate {
        token_type: String,
        #[serde(default)]
        value: Option<String>,
        base_version: u32,
    },
    /// Client telemetry; ignored.
    Event {},
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum Modification {
    Add {
        query_id: QueryId,
        udf_path: String,
        #[serde(default)]
        args: Json,
    },
    Remove {
        query_id: QueryId,
    },
}

/// Parses one text frame.
pub fn parse(text: &str) -> Result<ClientMessage, String> {
    serde_json::from_str(text).map_err(|e| {
        // serde's message names the problem without echoing values (tokens stay out of errors).
        format!("Invalid message: {e}")
    })
}

/// `args` as sent (`[{...}]`, a bare object, or nothing) decoded into an object value.
pub fn decode_args(raw: Json) -> Result<Value, String> {
    let object = match raw {
        Json::Null => Json::Object(Map::new()),
        Json::Array(mut items) if items.len() == 1 => items.pop().unwrap_or(Json::Null),
        Json::Array(items) => {
            return Err(format!(
                "`args` must be an array of exactly one object, got {} items",
                items.len()
            ))
        }
        other => other,
    };
    if !object.is_object() {
        return Err("`args` must be an object".into());
    }
    Format::Encoded
        .decode(&object)
        .map_err(|e| format!("`args` could not be decoded: {e}"))
}

/// A timestamp as clients send it: the base64 of 8 little-endian bytes, at most i64::MAX (§B.2).
pub fn decode_ts(text: &str) -> Option<u64> {
    let bytes: [u8; 8] = BASE64.decode(text).ok()?.try_into().ok()?;
    let ts = u64::from_le_bytes(bytes);
    (ts <= i64::MAX as u64).then_some(ts)
}

pub fn encode_ts(ts: Ts) -> String {
    BASE64.encode(ts.0.to_le_bytes())
}

/// The state a Transition moves the client between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateVersion {
    pub query_set: u32,
    pub identity: u32,
    pub ts: Ts,
}

impl StateVersion {
    fn to_json(self) -> Json {
        json!({"querySet": self.query_set, "identity": self.identity, "ts": encode_ts(self.ts)})
    }
}

/// A Transition; `modifications` are already-serialized modification objects.
pub fn transition(start: StateVersion, end: StateVersion, modifications: &[String]) -> String {
    let size = modifications.iter().map(|m| m.len() + 1).sum::<usize>() + 200;
    let mut out = String::with_capacity(size);
    out.push_str(r#"{"type":"Transition","startVersion":"#);
    out.push_str(&start.to_json().to_string());
    out.push_str(r#","endVersion":"#);
    out.push_str(&end.to_json().to_string());
    out.push_str(r#","modifications":["#);
    for (i, modification) in modifications.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(modification);
    }
    out.push_str("]}");
    out
}

/// `QueryUpdated` around a value already encoded as `convex_encoded_json`.
pub fn query_updated_encoded(query_id: QueryId, encoded: &str, log_lines: &[String]) -> String {
    let logs = serde_json::to_string(log_lines).expect("strings serialize");
    format!(
        r#"{{"type":"QueryUpdated","queryId":{query_id},"value":{encoded},"logLines":{logs},"journal":null}}"#
    )
}

/// `QueryFailed`; `errorData` only for user errors (ConvexError).
pub fn query_failed(
    query_id: QueryId,
    error: &FunctionError,
    request_id: &str,
    log_lines: &[String],
) -> String {
    let mut message = json!({
        "type": "QueryFailed",
        "queryId": query_id,
        "errorMessage": error.client_message(request_id),
        "logLines": log_lines,
        "journal": null,
    });
    if let Some(data) = error.error_data() {
        message["errorData"] = Format::Encoded.encode(&data);
    }
    message.to_string()
}

pub fn query_removed(query_id: QueryId) -> String {
    json!({"type": "QueryRemoved", "queryId": query_id}).to_string()
}

/// What a mutation or action answered.
pub enum Answer<'a> {
    Success {
        value: &'a Value,
        log_lines: &'a [String],
    },
    Failure {
        error: &'a FunctionError,
        request_id: &'a str,
        log_lines: &'a [String],
    },
}

pub fn mutation_response(request_id: u32, answer: Answer<'_>, ts: Option<Ts>) -> String {
    let mut message = response("MutationResponse", request_id, answer);
    message["ts"] = match ts {
        Some(ts) => Json::String(encode_ts(ts)),
        None => Json::Null,
    };
    message.to_string()
}

pub fn action_response(request_id: u32, answer: Answer<'_>) -> String {
    response("ActionResponse", request_id, answer).to_string()
}

fn response(kind: &str, request_id: u32, answer: Answer<'_>) -> Json {
    match answer {
        Answer::Success { value, log_lines } => json!({
            "type": kind,
            "requestId": request_id,
            "success": true,
            "result": Format::Encoded.encode(value),
            "logLines": log_lines,
        }),
        Answer::Failure {
            error,
            request_id: trace_id,
            log_lines,
        } => {
            let mut message = json!({
                "type": kind,
                "requestId": request_id,
                "success": false,
                "result": error.client_message(trace_id),
                "logLines": log_lines,
            });
            if let Some(data) = error.error_data() {
                message["errorData"] = Format::Encoded.encode(&data);
            }
            message
        }
    }
}

pub fn auth_error(message: &str, base_version: u32, attempted: bool) -> String {
    json!({
        "type": "AuthError",
        "error": message,
        "baseVersion": base_version,
        "authUpdateAttempted": attempted,
    })
    .to_string()
}

pub fn fatal_error(message: &str) -> String {
    json!({"type": "FatalError", "error": message}).to_string()
}

pub const PING: &str = r#"{"type":"Ping"}"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_little_endian_base64() {
        assert_eq!(encode_ts(Ts(0)), "AAAAAAAAAAA=");
        assert_eq!(encode_ts(Ts(1)), "AQAAAAAAAAA=");
        assert_eq!(encode_ts(Ts(3)), "AwAAAAAAAAA=");
    }

    #[test]
    fn client_messages_parse_as_the_clients_send_them() {
        let connect = r#"{"connectionCount":0,"lastCloseReason":"InitialConnect","clientTs":1795686589369,"type":"Connect","sessionId":"306f"}"#;
        assert!(
            matches!(parse(connect), Ok(ClientMessage::Connect { session_id, .. }) if session_id == "306f")
        );
        let modify = r#"{"type":"ModifyQuerySet","baseVersion":0,"newVersion":1,"modifications":[{"type":"Add","queryId":0,"udfPath":"messages:list","args":[{}],"journal":null},{"type":"Remove","queryId":3}]}"#;
        let Ok(ClientMessage::ModifyQuerySet { modifications, .. }) = parse(modify) else {
            panic!("ModifyQuerySet parses")
        };
        assert!(
            matches!(&modifications[0], Modification::Add { query_id: 0, udf_path, .. } if udf_path == "messages:list")
        );
        assert!(matches!(
            modifications[1],
            Modification::Remove { query_id: 3 }
        ));
        let auth = r#"{"type":"Authenticate","baseVersion":0,"tokenType":"User","value":"t"}"#;
        assert!(matches!(
            parse(auth),
            Ok(ClientMessage::Authenticate {
                base_version: 0,
                ..
            })
        ));
        let event = r#"{"type":"Event","eventType":"ClientConnect","event":{"x":1}}"#;
        assert!(matches!(parse(event), Ok(ClientMessage::Event {})));
        assert!(parse(r#"{"type":"Nonsense"}"#).is_err());
    }

    #[test]
    fn transitions_chain_versions_and_embed_modifications() {
        let start = StateVersion {
            query_set: 0,
            identity: 0,
            ts: Ts(0),
        };
        let end = StateVersion {
            query_set: 1,
            identity: 0,
            ts: Ts(1),
        };
        let value = Format::Encoded.encode_to_string(&Value::Int64(42));
        let text = transition(start, end, &[query_updated_encoded(0, &value, &[])]);
        let json: Json = serde_json::from_str(&text).unwrap();
        assert_eq!(
            json,
            json!({
                "type": "Transition",
                "startVersion": {"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="},
                "endVersion": {"querySet": 1, "identity": 0, "ts": "AQAAAAAAAAA="},
                "modifications": [{"type": "QueryUpdated", "queryId": 0, "value": {"$integer": "KgAAAAAAAAA="}, "logLines": [], "journal": null}],
            })
        );
    }

    #[test]
    fn error_data_only_for_user_errors() {
        let user = FunctionError::validation("body", "too long");
        let failed: Json = serde_json::from_str(&query_failed(1, &user, "r1", &[])).unwrap();
        assert_eq!(
            failed["errorData"],
            json!({"code": "VALIDATION", "message": "too long", "field": "body"})
        );
        let internal = FunctionError::internal("secret detail");
        let failed: Json = serde_json::from_str(&mutation_response(
            2,
            Answer::Failure {
                error: &internal,
                request_id: "r2",
                log_lines: &[],
            },
            None,
        ))
        .unwrap();
        assert!(failed.get("errorData").is_none());
        assert_eq!(failed["result"], "[Request ID: r2] Server Error");
        assert_eq!(failed["ts"], Json::Null);
    }
}
