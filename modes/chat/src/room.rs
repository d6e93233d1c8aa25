//! The room: who is in it, and the one ordered stream of events every member receives.
//!
//! A member acts only through its [`Membership`], which the room hands out on join and which
//! leaves the room when dropped. Requests carry no names, so nobody can speak as, rename or
//! remove anybody but themselves.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use onionhost_sdk::axum::extract::ws::Utf8Bytes;
use onionhost_sdk::rate::RateLimiter;
use onionhost_sdk::{CancellationToken, TabContext, TabEvent};
use tokio::sync::broadcast;

use crate::config::ChatConfig;
use crate::message::{MessageError, check_message};
use crate::names::{NameError, NameKeys, normalize_name, random_name};
use crate::protocol::ServerMessage;

/// How many events a member may fall behind before it is disconnected (its page reconnects):
/// two per seat of the room (a crowd arriving at once announces one join per member), within
/// bounds. Bounds the memory a slow reader can hold on the server.
fn event_backlog(max_members: usize) -> usize {
    max_members.saturating_mul(2).clamp(1024, 16 * 1024)
}

/// How many random names are tried before giving up on finding a free one.
const RANDOM_NAME_ATTEMPTS: usize = 64;

/// An event sent to every member, with its JSON encoded once for all of them.
#[derive(Debug)]
pub(crate) struct RoomEvent {
    /// The event.
    pub(crate) message: ServerMessage,
    /// `message` as a WebSocket text frame.
    pub(crate) json: Utf8Bytes,
}

impl RoomEvent {
    /// An event with its JSON.
    pub(crate) fn new(message: ServerMessage) -> Self {
        let json = Utf8Bytes::from(message.to_json());
        Self { message, json }
    }
}

/// Why something a member asked for was refused. The text goes to that member only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ActionError {
    /// The room holds `max_members` already.
    #[error("The room is full; try again later.")]
    RoomFull,
    /// The room-wide join limit is exhausted (`join_limit`).
    #[error("Many people are joining right now; try again in a moment.")]
    Busy,
    /// Another member has this name (ignoring case).
    #[error("The name \u{201C}{0}\u{201D} is taken; choose another.")]
    NameTaken(String),
    /// The name looks like a present member's (same confusable skeleton), so it could pass
    /// for them.
    #[error(
        "The name \u{201C}{wanted}\u{201D} looks too much like \u{201C}{like}\u{201D}, who is here; choose another."
    )]
    NameLooksAlike {
        /// The name asked for.
        wanted: String,
        /// The present member's name it could pass for.
        like: String,
    },
    /// The name breaks a rule.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The message breaks a rule.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// The connection's rate limit is exhausted.
    #[error("You are sending too fast; wait a moment and try again.")]
    RateLimited,
    /// A request other than `join` came before `join`.
    #[error("Join the room first.")]
    NotJoined,
    /// A second `join` on the same connection.
    #[error("You are already in the room.")]
    AlreadyJoined,
    /// The member is no longer in the room (a newer connection took its place).
    #[error("You are no longer in the room.")]
    Gone,
    /// The request could not be parsed.
    #[error("That request was not understood: {0}")]
    BadRequest(String),
}

impl ActionError {
    /// A stable code for pages and tests to match on.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::RoomFull => "room_full",
            Self::Busy => "room_busy",
            // The same code as a taken name: pages treat both alike.
            Self::NameTaken(_) | Self::NameLooksAlike { .. } => "name_taken",
            Self::Name(_) => "name_invalid",
            Self::Message(_) => "message_invalid",
            Self::RateLimited => "rate_limited",
            Self::NotJoined => "not_joined",
            Self::AlreadyJoined => "already_joined",
            Self::Gone => "gone",
            Self::BadRequest(_) => "bad_request",
        }
    }

    /// The error as a message for its connection.
    pub(crate) fn to_message(&self) -> ServerMessage {
        ServerMessage::Error {
            code: self.code().to_owned(),
            message: self.to_string(),
        }
    }
}

type MemberId = u64;

struct Member {
    name: String,
    /// The keys of `name` in the room's indexes.
    keys: NameKeys,
    /// The secret that lets a reconnecting page take this member back (WebSocket only).
    resume: Option<String>,
    /// Which connection holds the member; bumped when a reconnect takes it over, so that
    /// the old connection's departure does not remove the member.
    seat: u64,
    /// Cancelled when another connection takes the member over.
    replaced: CancellationToken,
}

struct RoomState {
    members: HashMap<MemberId, Member>,
    /// The case-folded key of every member's name, in order: the member list is sorted by it.
    keys: BTreeMap<String, MemberId>,
    /// The confusable skeletons of every member's name ([`NameKeys`]), so that a name that
    /// looks like a present one is found with two lookups, not by comparing it with everyone.
    skeletons: HashMap<String, MemberId>,
    next_id: MemberId,
    /// The room-wide join limit.
    joins: RateLimiter,
}

/// How a wanted name meets a present member's.
enum Clash {
    /// The same name, ignoring case.
    Same(MemberId),
    /// A different name that looks the same.
    LooksAlike(MemberId),
}

impl RoomState {
    /// Whether a name with `keys` meets the name of a member other than `except`.
    fn clash(&self, keys: &NameKeys, except: Option<MemberId>) -> Option<Clash> {
        let other = |id: &&MemberId| Some(**id) != except;
        if let Some(&id) = self.keys.get(&keys.key).filter(other) {
            return Some(Clash::Same(id));
        }
        keys.skeletons
            .iter()
            .find_map(|skeleton| self.skeletons.get(skeleton).filter(other))
            .map(|&id| Clash::LooksAlike(id))
    }

    /// The error for a name that meets `clash`.
    fn refusal(&self, wanted: String, clash: &Clash) -> ActionError {
        match clash {
            Clash::Same(_) => ActionError::NameTaken(wanted),
            Clash::LooksAlike(id) => ActionError::NameLooksAlike {
                wanted,
                like: self
                    .members
                    .get(id)
                    .map(|m| m.name.clone())
                    .unwrap_or_default(),
            },
        }
    }

    fn index(&mut self, id: MemberId, keys: &NameKeys) {
        self.keys.insert(keys.key.clone(), id);
        for skeleton in &keys.skeletons {
            self.skeletons.insert(skeleton.clone(), id);
        }
    }

    fn unindex(&mut self, id: MemberId, keys: &NameKeys) {
        if self.keys.get(&keys.key) == Some(&id) {
            self.keys.remove(&keys.key);
        }
        for skeleton in &keys.skeletons {
            if self.skeletons.get(skeleton) == Some(&id) {
                self.skeletons.remove(skeleton);
            }
        }
    }
}

/// One chat room. Shared by every connection of one tab, and by nothing else.
pub(crate) struct Room {
    state: Mutex<RoomState>,
    events: broadcast::Sender<Arc<RoomEvent>>,
    max_members: usize,
    max_message_bytes: usize,
    ctx: TabContext,
}

/// How a connection wants to join.
#[derive(Debug, Default)]
pub(crate) struct JoinRequest {
    /// The name wanted, if any.
    pub(crate) name: Option<String>,
    /// The resume token of an earlier connection, if any.
    pub(crate) resume: Option<String>,
    /// Whether the member gets a resume token (pages with JavaScript do).
    pub(crate) resumable: bool,
}

/// A successful join.
pub(crate) struct Joined {
    /// The member's handle; dropping it leaves the room.
    pub(crate) membership: Membership,
    /// Every event after the join, in order.
    pub(crate) events: broadcast::Receiver<Arc<RoomEvent>>,
    /// The member's name.
    pub(crate) name: String,
    /// Everyone present, the new member included, sorted.
    pub(crate) members: Vec<String>,
    /// The resume token, for resumable joins.
    pub(crate) resume: Option<String>,
    /// Why the name asked for was not used, if it was not.
    pub(crate) name_refused: Option<ActionError>,
}

/// A member's place in the room. Every action of a member goes through it, and dropping it
/// announces the member's departure (unless a newer connection has taken the member over).
pub(crate) struct Membership {
    room: Arc<Room>,
    id: MemberId,
    seat: u64,
    replaced: CancellationToken,
}

impl Room {
    /// An empty room for one tab.
    pub(crate) fn new(config: &ChatConfig, ctx: TabContext) -> Self {
        let (events, _) = broadcast::channel(event_backlog(config.max_members));
        let joins = RateLimiter::new(config.join_rate());
        Self {
            state: Mutex::new(RoomState {
                members: HashMap::new(),
                keys: BTreeMap::new(),
                skeletons: HashMap::new(),
                next_id: 0,
                joins,
            }),
            events,
            max_members: config.max_members,
            max_message_bytes: config.max_message_bytes,
            ctx,
        }
    }

    /// Enters the room, or takes a member back after a reconnect (see [`JoinRequest`]).
    pub(crate) fn join(self: &Arc<Self>, request: JoinRequest) -> Result<Joined, ActionError> {
        let mut name_refused = None;
        let wanted = match request.name.as_deref().map(normalize_name) {
            Some(Ok(name)) => Some(name),
            Some(Err(err)) => {
                name_refused = Some(ActionError::Name(err));
                None
            }
            None => None,
        };
        let wanted = wanted.map(|name| {
            let keys = NameKeys::of(&name);
            (name, keys)
        });
        let mut state = self.lock();
        if let Some((name, keys)) = &wanted
            && let Some(clash) = state.clash(keys, None)
        {
            if let Clash::Same(id) = clash {
                let resumes = request.resume.is_some()
                    && state.members.get(&id).and_then(|m| m.resume.as_ref())
                        == request.resume.as_ref();
                if resumes {
                    return Ok(self.take_over(&mut state, id));
                }
            }
            name_refused = Some(state.refusal(name.clone(), &clash));
        }
        if state.members.len() >= self.max_members {
            return Err(ActionError::RoomFull);
        }
        // Only a newcomer costs a token: taking a member back above is silent.
        if state.joins.check().is_err() {
            return Err(ActionError::Busy);
        }
        let (name, keys) = match wanted {
            Some(wanted) if name_refused.is_none() => wanted,
            _ => free_random_name(&state),
        };
        let id = state.next_id;
        state.next_id += 1;
        let resume = request.resumable.then(new_token);
        let replaced = CancellationToken::new();
        state.index(id, &keys);
        state.members.insert(
            id,
            Member {
                name: name.clone(),
                keys,
                resume: resume.clone(),
                seat: 0,
                replaced: replaced.clone(),
            },
        );
        self.broadcast(ServerMessage::Joined { name: name.clone() });
        // Subscribing under the lock, after the announcement, gives the new member exactly
        // the events that follow its join, consistent with the member list below.
        let events = self.events.subscribe();
        let members = member_names(&state);
        let present = state.members.len();
        drop(state);
        self.ctx.report(TabEvent::VisitorJoined { present });
        Ok(Joined {
            membership: Membership {
                room: Arc::clone(self),
                id,
                seat: 0,
                replaced,
            },
            events,
            name,
            members,
            resume,
            name_refused,
        })
    }

    /// Hands member `id` to a new connection: the old one is told to close, and nobody else
    /// sees anything, since the same person is still there.
    fn take_over(self: &Arc<Self>, state: &mut RoomState, id: MemberId) -> Joined {
        let events = self.events.subscribe();
        let members = member_names(state);
        let replaced = CancellationToken::new();
        let (name, resume, seat) = match state.members.get_mut(&id) {
            Some(member) => {
                member.seat += 1;
                member.replaced.cancel();
                member.replaced = replaced.clone();
                (member.name.clone(), member.resume.clone(), member.seat)
            }
            // The caller found the member under the same lock.
            None => (String::new(), None, u64::MAX),
        };
        Joined {
            membership: Membership {
                room: Arc::clone(self),
                id,
                seat,
                replaced,
            },
            events,
            name,
            members,
            resume,
            name_refused: None,
        }
    }

    /// Everyone present, sorted ignoring case.
    pub(crate) fn member_names(&self) -> Vec<String> {
        member_names(&self.lock())
    }

    /// Announces `message` to every member. Called with the state locked, so that every
    /// member sees events in the same order as the state changed.
    fn broadcast(&self, message: ServerMessage) {
        // An error only means that nobody is listening.
        let _ = self.events.send(Arc::new(RoomEvent::new(message)));
    }

    fn lock(&self) -> MutexGuard<'_, RoomState> {
        // The state is consistent after every statement that changes it, so a panic
        // elsewhere while it was locked leaves nothing half-done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The member `id` if `seat` still holds it.
    fn seated(state: &mut RoomState, id: MemberId, seat: u64) -> Result<&mut Member, ActionError> {
        state
            .members
            .get_mut(&id)
            .filter(|m| m.seat == seat)
            .ok_or(ActionError::Gone)
    }
}

impl Membership {
    /// Says `text` to everyone, as this member.
    pub(crate) fn say(&self, text: &str) -> Result<(), ActionError> {
        let text = check_message(text, self.room.max_message_bytes)?;
        let mut state = self.room.lock();
        let member = Room::seated(&mut state, self.id, self.seat)?;
        let from = member.name.clone();
        self.room.broadcast(ServerMessage::Message { from, text });
        Ok(())
    }

    /// Changes this member's name.
    pub(crate) fn rename(&self, wanted: &str) -> Result<(), ActionError> {
        let to = normalize_name(wanted)?;
        let keys = NameKeys::of(&to);
        let mut state = self.room.lock();
        // A member may take a name that looks like their own (`alice` to `Alice`).
        if let Some(clash) = state.clash(&keys, Some(self.id)) {
            return Err(state.refusal(to, &clash));
        }
        let member = Room::seated(&mut state, self.id, self.seat)?;
        if member.name == to {
            return Ok(());
        }
        let from = std::mem::replace(&mut member.name, to.clone());
        let old_keys = std::mem::replace(&mut member.keys, keys.clone());
        state.unindex(self.id, &old_keys);
        state.index(self.id, &keys);
        self.room.broadcast(ServerMessage::Renamed { from, to });
        Ok(())
    }

    /// This member's current name, unless a newer connection holds the member.
    pub(crate) fn name(&self) -> Option<String> {
        let mut state = self.room.lock();
        Room::seated(&mut state, self.id, self.seat)
            .ok()
            .map(|m| m.name.clone())
    }

    /// Resolves when a newer connection has taken this member over.
    pub(crate) fn replaced(&self) -> CancellationToken {
        self.replaced.clone()
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut state = self.room.lock();
        let Ok(member) = Room::seated(&mut state, self.id, self.seat) else {
            return;
        };
        let name = member.name.clone();
        if let Some(member) = state.members.remove(&self.id) {
            state.unindex(self.id, &member.keys);
        }
        self.room.broadcast(ServerMessage::Left { name });
        let present = state.members.len();
        drop(state);
        self.room.ctx.report(TabEvent::VisitorLeft { present });
    }
}

fn member_names(state: &RoomState) -> Vec<String> {
    // In key order without computing a key per member: every join sends this list, and
    // computing the keys (case folding, normalisation) made a join storm quadratic in them.
    state
        .keys
        .values()
        .filter_map(|id| state.members.get(id).map(|m| m.name.clone()))
        .collect()
}

/// A random name that meets no present member's, with its keys.
fn free_random_name(state: &RoomState) -> (String, NameKeys) {
    let free = |name: String| {
        let keys = NameKeys::of(&name);
        state.clash(&keys, None).is_none().then_some((name, keys))
    };
    if let Some(found) = (0..RANDOM_NAME_ATTEMPTS).find_map(|_| free(random_name())) {
        return found;
    }
    // A crowded room: numbered names run out only after as many tries as there are members.
    (state.next_id..)
        .find_map(|n| free(format!("guest-{n}")))
        .unwrap_or_else(|| (String::new(), NameKeys::of("")))
}

/// A secret for a URL or a resume: 128 random bits from the OS-seeded CSPRNG, in hex.
pub(crate) fn new_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
