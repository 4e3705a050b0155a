//! A stand-in W&B server for the tests, on 127.0.0.1: it answers `POST /graphql` the way the
//! real server answers the SDK's `Viewer` query, and records every request so tests can check
//! the `Authorization: Basic base64("api:KEY")` header and the query body — or that no
//! request was made at all.

#![allow(dead_code)]

pub mod api;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use base64::Engine;

/// What the server answers.
#[derive(Clone, Debug)]
pub enum Answer {
    /// `200 {"data":{"viewer":{…}}}` with this user, default entity and teams.
    Viewer {
        username: &'static str,
        entity: &'static str,
        teams: &'static [&'static str],
    },
    /// `200 {"data":{"viewer":null}}` — what W&B answers for a key it does not know.
    NullViewer,
    /// This HTTP status with a GraphQL error body.
    Status(u16),
    /// Never answer (until the server is dropped): for timeouts.
    Hang,
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
    /// The Authorization header was `Basic base64("api:" + the valid key)`.
    pub key_ok: bool,
    /// The body was the SDK's viewer query as JSON.
    pub body_ok: bool,
    /// The key of a `Basic base64("api:KEY")` header.
    pub key: Option<String>,
}

/// The key in a `Basic base64("api:KEY")` header.
pub(crate) fn key_of(authorization: &str) -> Option<String> {
    let b64 = authorization.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("api:")
        .map(str::to_owned)
}

struct State {
    valid_key: String,
    on_valid: Answer,
    on_invalid: Answer,
    /// More keys the server knows, each with its own answer (one account each).
    others: Vec<(String, Answer)>,
    seen: Vec<Seen>,
    held: Vec<tiny_http::Request>,
}

pub struct FakeWandb {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub port: u16,
    state: Arc<Mutex<State>>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

pub fn basic(key: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("api:{key}"))
    )
}

fn body_is_viewer_query(body: &str) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        return false;
    };
    let q = v["query"].as_str().unwrap_or("");
    v["operationName"] == "Viewer"
        && q.trim_start().starts_with("query Viewer")
        && q.contains("viewer")
        && q.contains("username")
        && q.contains("entity")
        && q.contains("teams")
}

fn respond_json(req: tiny_http::Request, status: u16, body: String) {
    let header =
        tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]).unwrap();
    let resp = tiny_http::Response::from_string(body)
        .with_status_code(status)
        .with_header(header);
    let _ = req.respond(resp);
}

impl FakeWandb {
    /// Answers `on_valid` to requests carrying `valid_key`, `on_invalid` to any other.
    pub fn start(valid_key: &str, on_valid: Answer, on_invalid: Answer) -> FakeWandb {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            valid_key: valid_key.to_owned(),
            on_valid,
            on_invalid,
            others: Vec::new(),
            seen: Vec::new(),
            held: Vec::new(),
        }));
        let thread = {
            let server = server.clone();
            let state = state.clone();
            std::thread::spawn(move || {
                // `incoming_requests` ends when the server is unblocked on drop.
                for mut req in server.incoming_requests() {
                    let mut body = String::new();
                    let _ = req.as_reader().read_to_string(&mut body);
                    let header = |name: &'static str| {
                        req.headers()
                            .iter()
                            .find(|h| h.field.equiv(name))
                            .map(|h| h.value.as_str().to_owned())
                    };
                    let mut st = state.lock().unwrap();
                    let authorization = header("Authorization");
                    let seen = Seen {
                        method: req.method().as_str().to_owned(),
                        path: req.url().to_owned(),
                        key_ok: authorization.as_deref() == Some(basic(&st.valid_key).as_str()),
                        authorization,
                        content_type: header("Content-Type"),
                        body_ok: body_is_viewer_query(&body),
                        key: header("Authorization").as_deref().and_then(key_of),
                        body,
                    };
                    let well_formed =
                        seen.method == "POST" && seen.path == "/graphql" && seen.body_ok;
                    let other = st
                        .others
                        .iter()
                        .find(|(k, _)| seen.key.as_deref() == Some(k.as_str()))
                        .map(|(_, a)| a.clone());
                    let answer = if seen.key_ok {
                        st.on_valid.clone()
                    } else if let Some(a) = other {
                        a
                    } else {
                        st.on_invalid.clone()
                    };
                    st.seen.push(seen);
                    if !well_formed {
                        drop(st);
                        respond_json(
                            req,
                            400,
                            r#"{"errors":[{"message":"not the viewer query"}]}"#.into(),
                        );
                        continue;
                    }
                    match answer {
                        Answer::Viewer {
                            username,
                            entity,
                            teams,
                        } => {
                            drop(st);
                            let edges: Vec<_> = teams
                                .iter()
                                .map(|t| serde_json::json!({"node": {"name": t}}))
                                .collect();
                            let body = serde_json::json!({"data": {"viewer": {
                                "id": "VXNlcjox", "entity": entity, "username": username,
                                "email": format!("{username}@example.com"), "flags": "{}",
                                "teams": {"edges": edges}}}});
                            respond_json(req, 200, body.to_string());
                        }
                        Answer::NullViewer => {
                            drop(st);
                            respond_json(req, 200, r#"{"data":{"viewer":null}}"#.into());
                        }
                        Answer::Status(code) => {
                            drop(st);
                            let body = serde_json::json!({"errors": [{"message": format!("fake server says {code}")}]});
                            respond_json(req, code, body.to_string());
                        }
                        Answer::Hang => st.held.push(req),
                    }
                }
            })
        };
        FakeWandb {
            url: format!("http://127.0.0.1:{port}"),
            port,
            state,
            server,
            thread: Some(thread),
        }
    }

    /// Another key the server knows, answered with `answer` (`viewer` per key: one user each).
    pub fn add_key(&self, key: &str, answer: Answer) {
        self.state
            .lock()
            .unwrap()
            .others
            .push((key.to_owned(), answer));
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

impl Drop for FakeWandb {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.state.lock().unwrap().held.clear();
    }
}
