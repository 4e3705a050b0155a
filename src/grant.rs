//! The hosts a forward (`wbl ssh`) can be granted: the one grammar of `--allow`, used by
//! `wbl ssh` to parse it and by the agent to suggest an `--allow` in a refusal — so a
//! suggestion is always one `wbl ssh` accepts.

use wbl_proto::Target;

use crate::wandb::host::{HostError, HostUrl};
use crate::wandb::resolver::keychain_target;

/// A host named by `--allow`: a URL (`https://git.example.com`) or a bare host name (https),
/// by the rules of a W&B host address (`HostUrl::parse`: http or https, no user info, ...).
pub fn allowed_target(text: &str) -> Result<Target, HostError> {
    Ok(keychain_target(&HostUrl::parse_host_or_url(text)?))
}

/// What to tell the user who wants a forward to answer for `target`: the `--allow` value that
/// grants exactly it, or why `wbl ssh` cannot grant it.
pub fn allow_hint(target: &Target) -> Result<String, String> {
    let text = format!("{}://{}", target.protocol, target.host);
    if !["http", "https"]
        .iter()
        .any(|p| target.protocol.eq_ignore_ascii_case(p))
    {
        return Err(format!(
            "`wbl ssh --allow` grants http and https hosts only, not {}",
            target.protocol
        ));
    }
    match allowed_target(&text) {
        Ok(t)
            if t.protocol.eq_ignore_ascii_case(&target.protocol)
                && t.host.eq_ignore_ascii_case(&target.host) =>
        {
            Ok(text)
        }
        Ok(t) => Err(format!(
            "`wbl ssh --allow` would take that address as {}://{}, another host",
            t.protocol, t.host
        )),
        Err(e) => Err(format!("`wbl ssh --allow` does not take that address: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hint_is_accepted_by_allow_and_grants_that_very_host() {
        for (protocol, host) in [
            ("https", "git.example.com"),
            ("http", "h.test:8080"),
            ("https", "api.wandb.ai"),
            ("HTTPS", "Git.Example.com"),
            ("smtp", "mail.example.com"),
            ("imap", "mail.example.com"),
            ("http", "api.wandb.ai"),
            ("https", "wandb.ai"),
            ("https", "bad host"),
            ("https", "forge.coreweave.com"),
        ] {
            let target = Target::new(protocol, host);
            match allow_hint(&target) {
                Ok(value) => {
                    let granted = allowed_target(&value)
                        .unwrap_or_else(|e| panic!("hint {value} refused by --allow: {e}"));
                    assert!(
                        granted.protocol.eq_ignore_ascii_case(protocol)
                            && granted.host.eq_ignore_ascii_case(host),
                        "{value} grants {granted}, not {target}"
                    );
                }
                Err(why) => {
                    assert!(why.contains("wbl ssh --allow"), "{why}");
                    let tried = allowed_target(&format!("{protocol}://{host}"));
                    assert!(
                        tried.is_err() || !tried.unwrap().host.eq_ignore_ascii_case(host),
                        "{target}: no hint although --allow takes it"
                    );
                }
            }
        }
        assert_eq!(
            allow_hint(&Target::new("https", "git.example.com")).unwrap(),
            "https://git.example.com"
        );
        assert!(allow_hint(&Target::new("smtp", "mail.example.com")).is_err());
    }
}
