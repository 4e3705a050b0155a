//! KV version 2 secrets: read, write (keeping fields wbl does not know), delete.

use serde::Deserialize;
use wbl_proto::Secret;
use zeroize::{Zeroize, Zeroizing};

use super::{BaoError, Client, Method, Reason, encode_path};

/// The fields wbl uses in a secret: `password` (the key) and `username`.
#[derive(Debug, Clone)]
pub struct KvSecret {
    pub password: Secret,
    pub username: Option<String>,
}

#[derive(Deserialize)]
struct ReadBody {
    data: Option<ReadData>,
}

#[derive(Deserialize)]
struct ReadData {
    data: Option<Fields>,
}

#[derive(Deserialize)]
struct Fields {
    password: Option<Secret>,
    username: Option<String>,
}

/// Wipes every string of a JSON value (they may be secrets of the team's).
fn wipe(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(a) => a.iter_mut().for_each(wipe),
        serde_json::Value::Object(o) => o.values_mut().for_each(wipe),
        _ => {}
    }
}

impl Client {
    /// Reads `mount/path`. A secret without a `password` string is an error saying so.
    pub fn kv_read(&self, token: &Secret, mount: &str, path: &str) -> Result<KvSecret, BaoError> {
        let action = format!("reading {mount}/{path}");
        let url = format!("{mount}/data/{}", encode_path(path));
        let answer = self
            .call(Method::Get, &url, Some(token), None)
            .map_err(|r| self.error(&action, r))?;
        if !answer.ok() {
            return Err(self.error(&action, answer.reason()));
        }
        let body: ReadBody = serde_json::from_slice(&answer.body).map_err(|_| {
            self.error(
                &action,
                Reason::Server(
                    answer.status,
                    "the secret is not a KV v2 secret with a string `password` field".into(),
                ),
            )
        })?;
        // A deleted version answers 404 in KV v2; `data: null` is the same thing.
        let fields = body
            .data
            .and_then(|d| d.data)
            .ok_or_else(|| self.error(&action, Reason::NotFound))?;
        let password = fields.password.filter(|p| !p.is_empty()).ok_or_else(|| {
            self.error(
                &action,
                Reason::Server(answer.status, "the secret has no `password` field".into()),
            )
        })?;
        Ok(KvSecret {
            password,
            username: fields.username.filter(|u| !u.is_empty()),
        })
    }

    /// Writes `password` and `username` to `mount/path`, keeping the secret's other fields
    /// when the token may read them.
    pub fn kv_write(
        &self,
        token: &Secret,
        mount: &str,
        path: &str,
        username: &str,
        password: &Secret,
    ) -> Result<(), BaoError> {
        let action = format!("writing {mount}/{path}");
        let url = format!("{mount}/data/{}", encode_path(path));
        let mut data = serde_json::Map::new();
        // Keep what else the team stores there.
        if let Ok(answer) = self.call(Method::Get, &url, Some(token), None)
            && answer.ok()
            && let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&answer.body)
        {
            if let Some(serde_json::Value::Object(old)) = v
                .get_mut("data")
                .and_then(|d| d.get_mut("data"))
                .map(std::mem::take)
            {
                data = old;
            }
            wipe(&mut v);
        }
        let mut replaced = [
            data.insert("password".into(), password.expose().into()),
            data.insert("username".into(), username.into()),
        ];
        replaced.iter_mut().flatten().for_each(wipe);
        let mut body = serde_json::json!({ "data": data });
        let bytes = Zeroizing::new(serde_json::to_vec(&body).unwrap_or_default());
        wipe(&mut body);
        let answer = self
            .call(Method::Post, &url, Some(token), Some(&bytes))
            .map_err(|r| self.error(&action, r))?;
        if !answer.ok() {
            return Err(self.error(&action, answer.reason()));
        }
        Ok(())
    }

    /// Deletes the latest version of `mount/path` (KV v2 soft delete: reads then answer "not
    /// found"; an operator can still undelete it).
    pub fn kv_delete(&self, token: &Secret, mount: &str, path: &str) -> Result<(), BaoError> {
        let action = format!("deleting {mount}/{path}");
        let url = format!("{mount}/data/{}", encode_path(path));
        let answer = self
            .call(Method::Delete, &url, Some(token), None)
            .map_err(|r| self.error(&action, r))?;
        if !answer.ok() && answer.status != 404 {
            return Err(self.error(&action, answer.reason()));
        }
        Ok(())
    }
}
