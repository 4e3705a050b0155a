//! Docker's credential-helper protocol (docker/docker-credential-helpers, used by docker,
//! podman, skopeo and buildah): the JSON it exchanges and how a registry's server URL maps onto
//! a keychain target.
//!
//! A registry credential is stored under protocol `docker`, host `host[:port]` and the URL's
//! path, if any (`wbl:docker://registry.example.com:5000` in the keychain). Its own protocol
//! keeps registry passwords apart from git's and W&B's: `list` tells a container tool only the
//! registries, and git is never handed a registry password. The URL's scheme is not part of
//! the key (a registry is the same registry over http and https), as in the helpers'
//! `registryurl.Parse`, which this follows: a URL without `://` is read as `//<url>`, only
//! `http` and `https` are accepted, a host is required and the query is dropped.

use serde::{Deserialize, Serialize};
use wbl_proto::{Secret, Target};

/// The protocol of every registry credential in the keychain.
pub const PROTOCOL: &str = "docker";
/// The user name that marks an identity token (an OAuth refresh token) as the secret.
pub const IDENTITY_TOKEN_USER: &str = "<token>";
/// The helpers' message for a miss; clients compare it verbatim.
pub const NOT_FOUND: &str = "credentials not found in native keychain";
/// The helpers' message for a request without a server URL.
pub const MISSING_SERVER_URL: &str = "no credentials server URL";
/// The helpers' message for a `store` without a user name.
pub const MISSING_USERNAME: &str = "no credentials username";
/// Docker Hub's key, which the docker CLI uses verbatim.
const DOCKER_HUB: &str = "https://index.docker.io/v1/";

/// `store`'s input and `get`'s output. Fields missing from the input are empty, as in Go.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Credentials {
    #[serde(rename = "ServerURL", default)]
    pub server_url: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub secret: Secret,
}

/// Why a server URL was refused. Messages never include the URL's user information.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerUrlError {
    #[error("{MISSING_SERVER_URL}")]
    Missing,
    #[error("unsupported scheme: {0}")]
    Scheme(String),
    #[error("no hostname in URL")]
    NoHost,
    #[error("invalid server URL: {0}")]
    Invalid(String),
}

/// The keychain target of a registry's server URL (`registry.example.com:5000`,
/// `https://index.docker.io/v1/`, `quay.io/namespace`).
pub fn target(server_url: &str) -> Result<Target, ServerUrlError> {
    let raw = server_url.trim();
    if raw.is_empty() {
        return Err(ServerUrlError::Missing);
    }
    let with_scheme = match raw.split_once("://") {
        Some((scheme, _)) if scheme != "http" && scheme != "https" => {
            return Err(ServerUrlError::Scheme(scheme.to_owned()));
        }
        Some(_) => raw.to_owned(),
        None => format!("https://{}", raw.trim_start_matches("//")),
    };
    let url = url::Url::parse(&with_scheme).map_err(|e| match e {
        url::ParseError::EmptyHost => ServerUrlError::NoHost,
        e => ServerUrlError::Invalid(e.to_string()),
    })?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or(ServerUrlError::NoHost)?;
    let host = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let path = url.path().trim_matches('/');
    Ok(Target {
        protocol: PROTOCOL.to_owned(),
        host,
        path: (!path.is_empty()).then(|| path.to_owned()),
    })
}

/// The server URL `list` reports for a registry target: `host[:port][/path]`, and Docker
/// Hub's key as the docker CLI spells it. `target(server_url(t)) == t`.
pub fn server_url(target: &Target) -> String {
    match &target.path {
        Some(path) => {
            let url = format!("{}/{path}", target.host);
            if format!("https://{url}/") == DOCKER_HUB {
                DOCKER_HUB.to_owned()
            } else {
                url
            }
        }
        None => target.host.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(host: &str, path: Option<&str>) -> Target {
        Target {
            protocol: PROTOCOL.into(),
            host: host.into(),
            path: path.map(str::to_owned),
        }
    }

    #[test]
    fn server_urls_map_onto_targets() {
        assert_eq!(target("127.0.0.1:5000").unwrap(), t("127.0.0.1:5000", None));
        assert_eq!(
            target(" localhost:5000\n").unwrap(),
            t("localhost:5000", None)
        );
        assert_eq!(
            target("http://Reg.Example:80/").unwrap(),
            t("reg.example", None)
        );
        assert_eq!(
            target("https://index.docker.io/v1/").unwrap(),
            t("index.docker.io", Some("v1"))
        );
        assert_eq!(target("quay.io/ns?x=1").unwrap(), t("quay.io", Some("ns")));
        assert_eq!(target("//ghcr.io").unwrap(), t("ghcr.io", None));
        assert_eq!(target(""), Err(ServerUrlError::Missing));
        assert_eq!(
            target("ftp://h").unwrap_err().to_string(),
            "unsupported scheme: ftp"
        );
        assert!(target("https://").is_err());
    }

    #[test]
    fn list_urls_round_trip() {
        for url in [
            "127.0.0.1:5000",
            "https://index.docker.io/v1/",
            "quay.io/ns",
            "ghcr.io",
        ] {
            let target = target(url).unwrap();
            assert_eq!(server_url(&target), url);
            assert_eq!(super::target(&server_url(&target)).unwrap(), target);
        }
    }

    #[test]
    fn json_is_the_helpers_format() {
        let c: Credentials =
            serde_json::from_str(r#"{"ServerURL":"h","Username":"u","Secret":"s","X":1}"#).unwrap();
        assert_eq!(
            (
                c.server_url.as_str(),
                c.username.as_str(),
                c.secret.expose()
            ),
            ("h", "u", "s")
        );
        let c: Credentials = serde_json::from_str("{}").unwrap();
        assert!(c.server_url.is_empty() && c.username.is_empty());
        assert_eq!(
            serde_json::to_string(&Credentials {
                server_url: "h".into(),
                username: "u".into(),
                secret: Secret::from("s"),
            })
            .unwrap(),
            r#"{"ServerURL":"h","Username":"u","Secret":"s"}"#
        );
    }
}
