//! The accounts service's unit tests, in a file of their own so that `users.rs` does not
//! import the shared auth fixtures (which build an `Accounts` themselves). They never run
//! outside `cargo test`.

use super::*;
use crate::auth::testing;
use crate::clock::ManualClock;

fn fixture() -> (testing::Fixture, Accounts, ManualClock) {
    let fixture = testing::fixture("lockout_threshold = 3\nlockout_duration = \"10m\"");
    let (accounts, clock) = (fixture.accounts.clone(), fixture.clock.clone());
    (fixture, accounts, clock)
}

const PW: &str = "walrus cinnamon lantern quietly";
const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

#[test]
fn standing_matches_the_stored_account_and_follows_every_change_at_once() {
    let (_dir, accounts, clock) = fixture();
    let created = accounts
        .create("alice", &Secret::new(PW), Scopes::all())
        .unwrap();
    accounts
        .create("bob", &Secret::new(PW), Scopes::all())
        .unwrap();
    let now = clock.now().unix_timestamp();
    for n in 0..40u8 {
        let key = address_key(IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, n)));
        accounts.note_failure("alice", &key, now).unwrap();
    }
    assert!(!accounts.get("alice").unwrap().unwrap().guesses.is_empty());
    let standing = accounts.standing("Alice").unwrap().unwrap();
    assert_eq!(
        standing,
        AccountStanding {
            id: created.id.clone(),
            username: "alice".into(),
            scopes: Scopes::all(),
            disabled: false,
            epoch: created.epoch,
        }
    );
    let disabled = accounts.set_disabled("alice", true).unwrap();
    let standing = accounts.standing("alice").unwrap().unwrap();
    assert!(standing.disabled);
    assert_eq!(standing.epoch, disabled.epoch);
    let narrowed = Scopes::parse_list("chat:read").unwrap();
    accounts.set_scopes("alice", narrowed).unwrap();
    assert_eq!(
        accounts.standing("alice").unwrap().unwrap().scopes,
        narrowed
    );
    accounts.remove("alice").unwrap();
    assert_eq!(accounts.standing("alice").unwrap(), None);
}

#[test]
fn usernames_are_folded_and_confusables_refused() {
    assert_eq!(normalize_username("  Alice.B ").unwrap(), "alice.b");
    for bad in [
        "",
        "-lead",
        "a b",
        "аlice",
        "ａlice",
        "x".repeat(33).as_str(),
        "a/b",
        "a\u{0}",
    ] {
        assert!(normalize_username(bad).is_err(), "{bad:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_authenticate_and_refuse_wrong_or_unknown_alike() {
    let (_dir, accounts, _) = fixture();
    accounts
        .create("Alice", &Secret::new(PW), Scopes::all())
        .unwrap();
    assert!(matches!(
        accounts.create("alice", &Secret::new(PW), Scopes::all()),
        Err(AccountError::Exists(_))
    ));
    let user = accounts
        .authenticate("ALICE", Secret::new(PW), HOME, None)
        .await
        .unwrap();
    assert_eq!(user.username, "alice");
    let wrong = accounts
        .authenticate("alice", Secret::new("wrong password entirely"), HOME, None)
        .await
        .unwrap_err();
    let unknown = accounts
        .authenticate("mallory", Secret::new(PW), HOME, None)
        .await
        .unwrap_err();
    assert_eq!(wrong.to_string(), unknown.to_string());
    assert!(!user.password_hash.contains(PW));
}

fn addr(n: u32) -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::from(0xc633_6400 + n))
}

async fn guess(accounts: &Accounts, from: IpAddr) -> AccountError {
    accounts
        .authenticate("owner", Secret::new("not the password at all"), from, None)
        .await
        .unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_from_one_address_locks_only_that_address_and_unlock_ends_it() {
    let (_dir, accounts, clock) = fixture();
    accounts
        .create("owner", &Secret::new(PW), Scopes::all())
        .unwrap();
    let attacker = addr(7);
    for _ in 0..3 {
        guess(&accounts, attacker).await;
    }
    // Even the right password is refused from the guessing address while locked...
    assert!(matches!(
        accounts
            .authenticate("owner", Secret::new(PW), attacker, None)
            .await,
        Err(AccountError::Locked { .. })
    ));
    // ...but the owner, elsewhere, logs in at once.
    accounts
        .authenticate("owner", Secret::new(PW), HOME, None)
        .await
        .unwrap();
    clock.advance(time::Duration::minutes(11));
    for _ in 0..3 {
        guess(&accounts, attacker).await;
    }
    clock.advance(time::Duration::minutes(11));
    assert!(
        matches!(
            guess(&accounts, attacker).await,
            AccountError::Locked { .. }
        ),
        "the second lockout lasts 20 minutes"
    );
    assert!(
        accounts
            .get("owner")
            .unwrap()
            .unwrap()
            .view()
            .locked_until
            .is_some()
    );
    accounts.unlock("owner").unwrap();
    accounts
        .authenticate("owner", Secret::new(PW), attacker, None)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_escalation_decays_after_quiet_hours() {
    let (_dir, accounts, clock) = fixture();
    accounts
        .create("owner", &Secret::new(PW), Scopes::all())
        .unwrap();
    let phone = addr(9);
    let locked_for = |accounts: &Accounts| {
        let user = accounts.get("owner").unwrap().unwrap();
        let entry = user.guesses.get(&address_key(phone)).unwrap().clone();
        entry.locked_until.unwrap() - entry.last_failure
    };
    // Ten wrong guesses a day, every day: today the lockout escalates...
    let mut first_day = Vec::new();
    for _ in 0..4 {
        for _ in 0..3 {
            guess(&accounts, phone).await;
        }
        first_day.push(locked_for(&accounts));
        clock.advance(time::Duration::hours(1) + time::Duration::minutes(30));
    }
    assert_eq!(first_day, vec![600, 1200, 2400, 4800]);
    // ...and after a quiet day it is back to the first step, not a day-long lock.
    for _ in 0..5 {
        clock.advance(time::Duration::hours(24));
        for _ in 0..3 {
            guess(&accounts, phone).await;
        }
        assert_eq!(locked_for(&accounts), 600);
    }
    clock.advance(time::Duration::minutes(11));
    accounts
        .authenticate("owner", Secret::new(PW), phone, None)
        .await
        .unwrap();
}

use crate::auth::throttle::{BURST, SPACING_SECS};
use crate::clock::Clock;

/// What a spread attack's try got: a checked wrong password, or a refusal with its
/// wait (the text a client sees).
fn outcome(result: Result<UserRecord, AccountError>) -> String {
    match result {
        Err(AccountError::InvalidCredentials) => "checked".into(),
        Err(throttled @ AccountError::Throttled { .. }) => throttled.to_string(),
        other => panic!("{other:?}"),
    }
}

/// Issue 10 leftover (outside attack): 41 addresses guessing once a second kept the
/// owner out of a fresh address, because the account's one slot per 15 s went to
/// whoever asked first and a throttled try looked like a wrong password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spread_attack_is_bounded_per_account_and_never_holds_up_a_known_client() {
    let (_dir, accounts, clock) = fixture();
    let owner = accounts
        .create("owner", &Secret::new(PW), Scopes::all())
        .unwrap();
    let laptop = addr(1000);
    accounts
        .authenticate("owner", Secret::new(PW), laptop, None)
        .await
        .unwrap();
    let browser = KnownClient {
        uid: owner.id.clone(),
        epoch: owner.epoch,
        id: "owner-browser".into(),
    };
    let stranger = KnownClient {
        uid: "someone-else".into(),
        ..browser.clone()
    };
    let before = accounts.passwords().verifications();
    let (mut checked, mut refused) = (0, 0);
    let started = clock.now().unix_timestamp();
    // 41 addresses, each guessing once a second for two minutes, at the owner's
    // account and at a name no account has.
    let mut owner_logins = 0;
    for second in 0..120u32 {
        for n in 0..41 {
            let at_owner = outcome(
                accounts
                    .authenticate("owner", Secret::new("not it at all"), addr(n), None)
                    .await,
            );
            let at_nobody = outcome(
                accounts
                    .authenticate("nobody", Secret::new("not it at all"), addr(n), None)
                    .await,
            );
            assert_eq!(at_owner, at_nobody, "an unknown name is answered alike");
            if at_owner == "checked" {
                checked += 1;
            } else {
                assert!(at_owner.contains("retry in"), "{at_owner}");
                refused += 1;
            }
        }
        if second % 30 == 0 {
            // The owner's browser, now on a fresh address, is served at once...
            let fresh = addr(2000 + second);
            accounts
                .authenticate("owner", Secret::new(PW), fresh, Some(&browser))
                .await
                .unwrap();
            // ...as is the owner on a familiar address without the token.
            accounts
                .authenticate("owner", Secret::new(PW), laptop, None)
                .await
                .unwrap();
            owner_logins += 2;
            // A token of another account vouches for nothing.
            assert!(matches!(
                accounts
                    .authenticate("owner", Secret::new(PW), addr(3000), Some(&stranger))
                    .await,
                Err(AccountError::Throttled { .. })
            ));
        }
        clock.advance(time::Duration::seconds(1));
    }
    let elapsed = clock.now().unix_timestamp() - started;
    let bound = BURST + elapsed / SPACING_SECS;
    assert!(checked <= bound, "{checked} guesses checked in {elapsed} s");
    assert!(refused > 41 * 110, "{refused}");
    // Two names (owner, nobody) had their guesses checked, plus the owner's logins.
    let verifications = accounts.passwords().verifications() - before;
    assert_eq!(
        verifications,
        u64::try_from(2 * checked + owner_logins).unwrap()
    );

    // A fresh address without the token competes with the guessers: once they spent
    // the budget it is told how long to wait, and served after that once they stop.
    for n in 0..=BURST {
        let spent = outcome(
            accounts
                .authenticate(
                    "owner",
                    Secret::new("not it at all"),
                    addr(8000 + n as u32),
                    None,
                )
                .await,
        );
        if spent != "checked" {
            break;
        }
    }
    let wait = match accounts
        .authenticate("owner", Secret::new(PW), addr(4000), None)
        .await
    {
        Err(AccountError::Throttled { retry_after }) => retry_after,
        other => panic!("{other:?}"),
    };
    assert!((1..=SPACING_SECS).contains(&wait), "{wait}");
    clock.advance(time::Duration::seconds(wait));
    accounts
        .authenticate("owner", Secret::new(PW), addr(4000), None)
        .await
        .unwrap();

    // A stolen token buys its own lockout's worth of guesses, then counts as none.
    clock.advance(time::Duration::hours(1));
    for n in 0..3 {
        accounts
            .authenticate(
                "owner",
                Secret::new("not it"),
                addr(5000 + n),
                Some(&browser),
            )
            .await
            .unwrap_err();
    }
    for _ in 0..BURST {
        guess(&accounts, addr(6000)).await;
    }
    assert!(matches!(
        accounts
            .authenticate("owner", Secret::new(PW), addr(5009), Some(&browser))
            .await,
        Err(AccountError::Throttled { .. })
    ));
    // A password change (a new epoch) ends every token...
    let new_pw = "plinth-ocarina-sleet-mural";
    let changed = accounts
        .set_password("owner", &Secret::new(new_pw))
        .unwrap();
    let old = KnownClient {
        id: "second-browser".into(),
        ..browser.clone()
    };
    assert!(matches!(
        accounts
            .authenticate("owner", Secret::new(new_pw), addr(7000), Some(&old))
            .await,
        Err(AccountError::Throttled { .. })
    ));
    // ...and the console refills the budget.
    accounts.unlock("owner").unwrap();
    let renewed = KnownClient {
        epoch: changed.epoch,
        ..old
    };
    accounts
        .authenticate("owner", Secret::new(new_pw), addr(7000), Some(&renewed))
        .await
        .unwrap();
}

#[test]
fn ipv6_guesses_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
    assert_eq!(
        address_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
        address_key("2001:db8:1:2:bbbb::9".parse().unwrap())
    );
    assert_eq!(
        address_key("::ffff:192.0.2.1".parse().unwrap()),
        "192.0.2.1"
    );
}

/// Starts a login of `owner` that pauses after its password check; returns its
/// handle once it reached the pause, and the switch that lets it go on.
async fn paused_login(
    accounts: &Accounts,
    password: &'static str,
) -> (
    tokio::task::JoinHandle<Result<UserRecord, AccountError>>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (reached_tx, reached) = tokio::sync::oneshot::channel();
    let (release, release_rx) = tokio::sync::oneshot::channel();
    *accounts.pause.lock().unwrap() = Some((reached_tx, release_rx));
    let worker = accounts.clone();
    let login = tokio::spawn(async move {
        worker
            .authenticate("owner", Secret::new(password), HOME, None)
            .await
    });
    reached.await.unwrap();
    (login, release)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_login_never_undoes_a_password_change_disable_or_scope_change() {
    let (_dir, accounts, _) = fixture();
    accounts
        .create("owner", &Secret::new(PW), Scopes::all())
        .unwrap();
    accounts
        .create("admin2", &Secret::new(PW), Scopes::all())
        .unwrap();
    // A failed guess first, so the successful login has something to write back.
    guess(&accounts, HOME).await;

    let (login, release) = paused_login(&accounts, PW).await;
    let changed = accounts
        .set_password("owner", &Secret::new("plinth-ocarina-sleet-mural"))
        .unwrap();
    release.send(()).unwrap();
    assert!(matches!(
        login.await.unwrap(),
        Err(AccountError::InvalidCredentials)
    ));
    let stored = accounts.get("owner").unwrap().unwrap();
    assert_eq!(stored.password_hash, changed.password_hash);
    assert_eq!(stored.epoch, changed.epoch);
    let new_pw = "plinth-ocarina-sleet-mural";

    let (login, release) = paused_login(&accounts, new_pw).await;
    accounts.set_disabled("owner", true).unwrap();
    release.send(()).unwrap();
    assert!(matches!(login.await.unwrap(), Err(AccountError::Disabled)));
    assert!(accounts.get("owner").unwrap().unwrap().disabled);
    accounts.set_disabled("owner", false).unwrap();

    guess(&accounts, HOME).await;
    let (login, release) = paused_login(&accounts, new_pw).await;
    let narrowed = accounts
        .set_scopes("owner", Scopes::parse_list("chat:read").unwrap())
        .unwrap();
    release.send(()).unwrap();
    let user = login.await.unwrap().unwrap();
    assert_eq!(
        user.scopes, narrowed.scopes,
        "the login sees the new scopes"
    );
    let stored = accounts.get("owner").unwrap().unwrap();
    assert_eq!(stored.scopes, narrowed.scopes);
    assert_eq!(stored.epoch, narrowed.epoch);
    assert!(
        stored.guesses.is_empty(),
        "the success still cleared the failure"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_disable_and_removal_revoke_by_epoch() {
    let (_dir, accounts, _) = fixture();
    accounts
        .create("owner", &Secret::new(PW), Scopes::all())
        .unwrap();
    let bob = accounts
        .create(
            "bob",
            &Secret::new(PW),
            Scopes::parse_list("chat:read").unwrap(),
        )
        .unwrap();
    let changed = accounts
        .set_password("bob", &Secret::new("plinth-ocarina-sleet-mural"))
        .unwrap();
    assert!(changed.epoch > bob.epoch);
    assert!(
        accounts
            .authenticate("bob", Secret::new(PW), HOME, None)
            .await
            .is_err()
    );
    let disabled = accounts.set_disabled("bob", true).unwrap();
    assert!(disabled.epoch > changed.epoch);
    assert!(matches!(
        accounts
            .authenticate("bob", Secret::new("plinth-ocarina-sleet-mural"), HOME, None)
            .await,
        Err(AccountError::Disabled)
    ));
    assert!(matches!(
        accounts.set_disabled("owner", true),
        Err(AccountError::LastAdmin)
    ));
    assert!(matches!(
        accounts.remove("owner"),
        Err(AccountError::LastAdmin)
    ));
    accounts.remove("bob").unwrap();
    assert!(accounts.get("bob").unwrap().is_none());
    assert!(matches!(
        accounts.create("weak", &Secret::new("passwordpassword"), Scopes::all()),
        Err(AccountError::Password(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_records_its_time_at_most_hourly_and_a_failure_never() {
    let (_dir, accounts, clock) = fixture();
    accounts
        .create("alice", &Secret::new(PW), Scopes::all())
        .unwrap();
    assert_eq!(accounts.get("alice").unwrap().unwrap().last_login, None);
    let first = clock.now().unix_timestamp();
    accounts
        .authenticate("alice", Secret::new(PW), HOME, None)
        .await
        .unwrap();
    assert_eq!(
        accounts.get("alice").unwrap().unwrap().last_login,
        Some(first)
    );
    clock.advance(time::Duration::minutes(59));
    accounts
        .authenticate("alice", Secret::new(PW), HOME, None)
        .await
        .unwrap();
    let _ = accounts
        .authenticate("alice", Secret::new("wrong password entirely"), HOME, None)
        .await;
    assert_eq!(
        accounts.get("alice").unwrap().unwrap().last_login,
        Some(first)
    );
    clock.advance(time::Duration::minutes(1));
    accounts
        .authenticate("alice", Secret::new(PW), HOME, None)
        .await
        .unwrap();
    assert_eq!(
        accounts.get("alice").unwrap().unwrap().last_login,
        Some(first + 3600)
    );
}
