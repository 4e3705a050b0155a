//! The agent's logic against the in-memory backend: cache coherence, store and erase ordering,
//! sibling items, keychain timeouts and failures. In-process, in milliseconds; the same
//! behaviour against real keychains is covered end to end in `tests/`.

use std::sync::Arc;
use std::time::Duration;

use wbl_proto::{Credential, Query, Secret, Target};

use super::{KeychainStore, StoreError, Stored};
use crate::agent::Limits;
use crate::keychain::memory::{MemoryBackend, Op};
use crate::keychain::{ItemId, ItemKind, Keychain};

/// How long a test waits for something that should happen at once (never reached when the
/// test passes).
const PATIENCE: Duration = Duration::from_secs(10);

fn state_on(mem: &MemoryBackend) -> KeychainStore {
    state_with(mem, Limits::default())
}

fn state_with(mem: &MemoryBackend, limits: Limits) -> KeychainStore {
    KeychainStore::new(Keychain::new(Box::new(mem.clone())), &limits)
}

fn short_keychain_timeout() -> Limits {
    Limits {
        keychain: Duration::from_millis(50),
        ..Limits::default()
    }
}

fn target(host: &str) -> Target {
    Target::new("https", host)
}

fn query(host: &str, user: Option<&str>) -> Query {
    Query {
        target: target(host),
        username: user.map(str::to_owned),
        account: Default::default(),
    }
}

fn cred(host: &str, user: &str, password: &str) -> Credential {
    Credential::new(target(host), user, Secret::from(password))
}

fn item(host: &str, user: &str, kind: ItemKind) -> ItemId {
    ItemId::new(target(host), user.into(), kind)
}

fn password(c: Option<Credential>) -> Option<String> {
    c.map(|c| c.password.expose().to_owned())
}

/// Waits on a blocking thread until `n` backend calls are blocked on a hold.
async fn blocked(mem: &MemoryBackend, n: usize) {
    let mem = mem.clone();
    let waited = tokio::time::timeout(
        PATIENCE,
        tokio::task::spawn_blocking(move || mem.wait_blocked(n)),
    )
    .await;
    assert!(matches!(waited, Ok(Ok(()))), "no call reached the keychain");
}

#[tokio::test]
async fn a_warm_get_never_touches_the_keychain() {
    let mem = MemoryBackend::new();
    let state = state_on(&mem);
    state.store(cred("h", "api", "k1")).await.unwrap();
    let calls = mem.calls().len();
    for _ in 0..3 {
        let got = state.get(&query("h", None)).await.unwrap();
        assert_eq!(password(got), Some("k1".into()));
        // Known absent: answered from the index, too.
        assert_eq!(state.get(&query("other", None)).await.unwrap(), None);
    }
    assert_eq!(mem.calls().len(), calls);
    assert_eq!(state.counts(), (1, 1));
}

#[tokio::test]
async fn a_new_agent_reads_the_index_once_and_each_credential_once() {
    let mem = MemoryBackend::new();
    mem.put(item("h", "git", ItemKind::Password), "pw");
    mem.put(item("h", "git", ItemKind::Authtype), "Bearer");
    mem.put(item("h", "git", ItemKind::PreEncoded), "tok");
    mem.put(item("h", "git", ItemKind::OauthRefreshToken), "refresh");
    mem.put(item("h", "git", ItemKind::PasswordExpiry), "4000000000");
    mem.put(item("h2", "api", ItemKind::Password), "key");
    let state = state_on(&mem);
    state.preload().await;
    assert_eq!(mem.calls(), [Op::List]);
    assert_eq!(state.counts(), (0, 2));
    let got = state.get(&query("h", None)).await.unwrap().unwrap();
    assert_eq!(got.password.expose(), "pw");
    assert_eq!(got.authtype.as_deref(), Some("Bearer"));
    assert_eq!(got.credential.as_ref().map(|s| s.expose()), Some("tok"));
    assert_eq!(
        got.oauth_refresh_token.as_ref().map(|s| s.expose()),
        Some("refresh")
    );
    assert_eq!(got.password_expiry_utc, Some(4_000_000_000));
    // The password item and the four sibling items the index listed: one load each.
    assert_eq!(mem.calls().iter().filter(|&&o| o == Op::Load).count(), 5);
    let calls = mem.calls().len();
    assert_eq!(
        state.get(&query("h", Some("git"))).await.unwrap(),
        Some(got)
    );
    assert_eq!(mem.calls().len(), calls);
    // A plain key costs one load.
    let key = state.get(&query("h2", Some("api"))).await.unwrap();
    assert_eq!(password(key), Some("key".into()));
    assert_eq!(mem.calls().len(), calls + 1);
}

#[tokio::test]
async fn a_new_password_removes_the_old_sibling_items() {
    let mem = MemoryBackend::new();
    let state = state_on(&mem);
    let mut full = cred("h", "git", "old");
    full.oauth_refresh_token = Some(Secret::from("refresh"));
    full.password_expiry_utc = Some(4_000_000_000);
    full.authtype = Some("Basic".into());
    state.store(full).await.unwrap();
    assert_eq!(mem.items().len(), 4);
    state.store(cred("h", "git", "new")).await.unwrap();
    // No stale token outlives the new password, in the keychain or the cache.
    assert_eq!(
        mem.items(),
        [(item("h", "git", ItemKind::Password), "new".into())]
    );
    let got = state.get(&query("h", None)).await.unwrap().unwrap();
    assert_eq!(got, cred("h", "git", "new"));
    // A restarted agent sees the same.
    let again = state_on(&mem).get(&query("h", None)).await.unwrap();
    assert_eq!(again, Some(got));
}

#[tokio::test]
async fn a_pre_encoded_credential_has_no_password_item() {
    let mem = MemoryBackend::new();
    let state = state_on(&mem);
    let mut bearer = cred("h", "", "");
    bearer.authtype = Some("Bearer".into());
    bearer.credential = Some(Secret::from("tok"));
    state.store(bearer.clone()).await.unwrap();
    let kinds: Vec<ItemKind> = mem.items().into_iter().map(|(id, _)| id.kind).collect();
    assert_eq!(kinds, [ItemKind::Authtype, ItemKind::PreEncoded]);
    let restarted = state_on(&mem);
    assert_eq!(restarted.list().await.unwrap().len(), 1);
    assert_eq!(
        restarted.get(&query("h", None)).await.unwrap(),
        Some(bearer)
    );
}

#[tokio::test]
async fn a_failed_store_changes_nothing_the_agent_answers() {
    let mem = MemoryBackend::new();
    let state = state_on(&mem);
    state.store(cred("h", "api", "v1")).await.unwrap();
    mem.fail_when(|op, _| op == Op::Save);
    let err = state.store(cred("h", "api", "v2")).await.unwrap_err();
    assert!(matches!(err, StoreError::Keychain(_)), "{err:?}");
    assert_eq!(
        password(state.get(&query("h", None)).await.unwrap()),
        Some("v1".into())
    );
    mem.heal();
    state.store(cred("h", "api", "v2")).await.unwrap();
    assert_eq!(
        password(state.get(&query("h", None)).await.unwrap()),
        Some("v2".into())
    );
}

#[tokio::test]
async fn erase_removes_every_match_from_the_keychain_then_the_cache() {
    let mem = MemoryBackend::new();
    let state = state_on(&mem);
    let mut with_token = cred("h", "a", "1");
    with_token.oauth_refresh_token = Some(Secret::from("r"));
    state.store(with_token).await.unwrap();
    state.store(cred("h", "b", "2")).await.unwrap();
    state.store(cred("other", "a", "3")).await.unwrap();
    assert_eq!(state.erase(&query("h", None)).await.unwrap(), 2);
    assert_eq!(
        mem.items(),
        [(item("other", "a", ItemKind::Password), "3".into())]
    );
    let calls = mem.calls().len();
    assert_eq!(state.get(&query("h", None)).await.unwrap(), None);
    assert_eq!(
        mem.calls().len(),
        calls,
        "an erased credential is known absent"
    );
    // Nothing left to erase: zero, and no error.
    assert_eq!(state.erase(&query("h", Some("a"))).await.unwrap(), 0);
    assert_eq!(state.counts(), (1, 1));
}

#[tokio::test]
async fn a_failed_erase_keeps_the_credential() {
    let mem = MemoryBackend::new();
    let state = state_on(&mem);
    state.store(cred("h", "api", "k")).await.unwrap();
    mem.fail_when(|op, _| op == Op::Delete);
    let err = state.erase(&query("h", None)).await.unwrap_err();
    assert!(matches!(err, StoreError::Keychain(_)), "{err:?}");
    assert_eq!(
        password(state.get(&query("h", None)).await.unwrap()),
        Some("k".into())
    );
    assert_eq!(mem.items().len(), 1);
}

#[tokio::test]
async fn a_credential_deleted_behind_the_agents_back_is_forgotten() {
    let mem = MemoryBackend::new();
    mem.put(item("h", "api", ItemKind::Password), "k");
    let state = state_on(&mem);
    state.preload().await;
    assert!(mem.take(&item("h", "api", ItemKind::Password)));
    assert_eq!(state.get(&query("h", None)).await.unwrap(), None);
    assert!(state.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_hung_keychain_times_out_and_the_agent_recovers() {
    let mem = MemoryBackend::new();
    let state = state_with(&mem, short_keychain_timeout());
    state.store(cred("a", "api", "k1")).await.unwrap();
    let hold = mem.hold();
    let err = state.store(cred("b", "api", "k2")).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::KeychainTimeout {
                backend: "secret-service",
                after
            } if after == Duration::from_millis(50)
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("did not answer within 0.05 s"));
    // Warm gets are still answered while the keychain hangs.
    assert_eq!(
        password(state.get(&query("a", None)).await.unwrap()),
        Some("k1".into())
    );
    drop(hold);
    state.store(cred("c", "api", "k3")).await.unwrap();
    assert_eq!(
        password(state.get(&query("c", None)).await.unwrap()),
        Some("k3".into())
    );
}

#[tokio::test]
async fn an_index_that_could_not_be_read_is_read_on_the_next_request() {
    let mem = MemoryBackend::new();
    mem.put(item("h", "api", ItemKind::Password), "k");
    let state = state_with(&mem, short_keychain_timeout());
    mem.fail_when(|op, _| op == Op::List);
    state.preload().await;
    let err = state.get(&query("h", None)).await.unwrap_err();
    assert!(matches!(err, StoreError::Keychain(_)), "{err:?}");
    mem.heal();
    let hold = mem.hold();
    let err = state.list().await.unwrap_err();
    assert!(matches!(err, StoreError::KeychainTimeout { .. }), "{err:?}");
    drop(hold);
    assert_eq!(
        password(state.get(&query("h", None)).await.unwrap()),
        Some("k".into())
    );
}

#[tokio::test]
async fn a_get_after_an_acknowledged_store_or_erase_never_sees_the_older_value() {
    let mem = MemoryBackend::new();
    let state = Arc::new(state_on(&mem));
    state.store(cred("h", "api", "v1")).await.unwrap();

    let hold = mem.hold();
    let storing = tokio::spawn({
        let state = Arc::clone(&state);
        async move { state.store(cred("h", "api", "v2")).await }
    });
    blocked(&mem, 1).await;
    // Not acknowledged yet: the cache still answers with the value the keychain is known to
    // hold.
    assert_eq!(
        password(state.get(&query("h", None)).await.unwrap()),
        Some("v1".into())
    );
    drop(hold);
    let stored = tokio::time::timeout(PATIENCE, storing).await.unwrap();
    assert_eq!(stored.unwrap().unwrap(), Stored { persistent: true });
    assert_eq!(
        password(state.get(&query("h", None)).await.unwrap()),
        Some("v2".into())
    );

    let hold = mem.hold();
    let erasing = tokio::spawn({
        let state = Arc::clone(&state);
        async move { state.erase(&query("h", None)).await }
    });
    blocked(&mem, 1).await;
    assert_eq!(
        password(state.get(&query("h", None)).await.unwrap()),
        Some("v2".into())
    );
    drop(hold);
    let erased = tokio::time::timeout(PATIENCE, erasing).await.unwrap();
    assert_eq!(erased.unwrap().unwrap(), 1);
    assert_eq!(state.get(&query("h", None)).await.unwrap(), None);
}

#[tokio::test]
async fn stored_says_whether_the_key_survives_a_reboot() {
    let persistent = MemoryBackend::new();
    let stored = state_on(&persistent).store(cred("h", "api", "k")).await;
    assert_eq!(stored.unwrap(), Stored { persistent: true });
    let volatile = MemoryBackend::volatile();
    let stored = state_on(&volatile).store(cred("h", "api", "k")).await;
    assert_eq!(stored.unwrap(), Stored { persistent: false });
}

#[tokio::test]
async fn store_refuses_a_credential_without_a_host_before_any_keychain_call() {
    let mem = MemoryBackend::new();
    let state = state_on(&mem);
    for bad in [
        cred("", "api", "k"),
        Credential::new(Target::new("", "h"), "api", Secret::from("k")),
    ] {
        let err = state.store(bad).await.unwrap_err();
        assert!(matches!(err, StoreError::NoTarget), "{err:?}");
    }
    assert_eq!(mem.calls(), []);
}

#[tokio::test]
async fn an_expired_credential_is_never_returned() {
    let mem = MemoryBackend::new();
    let state = state_on(&mem);
    let mut old = cred("h", "a", "old");
    old.password_expiry_utc = Some(1);
    state.store(old).await.unwrap();
    assert_eq!(state.get(&query("h", None)).await.unwrap(), None);
    state.store(cred("h", "b", "fresh")).await.unwrap();
    assert_eq!(
        password(state.get(&query("h", None)).await.unwrap()),
        Some("fresh".into())
    );
    // Also when it comes from the keychain rather than the cache.
    let restarted = state_on(&mem);
    assert_eq!(restarted.get(&query("h", Some("a"))).await.unwrap(), None);
    // Listed all the same, with the expiry once it has been read.
    let listed = restarted.list().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].password_expiry_utc, Some(1));
}

#[tokio::test]
async fn an_empty_user_name_and_password_are_a_credential_that_survives_a_restart() {
    let mem = MemoryBackend::new();
    state_on(&mem).store(cred("sso", "", "")).await.unwrap();
    // A new agent on the same keychain reads it back (the empty password is not "no item").
    let got = state_on(&mem)
        .get(&query("sso", None))
        .await
        .unwrap()
        .unwrap();
    assert!(got.username.is_empty() && got.password.is_empty() && got.has_password());
}

fn account_query(host: &str, account: wbl_proto::Account) -> Query {
    Query {
        target: target(host),
        // What an older client sent for a W&B key; the account decides, not this.
        username: Some("api".into()),
        account,
    }
}

#[tokio::test]
async fn accounts_are_named_credentials_of_a_host_and_none_is_picked_silently() {
    use wbl_proto::Account;
    let mem = MemoryBackend::new();
    // A key stored before accounts existed (user `api`) is the account `default`.
    mem.put(item("h", "api", ItemKind::Password), "k-old");
    let state = state_on(&mem);
    assert_eq!(
        password(state.get(&account_query("h", Account::Only)).await.unwrap()),
        Some("k-old".into()),
        "the only account is used when none is chosen"
    );
    state.store(cred("h", "work", "k-work")).await.unwrap();
    let named = |n: &str| account_query("h", Account::Named(n.into()));
    assert_eq!(
        password(state.get(&named("work")).await.unwrap()),
        Some("k-work".into())
    );
    assert_eq!(
        password(state.get(&named("default")).await.unwrap()),
        Some("k-old".into())
    );
    assert_eq!(state.get(&named("personal")).await.unwrap(), None);
    // An older client's query (user `api`, any account) still gets the default key.
    assert_eq!(
        password(state.get(&query("h", Some("api"))).await.unwrap()),
        Some("k-old".into())
    );
    // Two accounts, none chosen: an error naming both, never a pick.
    match state.get(&account_query("h", Account::Only)).await {
        Err(StoreError::Account(m)) => {
            assert!(m.contains("default, work"), "{m}");
            assert!(m.contains("https://h"), "{m}");
        }
        other => panic!("expected an account error, got {other:?}"),
    }
    // Removing one keeps the other, which is then the only one.
    assert_eq!(state.erase(&named("work")).await.unwrap(), 1);
    assert_eq!(
        password(state.get(&account_query("h", Account::Only)).await.unwrap()),
        Some("k-old".into())
    );
    // Accounts of another host do not count.
    state.store(cred("other", "x", "k-x")).await.unwrap();
    assert_eq!(
        password(state.get(&account_query("h", Account::Only)).await.unwrap()),
        Some("k-old".into())
    );
    assert_eq!(
        state
            .get(&account_query("none", Account::Only))
            .await
            .unwrap(),
        None
    );
}
