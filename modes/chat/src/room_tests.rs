//! Tests of the room's rules, without any network.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use onionhost_sdk::{CancellationToken, TabEvent};
use tokio::sync::broadcast::error::TryRecvError;

use super::*;

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
        room: Arc::new(Room::new(max_members, 64, ctx)),
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
