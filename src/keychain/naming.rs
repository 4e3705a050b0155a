//! How a credential is named in the keychain: service `<ns>:<protocol>://<host>[/<path>][#<field>]`
//! and the user name, plus the readable label people see in Seahorse or Keychain Access.
//!
//! Each part is escaped (`%XX`) for the characters the name uses as separators — `%` and `#`
//! everywhere, `/` in the host, `:` and `/` in the protocol, control characters — so no host,
//! path or user name can produce another credential's name (git percent-decodes URLs, so a
//! host may hold any of them). Names of ordinary hosts are unchanged. Items written before the
//! escaping ("legacy" names) are recognised when listed and renamed by `Keychain::list`.

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
    /// Named the way wbl named items before the escaping: `service`/`description` give that
    /// name (so the old item can be read and removed). Only listing sets it.
    pub legacy: bool,
}

impl ItemId {
    pub fn new(target: Target, username: String, kind: ItemKind) -> Self {
        ItemId {
            target,
            username,
            kind,
            legacy: false,
        }
    }

    /// The same item under its escaped name.
    pub fn renamed(&self) -> ItemId {
        ItemId {
            legacy: false,
            ..self.clone()
        }
    }

    /// The keychain "service" string for this item.
    pub fn service(&self, ns: &str) -> String {
        if self.legacy {
            return format!("{ns}:{}{}", self.target, self.kind.suffix());
        }
        let t = &self.target;
        let mut out = format!(
            "{ns}:{}://{}",
            escape_part(&t.protocol, ":/"),
            escape_part(&t.host, "/")
        );
        if let Some(path) = &t.path {
            out.push('/');
            out.push_str(&escape_part(path, ""));
        }
        out.push_str(self.kind.suffix());
        out
    }

    /// Parses a service string back; `None` for items of other namespaces or other programs.
    /// A name that is not a valid escaped name but was a valid name before the escaping is
    /// returned with `legacy` set.
    pub fn parse(ns: &str, service: &str, username: &str) -> Option<ItemId> {
        let rest = service.strip_prefix(ns)?.strip_prefix(':')?;
        Self::parse_escaped(rest, username).or_else(|| {
            Self::parse_legacy(rest, username).map(|mut id| {
                id.legacy = true;
                id
            })
        })
    }

    /// The escaped form: `#` only before a known field, `%` only as `%XX`.
    fn parse_escaped(rest: &str, username: &str) -> Option<ItemId> {
        let (rest, kind) = match rest.split_once('#') {
            None => (rest, ItemKind::Password),
            Some((r, field)) => {
                let kind = ItemKind::EXTRAS
                    .into_iter()
                    .find(|k| &k.suffix()[1..] == field)?;
                (r, kind)
            }
        };
        let (protocol, rest) = rest.split_once("://")?;
        let (host, path) = match rest.split_once('/') {
            Some((host, path)) => (host, Some(unescape(path)?)),
            None => (rest, None),
        };
        if protocol.is_empty() || host.is_empty() || protocol.contains('/') {
            return None;
        }
        Some(ItemId::new(
            Target {
                protocol: unescape(protocol)?,
                host: unescape(host)?,
                path,
            },
            username.to_owned(),
            kind,
        ))
    }

    /// The rule before the escaping (kept to read and rename old items).
    fn parse_legacy(rest: &str, username: &str) -> Option<ItemId> {
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
        Some(ItemId::new(
            Target {
                protocol: protocol.to_owned(),
                host: host.to_owned(),
                path,
            },
            username.to_owned(),
            kind,
        ))
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

/// Escapes `%`, `#`, control characters and the characters of `also` in one part of a name.
fn escape_part(s: &str, also: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' | '#' => out.push_str(&format!("%{:02X}", c as u32)),
            c if also.contains(c) => out.push_str(&format!("%{:02X}", c as u32)),
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
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
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

    fn target(host: &str, path: Option<&str>) -> Target {
        Target {
            protocol: "https".into(),
            host: host.into(),
            path: path.map(Into::into),
        }
    }

    #[test]
    fn no_host_path_or_user_name_collides_with_another_item() {
        // The names of issue 12: git percent-decodes `git.corp%23password_expiry_utc` and
        // `git.corp%2Fx` into hosts that used to produce git.corp's own item names.
        let own = [
            ItemId::new(target("git.corp", None), "alice".into(), ItemKind::Password),
            ItemId::new(
                target("git.corp", None),
                "alice".into(),
                ItemKind::PasswordExpiry,
            ),
            ItemId::new(
                target("git.corp", Some("x/r")),
                "alice".into(),
                ItemKind::Password,
            ),
        ];
        let hostile = [
            ItemId::new(
                target("git.corp#password_expiry_utc", None),
                "alice".into(),
                ItemKind::Password,
            ),
            ItemId::new(
                target("git.corp/x", Some("r")),
                "alice".into(),
                ItemKind::Password,
            ),
            ItemId::new(
                target("git.corp", Some("x/r#password_expiry_utc")),
                "alice".into(),
                ItemKind::Password,
            ),
            ItemId::new(
                target("git.corp%2Fx", Some("r")),
                "alice".into(),
                ItemKind::Password,
            ),
            ItemId::new(
                Target {
                    protocol: "https://git.corp".into(),
                    host: "x".into(),
                    path: None,
                },
                "alice".into(),
                ItemKind::Password,
            ),
        ];
        for h in &hostile {
            let (svc, d) = (h.service("wbl"), h.description("wbl"));
            for o in &own {
                assert_ne!(svc, o.service("wbl"), "{h:?}");
                assert_ne!(d, o.description("wbl"), "{h:?}");
            }
            assert_eq!(
                ItemId::parse("wbl", &svc, "alice"),
                Some(h.clone()),
                "{svc}"
            );
            assert_eq!(ItemId::parse_description("wbl", &d), Some(h.clone()), "{d}");
        }
        // Ordinary hosts keep the names they always had.
        assert_eq!(own[2].service("wbl"), "wbl:https://git.corp/x/r");
        assert_eq!(
            own[1].service("wbl"),
            "wbl:https://git.corp#password_expiry_utc"
        );
    }

    #[test]
    fn names_from_before_the_escaping_are_read_as_legacy() {
        // Before: a host with `%` or `#` in it was written as it is.
        let parsed = ItemId::parse("wbl", "wbl:https://a%zz#b", "u").unwrap();
        assert!(parsed.legacy);
        assert_eq!(parsed.target.host, "a%zz#b");
        assert_eq!(parsed.service("wbl"), "wbl:https://a%zz#b");
        let renamed = parsed.renamed();
        assert_eq!(renamed.service("wbl"), "wbl:https://a%25zz%23b");
        assert_eq!(
            ItemId::parse("wbl", &renamed.service("wbl"), "u"),
            Some(renamed)
        );
        // A valid escaped name is never legacy.
        assert!(
            !ItemId::parse("wbl", "wbl:https://h#authtype", "u")
                .unwrap()
                .legacy
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
