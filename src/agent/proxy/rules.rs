//! What a request to a proxy must carry and where it may go: the placeholder in the SDK's
//! `Authorization: Basic base64("api:" + key)` (compared in constant time), and a path of the
//! W&B API.

use base64::Engine;

/// How every placeholder starts; 64 hex digits (256 random bits) follow. It passes the SDK's
/// key check (word characters after an optional `prefix-`) and `wbl scan` can tell it apart.
pub const PLACEHOLDER_PREFIX: &str = "wblproxy-";

/// The paths the SDK uses (found by running wandb 0.31.0 through the proxy): exact ones, then
/// prefixes.
const EXACT: &[&str] = &["/graphql"];
const PREFIXES: &[&str] = &[
    // Run files and `file_stream` (`/files/<entity>/<project>/<run>/file_stream`).
    "/files/",
    // Artifact manifests and files served by the API (`/artifacts/<entity>/<digest>`,
    // `/artifactsV2/...`).
    "/artifacts/",
    "/artifactsV2/",
    // The REST API (`/api/v1/...`) and Weave's trace server.
    "/api/",
    "/traces/",
];

/// Why a request was refused; its `code` in the access log and the status it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No placeholder, or another one: 401.
    Placeholder,
    /// A path off the allow-list: 403.
    Path,
    /// The grant ended (the command exited, the session closed, the TTL passed): 401, also
    /// during a loopback listener's grace after the end.
    Ended,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Placeholder => "placeholder",
            Refusal::Path => "path",
            Refusal::Ended => "ended",
        }
    }

    /// The refusal whose [`Refusal::code`] this is.
    pub fn from_code(code: &str) -> Option<Refusal> {
        [Refusal::Placeholder, Refusal::Path, Refusal::Ended]
            .into_iter()
            .find(|r| r.code() == code)
    }

    pub fn status(self) -> u16 {
        match self {
            Refusal::Placeholder | Refusal::Ended => 401,
            Refusal::Path => 403,
        }
    }

    /// The body the refused client gets (JSON, as the SDK shows a server's error message).
    pub fn body(self) -> String {
        let message = match self {
            Refusal::Placeholder => {
                "wbl proxy: this request does not carry the placeholder key of this proxy \
                 (run the program under `wbl exec --proxy` or `wbl ssh --proxy`, which set \
                 WANDB_API_KEY to it)"
            }
            Refusal::Path => "wbl proxy: this path is not part of the W&B API the proxy serves",
            Refusal::Ended => {
                "wbl proxy: the run this proxy served has ended (its command exited, its \
                 session closed or its --ttl passed) and its placeholder key no longer works; \
                 start a new one with `wbl exec --proxy` or `wbl ssh --proxy`"
            }
        };
        error_json(message)
    }
}

/// A body the proxy answers with itself: the message where the SDK shows a server's error
/// (GraphQL's `errors`, REST's `error`).
pub fn error_json(message: &str) -> String {
    serde_json::json!({"errors": [{"message": message}], "error": message}).to_string()
}

/// Whether `authorization` is `Basic base64(USER:placeholder)` (any user name; the SDK sends
/// `api`). The comparison takes the same time wherever the first difference is.
pub fn carries(authorization: Option<&[u8]>, placeholder: &str) -> bool {
    let Some(value) = authorization else {
        return false;
    };
    let Some(b64) = value.strip_prefix(b"Basic ") else {
        return false;
    };
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim_ascii()) else {
        return false;
    };
    let raw = zeroize::Zeroizing::new(raw);
    let Some(colon) = raw.iter().position(|&b| b == b':') else {
        return false;
    };
    constant_time_eq(&raw[colon + 1..], placeholder.as_bytes())
}

/// Equal bytes, without an early exit (the length is not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Whether `path` (without the query) is one the SDK uses, with no `.`/`..` segment or
/// encoded dot or slash that could leave the upstream's path prefix.
pub fn allowed_path(path: &str) -> bool {
    if !path.starts_with('/') || path.contains('\\') {
        return false;
    }
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2e") || lower.contains("%2f") || lower.contains("%5c") {
        return false;
    }
    if path.split('/').any(|s| s == "." || s == "..") {
        return false;
    }
    EXACT.contains(&path) || PREFIXES.iter().any(|p| path.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_pass: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
        .into_bytes()
    }

    #[test]
    fn only_the_placeholder_opens() {
        let p = "wblproxy-00ff";
        assert!(carries(Some(&basic("api:wblproxy-00ff")), p));
        assert!(!carries(Some(&basic("api:wblproxy-00fe")), p));
        assert!(!carries(Some(&basic("api:wblproxy-00ff0")), p));
        assert!(!carries(Some(&basic("wblproxy-00ff")), p));
        assert!(!carries(Some(b"Bearer wblproxy-00ff"), p));
        assert!(!carries(Some(b"Basic !!"), p));
        assert!(!carries(None, p));
    }

    #[test]
    fn the_api_paths_and_nothing_else() {
        for ok in [
            "/graphql",
            "/files/e/p/r/file_stream",
            "/api/v1/x",
            "/artifacts/e/abc",
            "/traces/call/start",
        ] {
            assert!(allowed_path(ok), "{ok}");
        }
        for bad in [
            "/",
            "/graphql2",
            "/admin",
            "/files/../admin",
            "/files/%2e%2e/admin",
            "/files/a%2Fb",
            "graphql",
            "/files\\x",
        ] {
            assert!(!allowed_path(bad), "{bad}");
        }
    }
}
