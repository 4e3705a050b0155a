//! A fuller stand-in W&B server for runs (`wandb.init`, `run.log`, `run.finish`) and the public
//! API: GraphQL (`viewer`, `upsertBucket`, `serverInfo`, `createRunFiles`, run files), the run's
//! `file_stream`, and a "signed URL" upload endpoint on a second port that takes no key, as
//! cloud storage does. Each request is handled on its own thread (`file_stream` and uploads
//! overlap) and recorded with its Authorization header, so a test can check that only the
//! real key arrived.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Hit {
    /// `api` or `upload` (the second port).
    pub port: &'static str,
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    /// The key of a `Basic base64("api:KEY")` header.
    pub key: Option<String>,
    /// The GraphQL operation, or the first 4 KiB of another body.
    pub summary: String,
    pub body_len: usize,
}

#[derive(Default)]
struct Log {
    hits: Vec<Hit>,
    /// Every history line `file_stream` received (JSON text).
    history: Vec<String>,
    /// Names of files uploaded to the signed URLs.
    uploaded: Vec<String>,
    /// A file_stream request marked the run complete.
    completed: bool,
}

pub struct FakeApi {
    /// `http://127.0.0.1:PORT` (the API).
    pub url: String,
    /// `http://127.0.0.1:PORT` (the signed-URL uploads).
    pub upload_url: String,
    log: Arc<Mutex<Log>>,
    servers: Vec<Arc<tiny_http::Server>>,
    threads: Vec<JoinHandle<()>>,
}

fn json_response(status: u16, body: String) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let header =
        tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]).unwrap();
    tiny_http::Response::from_string(body)
        .with_status_code(status)
        .with_header(header)
}

impl FakeApi {
    /// Starts both ports; `username` is the viewer of every request carrying `key`.
    pub fn start(key: &str, username: &'static str) -> FakeApi {
        let api = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let up = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let url = format!(
            "http://127.0.0.1:{}",
            api.server_addr().to_ip().unwrap().port()
        );
        let upload_url = format!(
            "http://127.0.0.1:{}",
            up.server_addr().to_ip().unwrap().port()
        );
        let log = Arc::new(Mutex::new(Log::default()));
        let key = key.to_owned();
        let mut threads = Vec::new();
        for (server, port) in [(api.clone(), "api"), (up.clone(), "upload")] {
            let log = log.clone();
            let key = key.clone();
            let upload_url = upload_url.clone();
            let api_url = url.clone();
            threads.push(std::thread::spawn(move || {
                for req in server.incoming_requests() {
                    let log = log.clone();
                    let key = key.clone();
                    let upload_url = upload_url.clone();
                    let api_url = api_url.clone();
                    std::thread::spawn(move || {
                        handle(req, port, &log, &key, username, &upload_url, &api_url)
                    });
                }
            }));
        }
        FakeApi {
            url,
            upload_url,
            log,
            servers: vec![api, up],
            threads,
        }
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.log.lock().unwrap().hits.clone()
    }

    pub fn history(&self) -> Vec<String> {
        self.log.lock().unwrap().history.clone()
    }

    pub fn uploaded(&self) -> Vec<String> {
        self.log.lock().unwrap().uploaded.clone()
    }

    pub fn completed(&self) -> bool {
        self.log.lock().unwrap().completed
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        for s in &self.servers {
            s.unblock();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn handle(
    mut req: tiny_http::Request,
    port: &'static str,
    log: &Mutex<Log>,
    key: &str,
    username: &str,
    upload_url: &str,
    api_url: &str,
) {
    let mut body = Vec::with_capacity(req.body_length().unwrap_or(0).min(1 << 30));
    let _ = req.as_reader().read_to_end(&mut body);
    let authorization = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let path = req.url().to_owned();
    let text = String::from_utf8_lossy(&body);
    let gql: Option<serde_json::Value> = (path == "/graphql")
        .then(|| serde_json::from_str(&text).ok())
        .flatten();
    let summary = match &gql {
        Some(v) => v["operationName"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| {
                v["query"]
                    .as_str()
                    .unwrap_or("")
                    .chars()
                    .take(200)
                    .collect()
            }),
        None => text.chars().take(4096).collect(),
    };
    let key_ok = authorization.as_deref() == Some(super::basic(key).as_str());
    log.lock().unwrap().hits.push(Hit {
        port,
        method: method.clone(),
        path: path.clone(),
        key: authorization.as_deref().and_then(super::key_of),
        authorization: authorization.clone(),
        summary,
        body_len: body.len(),
    });
    if port == "upload" {
        let name = path.rsplit('/').next().unwrap_or("").to_owned();
        log.lock().unwrap().uploaded.push(name);
        let _ = req.respond(tiny_http::Response::empty(200));
        return;
    }
    if !key_ok {
        let _ = req.respond(json_response(
            401,
            r#"{"errors":[{"message":"user is not logged in"}]}"#.into(),
        ));
        return;
    }
    if path.starts_with("/files/") && path.ends_with("/file_stream") {
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let mut l = log.lock().unwrap();
        if let Some(lines) = v["files"]["wandb-history.jsonl"]["content"].as_array() {
            l.history
                .extend(lines.iter().filter_map(|x| x.as_str().map(str::to_owned)));
        }
        if v["complete"] == true {
            l.completed = true;
        }
        drop(l);
        let _ = req.respond(json_response(
            200,
            r#"{"exitcode":null,"limits":{}}"#.into(),
        ));
        return;
    }
    if path.starts_with("/files/") && (method == "PUT" || method == "POST") {
        // A run file uploaded to the API itself (as local servers take them): its size.
        let _ = req.respond(json_response(
            200,
            format!("{{\"received\":{}}}", body.len()),
        ));
        return;
    }
    if path.starts_with("/files/") && method == "GET" {
        // A run file served by the API itself (local servers): its contents.
        let _ = req.respond(tiny_http::Response::from_string("file contents\n"));
        return;
    }
    let Some(v) = gql else {
        let _ = req.respond(json_response(
            404,
            r#"{"errors":[{"message":"not found"}]}"#.into(),
        ));
        return;
    };
    let query = v["query"].as_str().unwrap_or("");
    let vars = &v["variables"];
    let data = graphql(query, vars, username, upload_url, api_url);
    let _ = req.respond(json_response(
        200,
        serde_json::json!({ "data": data }).to_string(),
    ));
}

/// The answer to one GraphQL document: every field the SDK's queries here ask for, filled in.
fn graphql(
    query: &str,
    vars: &serde_json::Value,
    username: &str,
    upload_url: &str,
    api_url: &str,
) -> serde_json::Value {
    use serde_json::json;
    let entity = vars["entity"]
        .as_str()
        .or_else(|| vars["entityName"].as_str())
        .unwrap_or(username)
        .to_owned();
    let project = vars["project"]
        .as_str()
        .or_else(|| vars["projectName"].as_str())
        .or_else(|| vars["modelName"].as_str())
        .unwrap_or("uncategorized")
        .to_owned();
    let run = vars["name"]
        .as_str()
        .or_else(|| vars["run"].as_str())
        .or_else(|| vars["runName"].as_str())
        .unwrap_or("run1")
        .to_owned();
    let mut data = serde_json::Map::new();
    if query.contains("viewer") {
        data.insert(
            "viewer".into(),
            json!({"id": "VXNlcjox", "name": username, "entity": username,
                   "username": username, "email": format!("{username}@example.com"),
                   "flags": "{}", "admin": false, "deletedAt": null,
                   "apiKeys": {"edges": []}, "teams": {"edges": []}}),
        );
    }
    if query.contains("serverInfo") {
        data.insert(
            "serverInfo".into(),
            json!({"cliVersionInfo": {}, "latestLocalVersionInfo": null, "features": [],
                   "defaultEntity": null}),
        );
    }
    if query.contains("upsertBucket") {
        data.insert(
            "upsertBucket".into(),
            json!({"inserted": true, "bucket": {
                "id": "UnVuOjE=", "name": run, "displayName": run, "description": "",
                "config": "{}", "sweepName": null, "historyLineCount": 0,
                "project": {"id": "UHJvamVjdDox", "name": project,
                            "entity": {"id": "RW50aXR5OjE=", "name": entity}}}}),
        );
    }
    if query.contains("createRunFiles") {
        let files: Vec<_> = vars["files"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str())
                    .map(|f| json!({"name": f, "uploadUrl": format!("{upload_url}/upload/{f}")}))
                    .collect()
            })
            .unwrap_or_default();
        data.insert(
            "createRunFiles".into(),
            json!({"runID": "UnVuOjE=", "uploadHeaders": [], "files": files}),
        );
    }
    if query.contains("project(") && !query.contains("upsertBucket") {
        data.insert(
            "project".into(),
            json!({"id": "UHJvamVjdDox", "name": project, "entityName": entity,
                   "run": {"id": "UnVuOjE=", "name": run, "displayName": run, "state": "finished",
                           "config": "{}", "summaryMetrics": "{}", "systemMetrics": "{}",
                           "files": {"pageInfo": {"hasNextPage": false, "endCursor": null},
                                     "edges": [{"node": {"id": "RmlsZTox", "name": "out.txt",
                                        "url": format!("{api_url}/files/{entity}/{project}/{run}/out.txt"),
                                        "directUrl": format!("{api_url}/files/{entity}/{project}/{run}/out.txt"),
                                        "sizeBytes": 14, "mimetype": "text/plain",
                                        "updatedAt": "2026-01-01T00:00:00", "md5": "x"}}]}}}),
        );
    }
    serde_json::Value::Object(data)
}
