//! How a credential is named in the keychain: service `<ns>:<protocol>://<host>[/<path>][#<field>]`
//! and the user name, plus the readable label people see in Seahorse or Keychain Access.

use wbl_proto::Target;

/// Which part of a credential an item holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemKind {
    Password,
    OauthRefreshToken,
    PasswordExpiry,
    /// git's `authtype` (not secret, but kept beside the credential it describes).
    Authtype,
    /// git's pre-encoded `credential`.
    PreEncoded,
}

impl ItemKind {
    /// The sibling kinds, in the order their suffixes are tried when parsing.
    pub const EXTRAS: [ItemKind; 4] = [
        ItemKind::OauthRefreshToken,
        ItemKind::PasswordExpiry,
        ItemKind::Authtype,
        ItemKind::PreEncoded,
    ];

    fn suffix(self) -> &'static str {
        match self {
            ItemKind::Password => "",
            ItemKind::OauthRefreshToken => "#oauth_refresh_token",
            ItemKind::PasswordExpiry => "#password_expiry_utc",
            ItemKind::Authtype => "#authtype",
            ItemKind::PreEncoded => "#credential",
        }
    }
}

/// One keychain item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemId {
    pub target: Target,
    pub username: String,
    pub kind: ItemKind,
}

impl ItemId {
    pub fn new(target: Target, username: String, kind: ItemKind) -> Self {
        ItemId {
            target,
            username,
            kind,
        }
    }

    /// The keychain "service" string for this item.
    pub fn service(&self, ns: &str) -> String {
        format!("{ns}:{}{}", self.target, self.kind.suffix())
    }

    /// Parses a service string back; `None` for items of other namespaces or other programs.
    pub fn parse(ns: &str, service: &str, username: &str) -> Option<ItemId> {
        let rest = service.strip_prefix(ns)?.strip_prefix(':')?;
        let (rest, kind) = ItemKind::EXTRAS
            .into_iter()
            .find_map(|k| rest.strip_suffix(k.suffix()).map(|r| (r, k)))
            .unwrap_or((rest, ItemKind::Password));
        let (protocol, rest) = rest.split_once("://")?;
        let (host, path) = match rest.split_once('/') {
            Some((host, path)) => (host, Some(path.to_owned())),
            None => (rest, None),
        };
        if protocol.is_empty() || host.is_empty() {
            return None;
        }
        Some(ItemId {
            target: Target {
                protocol: protocol.to_owned(),
                host: host.to_owned(),
                path,
            },
            username: username.to_owned(),
            kind,
        })
    }

    /// The label shown in keychain UIs.
    pub fn label(&self) -> String {
        let what = match (self.kind, self.username.as_str()) {
            (ItemKind::Password, "api") => "W&B API key".to_owned(),
            (ItemKind::Password, user) => format!("wbl password for {user}"),
            (ItemKind::OauthRefreshToken, user) => format!("wbl OAuth refresh token for {user}"),
            (ItemKind::PasswordExpiry, user) => format!("wbl password expiry for {user}"),
            (ItemKind::Authtype, user) => format!("wbl authentication scheme for {user}"),
            (ItemKind::PreEncoded, "") => "wbl credential".to_owned(),
            (ItemKind::PreEncoded, user) => format!("wbl credential for {user}"),
        };
        match &self.target.path {
            Some(path) => format!("{what} for {}/{path}", self.target.host),
            None => format!("{what} for {}", self.target.host),
        }
    }

    /// A single string naming the item, for stores that have no user attribute (keyutils):
    /// `<ns>:<escaped user>@<service without ns>`. The user name is escaped so it has no `@`.
    pub fn description(&self, ns: &str) -> String {
        let service = self.service(ns);
        let rest = &service[ns.len() + 1..];
        format!("{ns}:{}@{rest}", escape(&self.username))
    }

    /// Inverse of [`ItemId::description`].
    pub fn parse_description(ns: &str, description: &str) -> Option<ItemId> {
        let rest = description.strip_prefix(ns)?.strip_prefix(':')?;
        let (user, service_rest) = rest.split_once('@')?;
        ItemId::parse(ns, &format!("{ns}:{service_rest}"), &unescape(user)?)
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' | '@' => out.push_str(&format!("%{:02X}", c as u32)),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(path: Option<&str>, user: &str, kind: ItemKind) -> ItemId {
        ItemId::new(
            Target {
                protocol: "https".into(),
                host: "h.example:8443".into(),
                path: path.map(Into::into),
            },
            user.into(),
            kind,
        )
    }

    #[test]
    fn service_and_description_round_trip() {
        for i in [
            id(None, "api", ItemKind::Password),
            id(Some("org/repo.git"), "a@b%c", ItemKind::OauthRefreshToken),
            id(None, "ünï\ncode", ItemKind::PasswordExpiry),
            id(Some("p#x"), "", ItemKind::Password),
            id(None, "", ItemKind::PreEncoded),
            id(Some("a/b"), "u", ItemKind::Authtype),
        ] {
            let svc = i.service("wbl");
            assert_eq!(ItemId::parse("wbl", &svc, &i.username), Some(i.clone()));
            let d = i.description("wbl");
            assert_eq!(ItemId::parse_description("wbl", &d), Some(i.clone()), "{d}");
        }
        assert_eq!(
            id(None, "api", ItemKind::Password).service("wbl"),
            "wbl:https://h.example:8443"
        );
    }

    #[test]
    fn other_namespaces_are_ignored() {
        assert_eq!(ItemId::parse("wbl", "wbl-test:https://h", "u"), None);
        assert_eq!(ItemId::parse("wbl", "other", "u"), None);
        assert_eq!(ItemId::parse("wbl", "wbl:nohost", "u"), None);
    }

    #[test]
    fn labels_are_readable() {
        let mut i = id(None, "api", ItemKind::Password);
        i.target.host = "api.wandb.ai".into();
        assert_eq!(i.label(), "W&B API key for api.wandb.ai");
    }
}
