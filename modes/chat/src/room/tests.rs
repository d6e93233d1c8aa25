//! Tests of the room's rules, without any network.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use onionhost_sdk::{CancellationToken, TabEvent};
use tokio::sync::broadcast::error::TryRecvError;

use super::*;
use crate::names::name_key;

struct Fixture {
    room: Arc<Room>,
    reported: Arc<Mutex<Vec<TabEvent>>>,
}

fn room(max_members: usize) -> Fixture {
    let reported = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&reported);
    let ctx = onionhost_sdk::testing::context(
        "test",
        CancellationToken::new(),
        move |event| sink.lock().unwrap().push(event),
        |_| {},
    );
    Fixture {
        room: Arc::new(Room::new(
            &ChatConfig {
                max_members,
                max_message_bytes: 64,
                ..ChatConfig::default()
            },
            ctx,
        )),
        reported,
    }
}

fn join(room: &Arc<Room>, name: &str) -> Joined {
    room.join(JoinRequest {
        name: Some(name.into()),
        resume: None,
        resumable: true,
    })
    .unwrap()
}

/// Everything `events` has received so far.
fn drain(events: &mut broadcast::Receiver<Arc<RoomEvent>>) -> Vec<ServerMessage> {
    let mut out = Vec::new();
    loop {
        match events.try_recv() {
            Ok(event) => out.push(event.message.clone()),
            Err(TryRecvError::Empty) => return out,
            Err(err) => panic!("{err}"),
        }
    }
}

fn joined(name: &str) -> ServerMessage {
    ServerMessage::Joined { name: name.into() }
}

fn left(name: &str) -> ServerMessage {
    ServerMessage::Left { name: name.into() }
}

fn message(from: &str, text: &str) -> ServerMessage {
    ServerMessage::Message {
        from: from.into(),
        text: text.into(),
    }
}

#[test]
fn a_newcomer_gets_a_random_readable_name() {
    let f = room(10);
    let j = f
        .room
        .join(JoinRequest {
            resumable: true,
            ..JoinRequest::default()
        })
        .unwrap();
    assert_eq!(j.name.split('-').count(), 3, "{}", j.name);
    assert_eq!(j.members, std::slice::from_ref(&j.name));
    assert!(j.name_refused.is_none());
    assert_eq!(j.resume.as_ref().map(String::len), Some(32));
}

#[test]
fn joins_are_announced_to_members_already_present_but_history_is_not_replayed() {
    let f = room(10);
    let mut ann = join(&f.room, "ann");
    ann.membership.say("before bo").unwrap();
    let mut bo = join(&f.room, "bo");
    assert_eq!(
        drain(&mut ann.events),
        [message("ann", "before bo"), joined("bo")]
    );
    // Bo sees nothing of what was said before, not even its own join (the welcome covers it).
    assert_eq!(drain(&mut bo.events), []);
    assert_eq!(bo.members, ["ann", "bo"]);
}

#[test]
fn messages_go_to_everyone_in_order_under_the_senders_name() {
    let f = room(10);
    let mut ann = join(&f.room, "ann");
    let mut bo = join(&f.room, "bo");
    drain(&mut ann.events);
    ann.membership.say("one").unwrap();
    bo.membership.say("two").unwrap();
    ann.membership.say("three").unwrap();
    let expected = [
        message("ann", "one"),
        message("bo", "two"),
        message("ann", "three"),
    ];
    assert_eq!(drain(&mut ann.events), expected);
    assert_eq!(drain(&mut bo.events), expected);
}

#[test]
fn names_are_unique_ignoring_case() {
    let f = room(10);
    let _ann = join(&f.room, "Ann");
    let other = join(&f.room, "aNN");
    assert_eq!(
        other.name_refused,
        Some(ActionError::NameTaken("aNN".into()))
    );
    assert_ne!(name_key(&other.name), name_key("ann"));
    // Normalisation comes first: full-width letters are the same name.
    let third = join(&f.room, "ＡＮＮ");
    assert!(matches!(
        third.name_refused,
        Some(ActionError::NameTaken(_))
    ));
    assert_eq!(
        other.membership.rename("ANN"),
        Err(ActionError::NameTaken("ANN".into()))
    );
    // An invisible variation selector does not make a look-alike a new name.
    let twin = join(&f.room, "Ann\u{FE0F}");
    assert!(matches!(twin.name_refused, Some(ActionError::NameTaken(_))));
    // Case mappings that change length: the capital sharp s is `ss` too.
    let _gross = join(&f.room, "Gross");
    assert_eq!(
        other.membership.rename("GROẞ"),
        Err(ActionError::NameTaken("GROẞ".into()))
    );
}

/// Regression (issue 9, look-alike names): "аlice" with a Cyrillic а joined next to "alice"
/// as a second person.
#[test]
fn a_name_that_looks_like_a_present_members_is_refused() {
    let f = room(10);
    let mut alice = join(&f.room, "alice");
    let fake = join(&f.room, "\u{430}lice");
    assert_eq!(
        fake.name_refused,
        Some(ActionError::NameLooksAlike {
            wanted: "\u{430}lice".into(),
            like: "alice".into()
        })
    );
    assert_eq!(
        fake.name_refused.as_ref().map(ActionError::code),
        Some("name_taken")
    );
    let message = fake.name_refused.as_ref().map(ToString::to_string).unwrap();
    assert!(
        message.contains("looks too much like \u{201C}alice\u{201D}"),
        "{message}"
    );
    assert_ne!(
        fake.name, "\u{430}lice",
        "joined under a random name instead"
    );
    // A Cyrillic capital, through the case-folded key; and a rename is refused the same way.
    let other = join(&f.room, "\u{410}LICE");
    assert!(matches!(
        other.name_refused,
        Some(ActionError::NameLooksAlike { .. })
    ));
    drain(&mut alice.events);
    assert!(matches!(
        fake.membership.rename("al\u{456}ce"),
        Err(ActionError::NameLooksAlike { .. })
    ));
    assert!(matches!(
        fake.membership.rename("a\u{FE0F}lice"),
        Err(ActionError::NameTaken(_) | ActionError::NameLooksAlike { .. })
    ));
    assert!(drain(&mut alice.events).is_empty(), "nobody was renamed");
    // A member may switch to a look-alike of their own name; the old one is then free.
    alice.membership.rename("\u{430}lice").unwrap();
    assert!(matches!(
        join(&f.room, "alice").name_refused,
        Some(ActionError::NameLooksAlike { .. })
    ));
    drop(alice);
    assert!(
        join(&f.room, "alice").name_refused.is_none(),
        "free once alice left"
    );
}

/// A name with a look-alike part, held by one member, is also what their other names are
/// checked against: `ilya` holds `ilya`, `llya` holds `llya`, and `Ilya` looks like the
/// second while it is the first ignoring case.
#[test]
fn a_rename_is_checked_against_every_other_member() {
    let f = room(10);
    let ilya = join(&f.room, "ilya");
    let _llya = join(&f.room, "llya");
    assert!(matches!(
        ilya.membership.rename("Ilya"),
        Err(ActionError::NameLooksAlike { like, .. }) if like == "llya"
    ));
}

/// The look-alike check must not make a join storm quadratic: it is a few lookups per name,
/// never a comparison with every member. 10,000 renames checked against 10,000 members take
/// milliseconds; comparing skeletons with everyone would take minutes.
#[test]
fn look_alike_checks_do_not_grow_with_the_room() {
    let f = room(20_000);
    let first = join(&f.room, "first");
    {
        // Filled directly: every join's welcome carries the member list, which is linear by
        // design and not what this test measures.
        let mut state = f.room.lock();
        for n in 0..10_000 {
            let name = format!("member-{n}");
            let id = state.next_id;
            state.next_id += 1;
            let keys = NameKeys::of(&name);
            state.index(id, &keys);
            state.members.insert(
                id,
                Member {
                    name,
                    keys,
                    resume: None,
                    seat: 0,
                    replaced: CancellationToken::new(),
                },
            );
        }
    }
    let start = std::time::Instant::now();
    for n in 0..10_000 {
        // Half of them look like a member's (`rnember` is `member`), half are free.
        let wanted = if n % 2 == 0 {
            format!("rnember-{n}")
        } else {
            format!("new-{n}")
        };
        let result = first.membership.rename(&wanted);
        assert_eq!(result.is_err(), n % 2 == 0, "{wanted}: {result:?}");
    }
    let elapsed = start.elapsed();
    assert!(elapsed < std::time::Duration::from_secs(10), "{elapsed:?}");
}

/// Regression (issue 9, room-wide floods): every reconnect was a join and a leave announced
/// to everyone, with no limit on the room's side.
#[test]
fn joins_beyond_the_rooms_join_limit_are_refused_until_it_refills() {
    let ctx = onionhost_sdk::testing::context("test", CancellationToken::new(), |_| {}, |_| {});
    let config = ChatConfig {
        join_limit: crate::config::JoinLimitConfig {
            joins_per_minute: 1,
            burst: Some(3),
        },
        ..ChatConfig::default()
    };
    let room = Arc::new(Room::new(&config, ctx));
    let mut first = join(&room, "ann");
    let resume = first.resume.clone();
    for _ in 0..2 {
        drop(join(&room, "bo"));
    }
    drain(&mut first.events);
    assert_eq!(
        room.join(JoinRequest::default()).err(),
        Some(ActionError::Busy)
    );
    assert_eq!(ActionError::Busy.code(), "room_busy");
    // Nobody else heard anything of the refused join.
    assert!(drain(&mut first.events).is_empty());
    // Taking a member back is silent, so it costs nothing and still works.
    let back = room
        .join(JoinRequest {
            name: Some("ann".into()),
            resume,
            resumable: true,
        })
        .unwrap();
    assert_eq!(back.name, "ann");
}

#[test]
fn an_invalid_name_on_join_gives_a_random_name_and_says_why() {
    let f = room(10);
    let j = join(&f.room, "evil\u{202E}name");
    assert_eq!(
        j.name_refused,
        Some(ActionError::Name(NameError::Bidi(0x202E)))
    );
    assert!(!j.name.contains('\u{202E}'));
}

#[test]
fn renames_are_announced_and_validated() {
    let f = room(10);
    let mut ann = join(&f.room, "ann");
    let bo = join(&f.room, "bo");
    drain(&mut ann.events);
    bo.membership.rename("  Bob  ").unwrap();
    assert_eq!(
        drain(&mut ann.events),
        [ServerMessage::Renamed {
            from: "bo".into(),
            to: "Bob".into()
        }]
    );
    assert_eq!(bo.membership.name().unwrap(), "Bob");
    assert_eq!(
        bo.membership.rename("x\u{200B}y"),
        Err(ActionError::Name(NameError::Invisible(0x200B)))
    );
    assert_eq!(
        bo.membership.rename(&"b".repeat(33)),
        Err(ActionError::Name(NameError::TooLong))
    );
    // The old name is free again; changing only the case of one's own name is allowed.
    let _other = join(&f.room, "bo");
    bo.membership.rename("BOB").unwrap();
    assert_eq!(f.room.member_names(), ["ann", "bo", "BOB"]);
    // Renaming to one's current name announces nothing.
    drain(&mut ann.events);
    bo.membership.rename("BOB").unwrap();
    assert!(
        !drain(&mut ann.events)
            .iter()
            .any(|m| matches!(m, ServerMessage::Renamed { .. }))
    );
}

#[test]
fn leaving_is_announced_once_and_frees_the_name() {
    let f = room(10);
    let mut ann = join(&f.room, "ann");
    let bo = join(&f.room, "bo");
    drain(&mut ann.events);
    drop(bo);
    assert_eq!(drain(&mut ann.events), [left("bo")]);
    assert_eq!(f.room.member_names(), ["ann"]);
    assert!(join(&f.room, "BO").name_refused.is_none());
}

#[test]
fn invalid_messages_are_refused_and_the_room_carries_on() {
    let f = room(10);
    let mut ann = join(&f.room, "ann");
    let bo = join(&f.room, "bo");
    drain(&mut ann.events);
    assert!(matches!(
        bo.membership.say(&"x".repeat(65)),
        Err(ActionError::Message(MessageError::TooLong {
            max: 64,
            len: 65
        }))
    ));
    assert_eq!(
        bo.membership.say("  "),
        Err(ActionError::Message(MessageError::Empty))
    );
    assert_eq!(
        bo.membership.say("a\u{1B}[31m"),
        Err(ActionError::Message(MessageError::Control(0x1B)))
    );
    bo.membership.say(&"x".repeat(64)).unwrap();
    assert_eq!(drain(&mut ann.events), [message("bo", &"x".repeat(64))]);
}

#[test]
fn the_room_refuses_members_beyond_its_limit() {
    let f = room(2);
    let a = join(&f.room, "a");
    let _b = join(&f.room, "b");
    assert_eq!(
        f.room.join(JoinRequest::default()).err(),
        Some(ActionError::RoomFull)
    );
    drop(a);
    join(&f.room, "c");
}

#[test]
fn a_reconnect_with_the_resume_token_takes_the_name_back_silently() {
    let f = room(10);
    let mut ann = join(&f.room, "ann");
    let old = join(&f.room, "bo");
    drain(&mut ann.events);
    let new = f
        .room
        .join(JoinRequest {
            name: Some("bo".into()),
            resume: old.resume.clone(),
            resumable: true,
        })
        .unwrap();
    assert_eq!(new.name, "bo");
    assert!(new.name_refused.is_none());
    assert!(old.membership.replaced().is_cancelled());
    // The replaced connection can no longer act, and its departure announces nothing.
    assert_eq!(old.membership.say("ghost"), Err(ActionError::Gone));
    assert_eq!(old.membership.rename("ghost"), Err(ActionError::Gone));
    drop(old);
    assert_eq!(drain(&mut ann.events), []);
    assert_eq!(f.room.member_names(), ["ann", "bo"]);
    new.membership.say("back").unwrap();
    drop(new);
    assert_eq!(drain(&mut ann.events), [message("bo", "back"), left("bo")]);
}

#[test]
fn a_wrong_resume_token_cannot_take_a_name() {
    let f = room(10);
    let bo = join(&f.room, "bo");
    let ann = join(&f.room, "ann");
    for resume in [Some("0".repeat(32)), ann.resume.clone(), None] {
        let thief = f
            .room
            .join(JoinRequest {
                name: Some("bo".into()),
                resume,
                resumable: true,
            })
            .unwrap();
        assert_ne!(thief.name, "bo");
        assert!(!bo.membership.replaced().is_cancelled());
    }
}

#[test]
fn members_without_a_resume_token_cannot_be_taken_over() {
    let f = room(10);
    let nojs = f
        .room
        .join(JoinRequest {
            name: Some("bo".into()),
            resume: None,
            resumable: false,
        })
        .unwrap();
    assert_eq!(nojs.resume, None);
    let thief = join(&f.room, "bo");
    assert_ne!(thief.name, "bo");
}

#[test]
fn the_host_hears_how_many_are_present_and_never_a_name() {
    let f = room(10);
    let a = join(&f.room, "secret-name-a");
    let b = join(&f.room, "secret-name-b");
    drop(a);
    drop(b);
    assert_eq!(
        *f.reported.lock().unwrap(),
        [
            TabEvent::VisitorJoined { present: 1 },
            TabEvent::VisitorJoined { present: 2 },
            TabEvent::VisitorLeft { present: 1 },
            TabEvent::VisitorLeft { present: 0 },
        ]
    );
}

#[test]
fn events_are_encoded_once_as_json() {
    let f = room(10);
    let mut ann = join(&f.room, "ann");
    ann.membership.say("<b>hi</b>").unwrap();
    let event = ann.events.try_recv().unwrap();
    assert_eq!(
        event.json.as_str(),
        r#"{"type":"message","from":"ann","text":"<b>hi</b>"}"#
    );
}

#[test]
fn tokens_are_unguessable_hex() {
    let a = new_token();
    assert_eq!(a.len(), 32);
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, new_token());
}
