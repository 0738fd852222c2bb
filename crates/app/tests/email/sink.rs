//! A minimal SMTP server for the tests: enough of RFC 5321 for lettre to deliver to it (greeting,
//! EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT), capturing every accepted message, and
//! able to refuse recipients transiently (451) or permanently (550) on request.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One accepted message.
#[derive(Clone, Debug)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// Headers and body as transmitted (dot-unstuffed), lines joined by "\r\n".
    pub data: String,
}

impl Received {
    /// The first header `name` (unfolded), case-insensitively.
    pub fn header(&self, name: &str) -> Option<String> {
        let (head, _) = self.data.split_once("\r\n\r\n")?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            match (&mut value, line.starts_with([' ', '\t'])) {
                (Some(v), true) => v.push_str(line),
                (Some(_), false) => break,
                (None, _) => {
                    if let Some((key, rest)) = line.split_once(':') {
                        if key.eq_ignore_ascii_case(name) {
                            value = Some(rest.trim().to_string());
                        }
                    }
                }
            }
        }
        value
    }
    /// The body, decoded from quoted-printable when the message says so (lettre picks it for lines
    /// longer than 76 characters, such as reset links).
    pub fn body(&self) -> String {
        let raw = self.data.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let quoted = self
            .header("Content-Transfer-Encoding")
            .is_some_and(|e| e.eq_ignore_ascii_case("quoted-printable"));
        if !quoted {
            return raw.to_string();
        }
        let joined = raw.replace("=\r\n", "");
        let mut out = Vec::new();
        let mut bytes = joined.bytes();
        while let Some(byte) = bytes.next() {
            match byte {
                b'=' => {
                    let hex: String = bytes.by_ref().take(2).map(char::from).collect();
                    out.push(u8::from_str_radix(&hex, 16).expect("quoted-printable escape"));
                }
                other => out.push(other),
            }
        }
        String::from_utf8(out).expect("UTF-8 body")
    }
}

#[derive(Default)]
struct State {
    messages: Vec<Received>,
    /// Recipients still to refuse with 451.
    transient_failures: usize,
    permanent_failure: bool,
    refused: usize,
    /// Decoded `AUTH PLAIN` responses.
    logins: Vec<String>,
}

pub struct Sink {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Sink {
    pub async fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let addr = listener.local_addr().expect("sink address");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, shared.clone()));
            }
        });
        Sink { addr, state, task }
    }

    /// `smtp://` URL of this sink.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }
    /// Refuses the next `n` recipients with 451 (try again later).
    pub fn fail_transiently(&self, n: usize) {
        self.state.lock().unwrap().transient_failures = n;
    }
    /// Refuses every recipient with 550 (mailbox unavailable).
    pub fn fail_permanently(&self) {
        self.state.lock().unwrap().permanent_failure = true;
    }
    pub fn messages(&self) -> Vec<Received> {
        self.state.lock().unwrap().messages.clone()
    }
    pub fn refused(&self) -> usize {
        self.state.lock().unwrap().refused
    }
    pub fn logins(&self) -> Vec<String> {
        self.state.lock().unwrap().logins.clone()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn session(stream: TcpStream, state: Arc<Mutex<State>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    if write.write_all(b"220 sink ESMTP ready\r\n").await.is_err() {
        return;
    }
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = line.trim_end().to_string();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let answer: String = match verb.as_str() {
            "EHLO" => "250-sink\r\n250-8BITMIME\r\n250 AUTH PLAIN\r\n".into(),
            "HELO" | "NOOP" => "250 ok\r\n".into(),
            "RSET" => {
                (from, to) = (String::new(), Vec::new());
                "250 ok\r\n".into()
            }
            "AUTH" => {
                let encoded = command.split_whitespace().nth(2).unwrap_or("");
                state.lock().unwrap().logins.push(decode_base64(encoded));
                "235 2.7.0 authenticated\r\n".into()
            }
            "MAIL" => {
                from = address(&command);
                "250 ok\r\n".into()
            }
            "RCPT" => {
                let mut s = state.lock().unwrap();
                if s.permanent_failure {
                    s.refused += 1;
                    "550 5.1.1 mailbox unavailable\r\n".into()
                } else if s.transient_failures > 0 {
                    s.transient_failures -= 1;
                    s.refused += 1;
                    "451 4.3.0 try again later\r\n".into()
                } else {
                    to.push(address(&command));
                    "250 ok\r\n".into()
                }
            }
            "DATA" => {
                if write.write_all(b"354 end with .\r\n").await.is_err() {
                    return;
                }
                let mut data = Vec::new();
                loop {
                    line.clear();
                    match lines.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let text = line.trim_end_matches(['\r', '\n']);
                    if text == "." {
                        break;
                    }
                    data.push(text.strip_prefix('.').unwrap_or(text).to_string());
                }
                state.lock().unwrap().messages.push(Received {
                    mail_from: std::mem::take(&mut from),
                    rcpt_to: std::mem::take(&mut to),
                    data: data.join("\r\n"),
                });
                "250 2.0.0 queued\r\n".into()
            }
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => "500 unrecognised command\r\n".into(),
        };
        if write.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// `MAIL FROM:<a@b> SIZE=1` → `a@b`.
fn address(command: &str) -> String {
    let start = command.find('<').map_or(0, |i| i + 1);
    let end = command[start..]
        .find('>')
        .map_or(command.len(), |i| start + i);
    command[start..end].to_string()
}

/// An `AUTH PLAIN` response, NULs and all.
fn decode_base64(text: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}
