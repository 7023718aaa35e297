//! Chats and their messages: who may open a chat, who may see each message, and the
//! limits both are held to.
//!
//! A chat has an owner, optional member users and the agent that answers in it. Each
//! message carries its author ([`Author`]) and a [`Visibility`]. One function,
//! [`may_see`], decides whether a person sees a message, and every read a person makes
//! ([`Chats::history`], and through it every route) goes through it; what the agent
//! loop sends the model is a separate read, [`Chats::turn_context`], the only one that
//! includes `agent_only`: for a turn a person started it holds what that person may see
//! plus `agent_only`, never another person's private exchange (the model would answer
//! the prompter with it). People post through [`Chats::post`] (the author is who they
//! are; `admin_only` needs an admin); the agent loop stores through [`Chats::append`].
//!
//! A message is stored together with its chat's sequence counter in one transaction, and
//! a chat is deleted together with all its messages in one, so no crash leaves a half
//! state. This module never speaks HTTP and never decides scopes; callers hand it a
//! [`Viewer`] built from an authenticated principal.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::clock::{SharedClock, rfc3339};
use crate::config::ChatsConfig;
use crate::store::{Store, StoreError, Tree, TreeName};

/// Longest chat title, in characters.
pub const MAX_TITLE: usize = 200;
/// Most members a chat may have besides its owner.
pub const MAX_MEMBERS: usize = 32;
/// A page's size when the caller names none (never more than `[chats] max_page`).
pub const DEFAULT_PAGE: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// Also the answer for a chat the viewer may not open, so ids cannot be probed.
    #[error("no chat {0}")]
    NotFound(String),
    #[error("{0:?} is not a chat id: chat ids are 32 lowercase hex characters")]
    InvalidId(String),
    #[error("{0:?} is not a cursor from a previous page")]
    BadCursor(String),
    #[error("the message is {len} bytes, more than the limit of {limit} ([chats] max_message)")]
    TooLong { len: usize, limit: usize },
    #[error("the message is empty")]
    Empty,
    #[error("a page holds at most {limit} entries ([chats] max_page); asked for {asked}")]
    PageTooLarge { asked: usize, limit: usize },
    #[error(
        "{owner} already has {limit} chats, the most one user may own ([chats] max_per_user): delete one first"
    )]
    TooManyChats { owner: String, limit: usize },
    #[error("only admins may post {0} messages")]
    VisibilityNotAllowed(Visibility),
    #[error("only the chat's owner or an admin may delete it")]
    NotOwner,
    #[error("the title must be 1 to {MAX_TITLE} characters without control characters")]
    InvalidTitle,
    #[error("a chat has at most {MAX_MEMBERS} members besides its owner")]
    TooManyMembers,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who may see a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Everyone who may open the chat, and the model.
    Public,
    /// Its author only (and the model, which answers it).
    Private,
    /// The model only: in its context, hidden from every person, admins included.
    AgentOnly,
    /// Admins only; kept out of the model's context.
    AdminOnly,
}

impl std::fmt::Display for Visibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
            Visibility::AgentOnly => "agent_only",
            Visibility::AdminOnly => "admin_only",
        })
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Author {
    User(String),
    Device(String),
    Agent(String),
    Tool(String),
}

/// A person reading: a user, possibly through one of their paired devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub user: String,
    pub device: Option<String>,
    pub admin: bool,
}

impl Viewer {
    /// The author a message this viewer posts carries.
    pub fn author(&self) -> Author {
        match &self.device {
            Some(device) => Author::Device(device.clone()),
            None => Author::User(self.user.clone()),
        }
    }
}

/// A chat as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat {
    pub id: String,
    pub owner: String,
    pub title: String,
    pub agent: String,
    #[serde(default)]
    pub members: Vec<String>,
    pub created: String,
    /// The next message's id within this chat.
    #[serde(rename = "nextMessage")]
    next_message: u64,
}

/// A message as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Increasing within its chat.
    pub id: u64,
    #[serde(rename = "chatId")]
    pub chat_id: String,
    pub author: Author,
    pub created: String,
    pub content: String,
    pub visibility: Visibility,
    /// The one person a `private` agent reply is for: the author of the private message
    /// it answers. `None` for every other message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<Author>,
}

/// Who may see an agent's reply, as decided from the message that prompted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTo {
    pub visibility: Visibility,
    pub audience: Option<Author>,
}

/// The one rule for an agent's reply: as public as the message that prompted it. A
/// reply to a private message is private to that message's author (who could not see
/// it otherwise: `private` alone means "its author only", and the author is the agent);
/// a reply to an `agent_only` message stays hidden from every person; an `admin_only`
/// prompt gets an `admin_only` reply.
pub fn reply_visibility(prompt: &Message) -> ReplyTo {
    match prompt.visibility {
        Visibility::Private => ReplyTo {
            visibility: Visibility::Private,
            audience: Some(
                prompt
                    .audience
                    .clone()
                    .unwrap_or_else(|| prompt.author.clone()),
            ),
        },
        visibility => ReplyTo {
            visibility,
            audience: None,
        },
    }
}

/// What a new chat is given.
#[derive(Debug, Clone, Default)]
pub struct NewChat {
    pub title: String,
    pub agent: String,
    pub members: Vec<String>,
}

/// One page of a listing, newest first; `next` is the cursor of the page after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// The one rule for whether a person sees a message. Every read a person makes goes
/// through it.
pub fn may_see(viewer: &Viewer, message: &Message) -> bool {
    match message.visibility {
        Visibility::Public => true,
        Visibility::Private => match message.audience.as_ref().unwrap_or(&message.author) {
            Author::User(user) => *user == viewer.user && viewer.device.is_none(),
            Author::Device(device) => viewer.device.as_ref() == Some(device),
            Author::Agent(_) | Author::Tool(_) => false,
        },
        Visibility::AgentOnly => false,
        Visibility::AdminOnly => viewer.admin,
    }
}

/// Whether a message goes into the model's context: everything a person said to the
/// chat, private or not, and `agent_only`; never `admin_only`.
pub fn in_model_context(message: &Message) -> bool {
    message.visibility != Visibility::AdminOnly
}

/// Whether a message goes into the context of a turn `prompter` started: what the model
/// may read ([`in_model_context`]) and the prompter may see, plus `agent_only`. Another
/// person's private exchange stays out, since the model answers the prompter with it.
pub fn in_turn_context(prompter: &Viewer, message: &Message) -> bool {
    in_model_context(message)
        && (message.visibility == Visibility::AgentOnly || may_see(prompter, message))
}

/// Whether a person may open a chat: its owner, a member, or an admin.
pub fn may_open(viewer: &Viewer, chat: &Chat) -> bool {
    viewer.admin || chat.owner == viewer.user || chat.members.contains(&viewer.user)
}

/// The chats and messages trees with their limits.
#[derive(Debug)]
pub struct Chats {
    store: Store,
    chats: Tree<String, Chat>,
    messages: Tree<String, Message>,
    limits: ChatsConfig,
    clock: SharedClock,
    /// Serializes writes: the per-owner count, the message counter and a deletion's
    /// list of messages are each read and then written.
    write: Mutex<()>,
}

impl Chats {
    pub fn open(
        store: &Store,
        limits: ChatsConfig,
        clock: SharedClock,
    ) -> Result<Chats, ChatError> {
        Ok(Chats {
            store: store.clone(),
            chats: store.tree(TreeName::Chats)?,
            messages: store.tree(TreeName::Messages)?,
            limits,
            clock,
            write: Mutex::new(()),
        })
    }

    pub fn limits(&self) -> &ChatsConfig {
        &self.limits
    }

    /// Creates a chat owned by `owner`. Callers check that the agent and the members
    /// exist.
    pub fn create(&self, owner: &str, new: NewChat) -> Result<Chat, ChatError> {
        let title = new.title.trim();
        if title.is_empty()
            || title.chars().count() > MAX_TITLE
            || title.chars().any(char::is_control)
        {
            return Err(ChatError::InvalidTitle);
        }
        let mut members: Vec<String> = Vec::new();
        for member in new.members {
            if member != owner && !members.contains(&member) {
                members.push(member);
            }
        }
        if members.len() > MAX_MEMBERS {
            return Err(ChatError::TooManyMembers);
        }
        let _write = self.lock();
        let mut owned = 0;
        for entry in self.chats.iter_from(None) {
            let (_, chat) = entry?;
            if chat.owner == owner {
                owned += 1;
            }
        }
        if owned >= self.limits.max_per_user {
            return Err(ChatError::TooManyChats {
                owner: owner.to_string(),
                limit: self.limits.max_per_user,
            });
        }
        let now = self.clock.now();
        let millis = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let chat = Chat {
            id: format!("{millis:016x}{}", crate::ids::random_id(8)),
            owner: owner.to_string(),
            title: title.to_string(),
            agent: new.agent,
            members,
            created: rfc3339(now),
            next_message: 1,
        };
        if !self.chats.insert_new(&chat.id, &chat)? {
            return Err(StoreError::Write("chat id collision".into()).into());
        }
        self.store.sync()?;
        Ok(chat)
    }

    /// The chats the viewer owns or belongs to, newest first, after `cursor`.
    pub fn list(
        &self,
        viewer: &Viewer,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Page<Chat>, ChatError> {
        let limit = self.page_size(limit)?;
        let cursor = cursor.map(|c| parse_chat_id(c).map_err(|_| ChatError::BadCursor(short(c))));
        let cursor = cursor.transpose()?;
        let mut items = Vec::new();
        let mut more = false;
        for entry in self.chats.iter_before(cursor.as_ref()) {
            let (_, chat) = entry?;
            if chat.owner != viewer.user && !chat.members.contains(&viewer.user) {
                continue;
            }
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(chat);
        }
        let next = more
            .then(|| items.last().map(|c: &Chat| c.id.clone()))
            .flatten();
        Ok(Page { items, next })
    }

    /// One chat, if the viewer may open it; `NotFound` otherwise.
    pub fn get(&self, viewer: &Viewer, id: &str) -> Result<Chat, ChatError> {
        let chat = self.chat(id)?;
        if may_open(viewer, &chat) {
            Ok(chat)
        } else {
            Err(ChatError::NotFound(chat.id))
        }
    }

    /// A chat by id without any access check: for the agent loop, which acts for a
    /// caller it has already checked with [`Chats::get`].
    pub fn chat(&self, id: &str) -> Result<Chat, ChatError> {
        let id = parse_chat_id(id)?;
        self.chats.get(&id)?.ok_or(ChatError::NotFound(id))
    }

    /// Deletes a chat and every message in it, at once.
    pub fn delete(&self, viewer: &Viewer, id: &str) -> Result<(), ChatError> {
        let chat = self.get(viewer, id)?;
        if chat.owner != viewer.user && !viewer.admin {
            return Err(ChatError::NotOwner);
        }
        let _write = self.lock();
        let prefix = format!("{}/", chat.id);
        let mut keys = Vec::new();
        for entry in self.messages.iter_from(Some(&prefix)) {
            let (key, _) = entry?;
            if !key.starts_with(&prefix) {
                break;
            }
            keys.push(key);
        }
        self.chats.remove_with(&chat.id, &self.messages, &keys)?;
        self.store.sync()?;
        Ok(())
    }

    /// A person posts to a chat they may open; the author is who they are.
    pub fn post(
        &self,
        viewer: &Viewer,
        id: &str,
        content: &str,
        visibility: Visibility,
    ) -> Result<Message, ChatError> {
        let chat = self.get(viewer, id)?;
        if visibility == Visibility::AdminOnly && !viewer.admin {
            return Err(ChatError::VisibilityNotAllowed(visibility));
        }
        self.append(&chat.id, viewer.author(), content, visibility)
    }

    /// Stores a message as the agent loop writes it (an agent's answer, a tool's result,
    /// or a person's message the loop already checked). The limits still apply.
    pub fn append(
        &self,
        id: &str,
        author: Author,
        content: &str,
        visibility: Visibility,
    ) -> Result<Message, ChatError> {
        self.insert(id, author, content, visibility, false)
            .map(|(message, _)| message)
    }

    /// A person's message that an agent will answer: stored like [`Chats::post`], with
    /// the id after it kept for the reply, so the reply sits right after its prompt in
    /// the history and clients can name it while it streams. Returns the message and the
    /// reply's id.
    pub fn post_prompt(
        &self,
        viewer: &Viewer,
        id: &str,
        content: &str,
        visibility: Visibility,
    ) -> Result<(Message, u64), ChatError> {
        let chat = self.get(viewer, id)?;
        if visibility == Visibility::AdminOnly && !viewer.admin {
            return Err(ChatError::VisibilityNotAllowed(visibility));
        }
        let (message, reply) = self.insert(&chat.id, viewer.author(), content, visibility, true)?;
        let reply = reply.unwrap_or(message.id + 1);
        Ok((message, reply))
    }

    /// Stores an agent's reply under the id [`Chats::post_prompt`] kept for it, with
    /// the visibility [`reply_visibility`] gives it.
    pub fn store_reply(
        &self,
        id: &str,
        reply_id: u64,
        agent: &str,
        content: &str,
        to: ReplyTo,
    ) -> Result<Message, ChatError> {
        self.check_content(content)?;
        let id = parse_chat_id(id)?;
        let _write = self.lock();
        let chat = self
            .chats
            .get(&id)?
            .ok_or_else(|| ChatError::NotFound(id.clone()))?;
        let key = message_key(&chat.id, reply_id);
        if reply_id >= chat.next_message || self.messages.get(&key)?.is_some() {
            return Err(StoreError::Write("the reply's id is not kept for it".into()).into());
        }
        let message = Message {
            id: reply_id,
            chat_id: chat.id.clone(),
            author: Author::Agent(agent.to_string()),
            created: rfc3339(self.clock.now()),
            content: content.to_string(),
            visibility: to.visibility,
            audience: to.audience,
        };
        self.messages
            .insert_with(&key, &message, &self.chats, &chat.id, &chat)?;
        self.store.sync()?;
        Ok(message)
    }

    fn check_content(&self, content: &str) -> Result<(), ChatError> {
        if content.len() > self.limits.max_message {
            return Err(ChatError::TooLong {
                len: content.len(),
                limit: self.limits.max_message,
            });
        }
        if content.trim().is_empty() {
            return Err(ChatError::Empty);
        }
        Ok(())
    }

    /// Stores a message with the chat's next id; with `keep_next`, the id after it is
    /// kept (for a reply) and returned.
    fn insert(
        &self,
        id: &str,
        author: Author,
        content: &str,
        visibility: Visibility,
        keep_next: bool,
    ) -> Result<(Message, Option<u64>), ChatError> {
        self.check_content(content)?;
        let id = parse_chat_id(id)?;
        let _write = self.lock();
        let mut chat = self
            .chats
            .get(&id)?
            .ok_or_else(|| ChatError::NotFound(id.clone()))?;
        let message = Message {
            id: chat.next_message,
            chat_id: chat.id.clone(),
            author,
            created: rfc3339(self.clock.now()),
            content: content.to_string(),
            visibility,
            audience: None,
        };
        chat.next_message += 1;
        let kept = keep_next.then_some(chat.next_message);
        if keep_next {
            chat.next_message += 1;
        }
        self.messages.insert_with(
            &message_key(&chat.id, message.id),
            &message,
            &self.chats,
            &chat.id,
            &chat,
        )?;
        self.store.sync()?;
        Ok((message, kept))
    }

    /// The messages of a chat the viewer may see, newest first, before the message id
    /// `cursor`.
    pub fn history(
        &self,
        viewer: &Viewer,
        id: &str,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Page<Message>, ChatError> {
        let limit = self.page_size(limit)?;
        let before = match cursor {
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ChatError::BadCursor(short(text)))?,
            None => u64::MAX,
        };
        let chat = self.get(viewer, id)?;
        let prefix = format!("{}/", chat.id);
        let end = message_key(&chat.id, before);
        let mut items = Vec::new();
        let mut more = false;
        for entry in self.messages.iter_before(Some(&end)) {
            let (key, message) = entry?;
            if !key.starts_with(&prefix) {
                break;
            }
            if !may_see(viewer, &message) {
                continue;
            }
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(message);
        }
        let next = more
            .then(|| items.last().map(|m: &Message| m.id.to_string()))
            .flatten();
        Ok(Page { items, next })
    }

    /// What a turn `prompter` started sends the model: the chat's last `limit` messages
    /// of [`in_turn_context`], oldest first.
    pub fn turn_context(
        &self,
        prompter: &Viewer,
        id: &str,
        limit: usize,
    ) -> Result<Vec<Message>, ChatError> {
        self.context(id, limit, |message| in_turn_context(prompter, message))
    }

    fn context(
        &self,
        id: &str,
        limit: usize,
        keep: impl Fn(&Message) -> bool,
    ) -> Result<Vec<Message>, ChatError> {
        let chat = self.chat(id)?;
        let prefix = format!("{}/", chat.id);
        let end = message_key(&chat.id, u64::MAX);
        let mut items = Vec::new();
        for entry in self.messages.iter_before(Some(&end)) {
            let (key, message) = entry?;
            if !key.starts_with(&prefix) || items.len() == limit {
                break;
            }
            if keep(&message) {
                items.push(message);
            }
        }
        items.reverse();
        Ok(items)
    }

    fn page_size(&self, asked: Option<usize>) -> Result<usize, ChatError> {
        match asked {
            Some(0) => Err(ChatError::PageTooLarge {
                asked: 0,
                limit: self.limits.max_page,
            }),
            Some(n) if n > self.limits.max_page => Err(ChatError::PageTooLarge {
                asked: n,
                limit: self.limits.max_page,
            }),
            Some(n) => Ok(n),
            None => Ok(DEFAULT_PAGE.min(self.limits.max_page)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn parse_chat_id(text: &str) -> Result<String, ChatError> {
    if text.len() == 32
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(text.to_string())
    } else {
        Err(ChatError::InvalidId(short(text)))
    }
}

/// Message keys sort by chat, then by id: the id as fixed-width hex.
fn message_key(chat: &str, id: u64) -> String {
    format!("{chat}/{id:016x}")
}

/// A client's text, cut short for an error message.
fn short(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn chats(limits: ChatsConfig) -> (tempfile::TempDir, Chats) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let clock = Arc::new(crate::clock::SystemClock);
        let chats = Chats::open(&store, limits, clock).unwrap();
        (dir, chats)
    }

    fn limits() -> ChatsConfig {
        ChatsConfig {
            max_message: 100,
            max_page: 10,
            max_per_user: 3,
        }
    }

    fn viewer(user: &str, admin: bool) -> Viewer {
        Viewer {
            user: user.into(),
            device: None,
            admin,
        }
    }

    fn new_chat(members: &[&str]) -> NewChat {
        NewChat {
            title: "plans".into(),
            agent: "default".into(),
            members: members.iter().map(|m| m.to_string()).collect(),
        }
    }

    #[test]
    fn a_reply_is_as_visible_as_its_prompt_and_a_private_one_reaches_its_author() {
        let (_dir, chats) = chats(limits());
        let alice = viewer("alice", false);
        let bob = viewer("bob", false);
        let root = viewer("root", true);
        let phone = Viewer {
            device: Some("dev_1".into()),
            ..alice.clone()
        };
        let chat = chats.create("alice", new_chat(&["bob"])).unwrap();
        let mut replies = Vec::new();
        for (who, visibility) in [
            (&alice, Visibility::Public),
            (&alice, Visibility::Private),
            (&phone, Visibility::Private),
            (&alice, Visibility::AgentOnly),
        ] {
            let (prompt, reply_id) = chats.post_prompt(who, &chat.id, "q", visibility).unwrap();
            assert_eq!(reply_id, prompt.id + 1);
            let reply = chats
                .store_reply(
                    &chat.id,
                    reply_id,
                    "default",
                    "a",
                    reply_visibility(&prompt),
                )
                .unwrap();
            replies.push(reply.id);
            // The id is kept once: a second reply under it is refused.
            assert!(
                chats
                    .store_reply(
                        &chat.id,
                        reply_id,
                        "default",
                        "b",
                        reply_visibility(&prompt)
                    )
                    .is_err()
            );
        }
        let seen = |v: &Viewer| -> Vec<u64> {
            let page = chats.history(v, &chat.id, None, Some(10)).unwrap();
            let mut ids: Vec<u64> = page
                .items
                .iter()
                .map(|m| m.id)
                .filter(|id| replies.contains(id))
                .collect();
            ids.sort_unstable();
            ids
        };
        // Public: everyone; alice's private: alice only (not her phone); the phone's
        // private: the phone only; agent_only: nobody.
        assert_eq!(seen(&alice), [replies[0], replies[1]]);
        assert_eq!(seen(&phone), [replies[0], replies[2]]);
        assert_eq!(seen(&bob), [replies[0]]);
        assert_eq!(seen(&root), [replies[0]]);
        // A turn's model sees the prompts and replies its prompter may see, and the
        // agent_only exchange: never another person's private one.
        let context = |v: &Viewer| chats.turn_context(v, &chat.id, 100).unwrap().len();
        assert_eq!([context(&alice), context(&phone), context(&bob)], [6, 6, 4]);
    }

    #[test]
    fn visibility_decides_who_sees_what_and_the_model_sees_agent_only() {
        let (_dir, chats) = chats(limits());
        let alice = viewer("alice", false);
        let bob = viewer("bob", false);
        let root = viewer("root", true);
        let chat = chats.create("alice", new_chat(&["bob"])).unwrap();
        chats
            .post(&alice, &chat.id, "hello all", Visibility::Public)
            .unwrap();
        chats
            .post(&alice, &chat.id, "alice only", Visibility::Private)
            .unwrap();
        chats
            .post(&bob, &chat.id, "bob only", Visibility::Private)
            .unwrap();
        chats
            .post(&alice, &chat.id, "for the model", Visibility::AgentOnly)
            .unwrap();
        chats
            .post(&root, &chat.id, "admins", Visibility::AdminOnly)
            .unwrap();
        assert!(matches!(
            chats.post(&bob, &chat.id, "sneaky", Visibility::AdminOnly),
            Err(ChatError::VisibilityNotAllowed(Visibility::AdminOnly))
        ));
        let seen = |v: &Viewer| -> Vec<String> {
            let mut contents: Vec<String> = chats
                .history(v, &chat.id, None, None)
                .unwrap()
                .items
                .into_iter()
                .map(|m| m.content)
                .collect();
            contents.reverse();
            contents
        };
        assert_eq!(seen(&alice), ["hello all", "alice only"]);
        assert_eq!(seen(&bob), ["hello all", "bob only"]);
        assert_eq!(seen(&root), ["hello all", "admins"]);
        let context = |v: &Viewer| -> Vec<String> {
            chats
                .turn_context(v, &chat.id, 100)
                .unwrap()
                .into_iter()
                .map(|m| m.content)
                .collect()
        };
        assert_eq!(
            context(&alice),
            ["hello all", "alice only", "for the model"]
        );
        assert_eq!(context(&bob), ["hello all", "bob only", "for the model"]);
        assert_eq!(context(&root), ["hello all", "for the model"]);
        assert!(matches!(
            chats.history(&viewer("carol", false), &chat.id, None, None),
            Err(ChatError::NotFound(_))
        ));
    }

    #[test]
    fn paging_walks_every_visible_message_once_and_limits_hold() {
        let (_dir, chats) = chats(limits());
        let alice = viewer("alice", false);
        let chat = chats.create("alice", new_chat(&[])).unwrap();
        for n in 0..25 {
            chats
                .post(&alice, &chat.id, &format!("m{n}"), Visibility::Public)
                .unwrap();
        }
        let mut cursor = None;
        let mut seen = Vec::new();
        loop {
            let page = chats
                .history(&alice, &chat.id, cursor.as_deref(), Some(10))
                .unwrap();
            seen.extend(page.items.iter().map(|m| m.id));
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, (1..=25).rev().collect::<Vec<u64>>());
        assert!(matches!(
            chats.history(&alice, &chat.id, None, Some(11)),
            Err(ChatError::PageTooLarge { limit: 10, .. })
        ));
        assert!(matches!(
            chats.post(&alice, &chat.id, &"x".repeat(101), Visibility::Public),
            Err(ChatError::TooLong { limit: 100, .. })
        ));
        chats.create("alice", new_chat(&[])).unwrap();
        chats.create("alice", new_chat(&[])).unwrap();
        assert!(matches!(
            chats.create("alice", new_chat(&[])),
            Err(ChatError::TooManyChats { limit: 3, .. })
        ));
    }

    #[test]
    fn deleting_a_chat_removes_all_its_messages_and_only_its_own() {
        let (_dir, chats) = chats(limits());
        let alice = viewer("alice", false);
        let bob = viewer("bob", false);
        let gone = chats.create("alice", new_chat(&["bob"])).unwrap();
        let kept = chats.create("alice", new_chat(&[])).unwrap();
        for chat in [&gone, &kept] {
            for _ in 0..3 {
                chats
                    .post(&alice, &chat.id, "x", Visibility::Public)
                    .unwrap();
            }
        }
        assert!(matches!(
            chats.delete(&bob, &gone.id),
            Err(ChatError::NotOwner)
        ));
        chats.delete(&alice, &gone.id).unwrap();
        assert_eq!(chats.messages.len(), 3);
        assert!(matches!(
            chats.get(&alice, &gone.id),
            Err(ChatError::NotFound(_))
        ));
        assert!(matches!(
            chats.append(
                &gone.id,
                Author::Agent("default".into()),
                "late",
                Visibility::Public
            ),
            Err(ChatError::NotFound(_))
        ));
        assert_eq!(
            chats
                .history(&alice, &kept.id, None, None)
                .unwrap()
                .items
                .len(),
            3
        );
    }
}
