"""A real HTTP fake of the Telegram Bot API, for end-to-end tests of python-telegram-bot apps."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.error import HTTPError
from urllib.parse import parse_qsl, urlsplit
from urllib.request import Request, urlopen

J = dict[str, Any]  # a JSON object
Predicate = Callable[["Call"], bool] | str

# PTB form-encodes every non-string parameter as JSON (ints, bools, reply_markup, entities...),
# so form values are JSON-decoded, except free-text ones: a message "42" must stay a string.
_TEXT_KEYS = frozenset({"text", "caption", "data", "callback_query_id", "inline_message_id",
                        "url", "title", "description", "short_description", "name", "query",
                        "emoji", "first_name", "last_name"})
# Method prefixes that count as "sending to chat_id": a blocked chat answers 403 to them.
_SEND_PREFIXES = ("send", "copy", "forward", "edit")
_DESCRIPTIONS = {400: "Bad Request: injected failure",
                 403: "Forbidden: bot was blocked by the user", 500: "Internal Server Error"}
WEBHOOK_RETRY_SECONDS = 0.2  # Telegram backs off longer; tests want the retry soon
WEBHOOK_TIMEOUT_SECONDS = 30  # how long a post may take before it counts as failed
DELETABLE_SECONDS = 48 * 3600  # a message older than this cannot be deleted (deleteMessages skips it)
# Forum topics: the errors Telegram gives (tdlib/telegram-bot-api issues #472, #596; TOPIC_* are MTProto's names).
THREAD_NOT_FOUND = "Bad Request: message thread not found"  # sending to a deleted topic
TOPIC_ID_INVALID = "Bad Request: TOPIC_ID_INVALID"  # closing or reopening a deleted topic
TOPIC_CLOSED = "Bad Request: TOPIC_CLOSED"  # sending to a closed topic
TOPIC_NOT_MODIFIED = "Bad Request: TOPIC_NOT_MODIFIED"  # closing a closed topic, reopening an open one
NOT_A_FORUM = "Bad Request: the chat is not a forum"
NO_TOPIC_RIGHTS = "Bad Request: not enough rights to create a topic"
TOPIC_NAME_CHARS = 128
TOPIC_ICON_COLOR = 0x6FB9F0  # Telegram's first topic colour
_NOT_MODIFIED = ("Bad Request: message is not modified: specified new message content and reply "
                 "markup are exactly the same as a current content and reply markup of a message")


@dataclass
class Drop:
    """A connection closed without an answer; `delivered`: after carrying the call out (the ambiguous case)."""

    delivered: bool


@dataclass
class Stall:
    """An answer `seconds` late: longer than the client waits is a timeout (the call is still carried out)."""

    seconds: float


@dataclass
class Call:
    """One request the bot made; status and result stay None until the fake has answered it."""

    method: str
    params: J
    time: float
    status: int | None = None
    result: Any = None


class ApiError(Exception):
    """A Telegram error answer (status + JSON payload), raised by handlers or scripted."""

    def __init__(self, status: int, description: str, retry_after: int | None = None,
                 migrate_to_chat_id: int | None = None):
        super().__init__(description)
        self.status = status
        self.payload: J = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            self.payload["parameters"] = {"retry_after": retry_after}
        if migrate_to_chat_id is not None:
            self.payload["parameters"] = {"migrate_to_chat_id": migrate_to_chat_id}


def _decode(key: str, value: Any) -> Any:
    if not isinstance(value, str) or key in _TEXT_KEYS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value  # plain strings such as parse_mode="HTML" or action="typing"


def _parse_multipart(body: bytes, content_type: str) -> J:
    """Non-file parts as strings, file parts as their length in bytes."""
    boundary = content_type.split("boundary=", 1)[1].split(";")[0].strip('"').encode()
    fields: J = {}
    for part in body.split(b"--" + boundary)[1:]:
        if part.startswith(b"--"):  # the closing delimiter
            break
        head, _, data = part[2:].partition(b"\r\n\r\n")  # [2:] skips the CRLF after the boundary
        data = data[:-2]  # the CRLF before the next boundary belongs to the delimiter
        name = re.search(rb'\bname="([^"]*)"', head).group(1).decode()
        is_file = re.search(rb"\bfilename\*?=", head) is not None
        fields[name] = len(data) if is_file else data.decode("utf-8")
    return fields


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so a long poll that PTB cancels can't leave a
    # half-used keep-alive connection behind.
    protocol_version = "HTTP/1.0"
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if len(body) < length:  # the bot gave up half-way (a draft cut off by its reply): Telegram acts on no half
            self.close_connection = True  # of a request, and its params would be half of the bot's (no chat_id)
            return
        ctype = self.headers.get("Content-Type", "")
        url = urlsplit(self.path)
        params: J = dict(parse_qsl(url.query))
        if ctype.startswith("multipart/form-data"):  # PTB uses it only when uploading files
            params.update(_parse_multipart(body, ctype))
        elif ctype.startswith("application/json") and body:
            params.update(json.loads(body))
        elif body:
            params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        status, payload = self.server.fake._dispatch(url.path, {k: _decode(k, v)
                                                                for k, v in params.items()})
        if status is None:  # a dropped connection: closed without an answer
            self.close_connection = True
            return
        out = payload.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
        except OSError:
            pass  # the client hung up, e.g. PTB cancelled its long poll on shutdown

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # don't wait for long polls nobody listens to any more
    fake: FakeBotApi


class FakeBotApi:
    """In-process Telegram Bot API on 127.0.0.1; point PTB at it with base_url(f"{url}/bot")."""

    def __init__(self, token: str = "123:TEST", *, bot_username: str = "shopbot_test_bot"):
        self.token = token
        self.bot_id = int(token.split(":")[0])
        self.bot_user = {"id": self.bot_id, "is_bot": True, "first_name": "ShopBot",
                         "username": bot_username}
        # One RLock-backed condition guards all state and wakes long polls on new updates.
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._calls: list[Call] = []
        self._updates: list[J] = []
        self._messages: dict[tuple[int, int], J] = {}  # current state, edits applied
        self._sent: list[J] = []  # snapshots of what the bot sent, in order
        self._chats: dict[int, J] = {}
        self._next_mid: dict[int, int] = {}
        # [method, chat_id or None, remaining, ApiError | Drop | Stall, calls still let through before it]
        self._faults: list[list[Any]] = []
        self._delays: dict[str, float] = {}
        self._held: dict[tuple[str, int | None], list[Call]] = {}  # (method, chat) -> calls waiting for release()
        self._blocked: set[int] = set()
        self._migrated: dict[int, int] = {}  # a group's old id -> the supergroup it became
        self._forums: dict[int, bool] = {}  # forum supergroups -> whether the bot may manage topics there
        self._topics: dict[tuple[int, int], J] = {}  # (chat, message_thread_id) -> name, closed
        self._revoked = False
        self.injected: Counter[str] = Counter()  # faults carried out, by kind ("429", "500", "drop", "stall", "403")
        self._update_ids = itertools.count(1)
        self._ids = itertools.count(1)  # callback query ids and file ids
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        # Webhook mode (setWebhook): updates are posted to the bot one at a time, oldest first, until answered 2xx.
        self._webhook: J = {}  # url, secret_token, allowed_updates, max_connections; empty: polling
        self._webhook_error: tuple[int, str] | None = None  # (unix time, message) of the last failed post
        self._posts: list[tuple[J, int | str]] = []  # every post: (update, HTTP status or the connection error)
        self._delivered: list[J] = []  # updates the bot took (getUpdates results, posts answered 2xx), in order
        self._poster: threading.Thread | None = None

    def start(self) -> FakeBotApi:
        """Bind a free port and serve in a daemon thread."""
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self._poster = threading.Thread(target=self._post_updates, daemon=True)
        self._poster.start()
        return self

    def stop(self) -> None:
        """Wake pending long polls and delays, stop serving and free the port."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._poster.join(timeout=WEBHOOK_TIMEOUT_SECONDS)
            self._server = self._thread = self._poster = None

    def __enter__(self) -> FakeBotApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Root URL, e.g. http://127.0.0.1:PORT (the API lives under /bot<token>/)."""
        assert self._server, "FakeBotApi is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def delivered_updates(self) -> list[J]:
        """Updates the bot has taken, by getUpdates or by answering a webhook post 2xx, in order."""
        with self._cond:
            return copy.deepcopy(self._delivered)

    def webhook_posts(self) -> list[tuple[J, int | str]]:
        """Every webhook post so far: (the update, the bot's HTTP status or the connection error)."""
        with self._cond:
            return copy.deepcopy(self._posts)

    def post_to_webhook(self, update: J, secret_token: str | None) -> int:
        """Post an update to the registered webhook as anyone could (no retry); the HTTP status."""
        return self._post(self._webhook["url"], update, secret_token)

    def calls(self, method: str | None = None) -> list[Call]:
        """All calls so far (including failed and in-flight ones), optionally of one method."""
        with self._cond:
            return [c for c in self._calls if method is None or c.method == method]

    def sent_messages(self, chat_id: int | None = None) -> list[J]:
        """Messages the bot sent (send*/copy/forward) as they were when sent, in order."""
        with self._cond:
            return [copy.deepcopy(m) for m in self._sent if chat_id in (None, m["chat"]["id"])]

    def message(self, chat_id: int, message_id: int) -> J | None:
        """Current state of any message (edits applied), or None if unknown or deleted."""
        with self._cond:
            return copy.deepcopy(self._messages.get((chat_id, message_id)))

    def last_message_id(self, chat_id: int) -> int:
        """The newest message_id in a chat, whoever sent it (0 if none)."""
        with self._cond:
            return self._next_mid.get(chat_id, 0)

    def _poll(self, predicate: Predicate, count: int, deadline: float, timeout: float) -> Any:
        if isinstance(predicate, str):
            method = predicate
            predicate = lambda c: c.method == method and c.status == 200  # noqa: E731
        with self._cond:
            # Answered calls only: once wait_for returns, results are in sent_messages too.
            hits = [c for c in self._calls if c.status is not None and predicate(c)]
        if len(hits) >= count:
            return hits
        if time.monotonic() > deadline:
            recent = [c for c in self.calls() if c.method != "getUpdates"][-15:]
            dump = "\n".join(f"  {c.method} -> {c.status} {c.params}" for c in recent)
            raise AssertionError(f"no {count} matching call(s) within {timeout}s; "
                                 f"recent calls:\n{dump or '  (none)'}")
        return None

    async def wait_for(self, predicate: Predicate, timeout: float = 10.0, *,
                       count: int = 1) -> list[Call]:
        """Await >= count answered calls matching predicate (a method name: its OK calls)."""
        deadline = time.monotonic() + timeout
        while (hits := self._poll(predicate, count, deadline, timeout)) is None:
            await asyncio.sleep(0.02)
        return hits

    def wait_for_sync(self, predicate: Predicate, timeout: float = 10.0, *,
                      count: int = 1) -> list[Call]:
        """Blocking twin of wait_for, for sync tests."""
        deadline = time.monotonic() + timeout
        while (hits := self._poll(predicate, count, deadline, timeout)) is None:
            time.sleep(0.02)
        return hits

    def fail_next(self, method: str, *, status: int = 429, retry_after: int | None = None,
                  description: str | None = None, count: int = 1,
                  chat_id: int | None = None, after: int = 0) -> None:
        """Make the next `count` calls of method (optionally only to chat_id) fail, once `after` such calls went
        through (a long reply's second piece failing after its first arrived)."""
        if status == 429:
            retry_after = retry_after or 1  # PTB raises RetryAfter only for a non-zero value
            description = description or f"Too Many Requests: retry after {retry_after}"
        error = ApiError(status, description or _DESCRIPTIONS.get(status, f"Error {status}"),
                         retry_after)
        with self._cond:
            self._faults.append([method, chat_id, count, error, after])

    def drop_next(self, method: str, *, delivered: bool = False, count: int = 1,
                  chat_id: int | None = None) -> None:
        """Close the connection of the next `count` calls of method without answering; with delivered=True
        the call is carried out first (Telegram took the message, the answer was lost)."""
        with self._cond:
            self._faults.append([method, chat_id, count, Drop(delivered), 0])

    def stall_next(self, method: str, seconds: float, *, count: int = 1, chat_id: int | None = None) -> None:
        """Answer the next `count` calls of method `seconds` late (carried out all the same): a read timeout."""
        with self._cond:
            self._faults.append([method, chat_id, count, Stall(seconds), 0])

    def revoke_token(self) -> None:
        """Every call answers 401 Unauthorized from now on, as when the owner revokes the token in @BotFather."""
        with self._cond:
            self._revoked = True

    def delay(self, method: str, seconds: float) -> None:
        """Answer method only after `seconds` (0 removes the delay)."""
        with self._cond:
            self._delays[method] = seconds

    def hold(self, method: str, chat_id: int | None = None) -> None:
        """Calls of method (to chat_id, or any) wait unanswered until release(): requests stuck on their way."""
        with self._cond:
            self._held.setdefault((method, chat_id), [])

    def release(self, method: str, chat_id: int | None = None, *, deliver: bool = True) -> int:
        """Answer the held calls: carry them out, or (deliver=False) answer 502 without carrying them out,
        as if they never reached Telegram (e.g. the bot was killed mid-request). Returns how many were held."""
        with self._cond:
            calls = self._held.pop((method, chat_id), [])
            for call in calls if not deliver else ():
                call.status = 502
            self._cond.notify_all()
            return len(calls)

    def block_chat(self, chat_id: int) -> None:
        """Every send/edit/copy/forward to chat_id answers 403 until unblock_chat."""
        with self._cond:
            self._blocked.add(chat_id)

    def unblock_chat(self, chat_id: int) -> None:
        """Undo block_chat."""
        with self._cond:
            self._blocked.discard(chat_id)

    def make_forum(self, chat_id: int, *, can_manage_topics: bool = True) -> None:
        """The supergroup has topics turned on (is_forum); the bot is an admin with or without "Manage topics"."""
        with self._cond:
            self._forums[chat_id] = can_manage_topics

    def topics(self, chat_id: int) -> dict[int, J]:
        """The chat's forum topics now, by message_thread_id: {"name", "closed"}; deleted ones are gone."""
        with self._cond:
            return {thread: copy.deepcopy(t) for (chat, thread), t in self._topics.items() if chat == chat_id}

    def delete_topic(self, chat_id: int, thread_id: int) -> None:
        """An admin deletes the topic in the app: it and its messages are gone."""
        with self._cond:
            self._api_deleteForumTopic({"chat_id": chat_id, "message_thread_id": thread_id})

    def backdate(self, chat_id: int, message_id: int, hours: float) -> None:
        """The message was sent `hours` earlier than it was."""
        with self._cond:
            self._messages[chat_id, message_id]["date"] -= int(hours * 3600)

    def migrate_chat(self, chat_id: int, to_chat_id: int) -> None:
        """The group became a supergroup: every send/edit/copy/forward to its old id answers 400 with
        migrate_to_chat_id, as Telegram does (no service message is queued: the bot missed it)."""
        with self._cond:
            self._migrated[chat_id] = to_chat_id

    def _take_fault(self, method: str, chat_id: Any) -> ApiError | Drop | Stall | None:
        if chat_id in self._migrated and method.startswith(_SEND_PREFIXES):
            return ApiError(400, "Bad Request: group chat was upgraded to a supergroup chat",
                            migrate_to_chat_id=self._migrated[chat_id])
        if chat_id in self._blocked and method.startswith(_SEND_PREFIXES):
            self.injected["403"] += 1
            return ApiError(403, _DESCRIPTIONS[403])
        for fault in self._faults:
            if fault[0] == method and fault[1] in (None, chat_id):
                if fault[4]:  # this call still goes through
                    fault[4] -= 1
                    return None
                fault[2] -= 1
                if fault[2] <= 0:
                    self._faults.remove(fault)
                error = fault[3]
                self.injected[str(error.status) if isinstance(error, ApiError) else type(error).__name__.lower()] += 1
                return error
        return None

    def queue_raw_update(self, update: J) -> int:
        """Queue any update dict (update_id is added if missing); returns its update_id."""
        with self._cond:
            update = {"update_id": next(self._update_ids), **update}
            self._updates.append(update)
            self._cond.notify_all()  # wake a waiting getUpdates right away
            return update["update_id"]

    def send_text(self, chat_id: int, text: str, *, user_id: int | None = None,
                  first_name: str = "Ann", username: str | None = None,
                  chat_type: str = "private", reply_to_message_id: int | None = None,
                  thread_id: int | None = None, language_code: str | None = None) -> int:
        """A user writes text (in forum topic `thread_id`, if given); returns the update_id (user_id defaults to
        chat_id if private; language_code: their app's language)."""
        return self._user_message(chat_id, {"text": text}, user_id=user_id,
                                  first_name=first_name, username=username, chat_type=chat_type,
                                  reply_to_message_id=reply_to_message_id, thread_id=thread_id,
                                  language_code=language_code)

    def send_command(self, chat_id: int, command: str, args: str = "", **sender: Any) -> int:
        """A user sends /command [args] with a bot_command entity (sender: as send_text)."""
        cmd = "/" + command.lstrip("/")
        entity = {"type": "bot_command", "offset": 0, "length": len(cmd)}
        fields = {"text": f"{cmd} {args}".rstrip(), "entities": [entity]}
        return self._user_message(chat_id, fields, **sender)

    def send_photo(self, chat_id: int, caption: str | None = None, media_group_id: str | None = None,
                   **sender: Any) -> int:
        """A user sends a photo in two sizes, optionally captioned; with media_group_id, one photo of an album
        (Telegram sends an album as one message per photo, sharing that id)."""
        sizes = [{**self._file("photo"), "width": w, "height": w * 3 // 4, "file_size": w * 99}
                 for w in (90, 800)]
        album = {"media_group_id": media_group_id} if media_group_id else {}
        return self._user_message(chat_id, {"photo": sizes, "caption": caption, **album}, **sender)

    def send_sticker(self, chat_id: int, emoji: str = "👍", **sender: Any) -> int:
        """A user sends a regular static sticker."""
        sticker = {**self._file("sticker"), "width": 512, "height": 512, "is_animated": False,
                   "is_video": False, "type": "regular", "emoji": emoji}
        return self._user_message(chat_id, {"sticker": sticker}, **sender)

    def send_location(self, chat_id: int, latitude: float = 52.52, longitude: float = 13.405,
                      **sender: Any) -> int:
        """A user shares a location."""
        location = {"latitude": latitude, "longitude": longitude}
        return self._user_message(chat_id, {"location": location}, **sender)

    def send_voice(self, chat_id: int, duration: int = 3, **sender: Any) -> int:
        """A user sends a voice note."""
        voice = {**self._file("voice"), "duration": duration, "mime_type": "audio/ogg"}
        return self._user_message(chat_id, {"voice": voice}, **sender)

    def send_document(self, chat_id: int, file_name: str = "order.pdf",
                      caption: str | None = None, **sender: Any) -> int:
        """A user sends a document."""
        doc = {**self._file("doc"), "file_name": file_name, "mime_type": "application/pdf"}
        return self._user_message(chat_id, {"document": doc, "caption": caption}, **sender)

    def edit_text(self, chat_id: int, message_id: int, new_text: str) -> int:
        """A user edits one of their text messages: an edited_message update."""
        with self._cond:
            msg = self._messages.get((chat_id, message_id))
            if msg is None or msg["from"]["id"] == self.bot_id:
                raise AssertionError(f"no user message {message_id} in chat {chat_id}")
            msg.update(text=new_text, edit_date=int(time.time()))
            return self.queue_raw_update({"edited_message": copy.deepcopy(msg)})

    def press_button(self, chat_id: int, message_id: int, data: str, *,
                     user_id: int | None = None, first_name: str = "Ann",
                     username: str | None = None) -> int:
        """A user presses an inline button on a message the bot sent: a callback_query update."""
        with self._cond:
            msg = self._messages.get((chat_id, message_id))
            if msg is None or msg["from"]["id"] != self.bot_id:
                sent = [(m["chat"]["id"], m["message_id"], m.get("text")) for m in self._sent]
                raise AssertionError(f"bot message {message_id} not in chat {chat_id}: {sent}")
            private = self._chat(chat_id)["type"] == "private"
            user = self._user(user_id or (chat_id if private else 1), first_name, username)
            query = {"id": str(next(self._ids)), "chat_instance": f"ci{chat_id}", "data": data,
                     "from": user, "message": copy.deepcopy(msg)}
            return self.queue_raw_update({"callback_query": query})

    def _file(self, kind: str) -> J:
        fid = f"{kind}{next(self._ids)}"
        return {"file_id": fid, "file_unique_id": f"u{fid}"}

    @staticmethod
    def _user(user_id: int, first_name: str, username: str | None, language_code: str | None = None) -> J:
        user = {"id": user_id, "is_bot": False, "first_name": first_name}
        user = {**user, "language_code": language_code} if language_code else user
        return {**user, "username": username} if username else user

    def _user_message(self, chat_id: int, fields: J, *, user_id: int | None = None,
                      first_name: str = "Ann", username: str | None = None,
                      chat_type: str = "private", reply_to_message_id: int | None = None,
                      thread_id: int | None = None, language_code: str | None = None) -> int:
        private = chat_type == "private"
        user = self._user(user_id or (chat_id if private else 1), first_name, username, language_code)
        with self._cond:
            self._chats[chat_id] = {"id": chat_id, "type": chat_type,
                                    **({"first_name": first_name} if private
                                       else {"title": "Test group"})}
            if thread_id is not None:
                assert (chat_id, thread_id) in self._topics, f"no topic {thread_id} in chat {chat_id}"
                reply_to_message_id = self._in_topic(fields, thread_id, reply_to_message_id)
            fields["reply_to_message"] = self._reply_target(chat_id, reply_to_message_id)
            msg = self._new_message(chat_id, user, fields)
            return self.queue_raw_update({"message": copy.deepcopy(msg)})

    def _chat(self, chat_id: int) -> J:
        default = {"id": chat_id, "type": "private" if chat_id > 0 else "group"}
        chat = self._chats.get(chat_id, default)
        return {**chat, "type": "supergroup", "is_forum": True} if chat_id in self._forums else chat

    @staticmethod
    def _in_topic(fields: J, thread_id: int, reply_to: Any) -> int:
        """A message in a forum topic; as on Telegram, one that replies to nothing replies to the topic's first
        (service) message, whose id is the thread id. Returns the message it replies to."""
        fields.update(message_thread_id=thread_id, is_topic_message=True)
        return int(reply_to or thread_id)

    def _reply_target(self, chat_id: int, message_id: Any) -> J | None:
        target = self._messages.get((chat_id, int(message_id or 0)))
        # Telegram never nests replies more than one level deep.
        return {k: v for k, v in target.items() if k != "reply_to_message"} if target else None

    def _new_message(self, chat_id: int, sender: J, fields: J) -> J:
        # One counter per chat for both sides, so user and bot message_ids never collide.
        mid = self._next_mid[chat_id] = self._next_mid.get(chat_id, 0) + 1
        msg = {"message_id": mid, "date": int(time.time()), "chat": self._chat(chat_id),
               "from": sender, **{k: v for k, v in fields.items() if v is not None}}
        self._messages[(chat_id, mid)] = msg
        return msg

    def _dispatch(self, path: str, params: J) -> tuple[int | None, str]:
        """(HTTP status, JSON body) for one request; status None: close the connection without an answer."""
        prefix, _, method = path.rpartition("/")
        if not prefix.endswith(f"/bot{self.token}"):  # wrong token or base_url: InvalidToken
            return 404, json.dumps({"ok": False, "error_code": 404, "description": "Not Found"})
        if self._revoked:
            return 401, json.dumps({"ok": False, "error_code": 401, "description": "Unauthorized"})
        call = Call(method, params, time.time())
        with self._cond:
            self._calls.append(call)
            delay = self._delays.get(method, 0)
        if delay:
            self._stopping.wait(delay)  # an Event, so stop() cuts the delay short
        with self._cond:
            held = next((k for k in ((method, params.get("chat_id")), (method, None)) if k in self._held), None)
            if held:
                self._held[held].append(call)
                self._cond.wait_for(lambda: held not in self._held or self._stopping.is_set())
                if call.status == 502:  # dropped by release(deliver=False)
                    return 502, json.dumps({"ok": False, "error_code": 502, "description": "Bad Gateway"})
            try:
                fault = self._take_fault(method, params.get("chat_id"))
                if isinstance(fault, ApiError):
                    raise fault
                if isinstance(fault, Drop) and not fault.delivered:
                    call.status = 0
                    return None, ""
                handler = getattr(self, f"_api_{method}", None)
                # Methods without a handler (answerCallbackQuery, sendChatAction, setMyCommands,
                # deleteMyCommands, close, logOut, anything new) just answer True.
                result = handler(params) if handler else True
                call.status, call.result = 200, copy.deepcopy(result)
                if isinstance(fault, Drop):
                    return None, ""
                if isinstance(fault, Stall):
                    self._cond.wait_for(self._stopping.is_set, fault.seconds)  # the lock is free meanwhile
                return 200, json.dumps({"ok": True, "result": result})
            except (KeyError, ValueError, TypeError) as exc:  # missing or malformed parameter
                error = ApiError(400, f"Bad Request: {exc!r}")
            except ApiError as exc:
                error = exc
            call.status = error.status
            return error.status, json.dumps(error.payload)

    def _api_getMe(self, p: J) -> J:
        return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False}

    def _api_getUpdates(self, p: J) -> list[J]:
        if self._webhook:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first")
        offset, limit = int(p.get("offset") or 0), int(p.get("limit") or 100)
        if offset:  # an offset confirms (drops) every update below it
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        # Long poll: Condition.wait releases the lock; queue_raw_update and stop() notify us.
        self._cond.wait_for(lambda: self._updates or self._stopping.is_set(),
                            float(p.get("timeout") or 0))
        fresh = [u for u in self._updates[:limit] if u not in self._delivered]
        self._delivered.extend(copy.deepcopy(fresh))
        return self._updates[:limit]

    def _api_setWebhook(self, p: J) -> bool:
        if not str(p.get("url", "")).startswith(("http://", "https://")):
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        if p.get("drop_pending_updates"):
            self._updates.clear()
        self._webhook = {"url": p["url"], **{k: p[k] for k in ("secret_token", "allowed_updates",
                                                              "max_connections") if k in p}}
        self._webhook_error = None
        self._cond.notify_all()  # the poster starts posting what is pending
        return True

    def _api_deleteWebhook(self, p: J) -> bool:
        if p.get("drop_pending_updates"):
            self._updates.clear()
        self._webhook = {}
        return True

    def _api_getWebhookInfo(self, p: J) -> J:
        info = {"url": self._webhook.get("url", ""), "has_custom_certificate": False,
                "pending_update_count": len(self._updates)}
        if self._webhook_error:
            info.update(last_error_date=self._webhook_error[0], last_error_message=self._webhook_error[1])
        return info

    def _post_updates(self) -> None:
        """The webhook side of Telegram: post the oldest pending update until the bot answers 2xx, then the next."""
        while not self._stopping.is_set():
            with self._cond:
                self._cond.wait_for(lambda: (self._webhook and self._updates) or self._stopping.is_set())
                if self._stopping.is_set():
                    return
                update, webhook = copy.deepcopy(self._updates[0]), dict(self._webhook)
            try:
                outcome: int | str = self._post(webhook["url"], update, webhook.get("secret_token"))
            except OSError as exc:  # refused, reset, timed out: the bot is not there
                outcome = str(getattr(exc, "reason", exc))
            with self._cond:
                self._posts.append((update, outcome))
                if isinstance(outcome, int) and 200 <= outcome < 300:
                    self._updates = [u for u in self._updates if u["update_id"] != update["update_id"]]
                    self._delivered.append(update)
                    continue
                error = f"Wrong response from the webhook: {outcome}" if isinstance(outcome, int) else outcome
                self._webhook_error = (int(time.time()), error)
            self._stopping.wait(WEBHOOK_RETRY_SECONDS)

    @staticmethod
    def _post(url: str, update: J, secret_token: str | None) -> int:
        headers = {"Content-Type": "application/json"}
        if secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret_token
        request = Request(url, json.dumps(update).encode(), headers, method="POST")
        try:
            with urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
                return response.status
        except HTTPError as exc:
            return exc.code

    def _api_getChat(self, p: J) -> J:
        # ChatFullInfo requires a few fields beyond Chat's id and type.
        gifts = dict.fromkeys(("unlimited_gifts", "limited_gifts", "unique_gifts",
                               "premium_subscription", "gifts_from_channels"), False)
        return {**self._chat(p["chat_id"]), "accent_color_id": 0, "max_reaction_count": 11,
                "accepted_gift_types": gifts}

    def _api_getChatMember(self, p: J) -> J:
        name = self._chats.get(p["user_id"], {}).get("first_name", "Ann")
        return {"status": "member", "user": self._user(p["user_id"], name, None)}

    @staticmethod
    def _inline_markup(p: J) -> J | None:
        # Telegram echoes only inline keyboards; a ReplyKeyboardMarkup in a Message breaks PTB.
        markup = p.get("reply_markup")
        return markup if isinstance(markup, dict) and "inline_keyboard" in markup else None

    def _bot_message(self, p: J, fields: J) -> J:
        chat_id = p["chat_id"]
        if not isinstance(chat_id, int):
            raise ApiError(400, "Bad Request: chat not found")
        # PTB turns reply_to_message_id into reply_parameters; accept both.
        reply_id = p.get("reply_to_message_id") or (p.get("reply_parameters") or {}).get(
            "message_id")
        thread_id = p.get("message_thread_id")
        if thread_id is not None:
            topic = self._topics.get((chat_id, thread_id))
            if topic is None:
                raise ApiError(400, THREAD_NOT_FOUND)
            if topic["closed"]:
                raise ApiError(400, TOPIC_CLOSED)
            reply_id = self._in_topic(fields, thread_id, reply_id)
        fields.update(reply_markup=self._inline_markup(p),
                      reply_to_message=self._reply_target(chat_id, reply_id))
        msg = self._new_message(chat_id, self.bot_user, fields)
        self._sent.append(copy.deepcopy(msg))
        return msg

    def _api_sendMessage(self, p: J) -> J:
        return self._bot_message(p, {"text": p["text"], "entities": p.get("entities")})

    def _api_sendPhoto(self, p: J) -> J:
        size = p["photo"] if isinstance(p["photo"], int) else None  # an upload's byte length
        photo = [{**self._file("botphoto"), "width": 800, "height": 600, "file_size": size}]
        return self._bot_message(p, {"photo": photo, "caption": p.get("caption")})

    def _api_sendDocument(self, p: J) -> J:
        doc = {**self._file("botdoc"), "file_name": "document"}
        return self._bot_message(p, {"document": doc, "caption": p.get("caption")})

    def _source(self, p: J, verb: str) -> J:
        source = self._messages.get((p["from_chat_id"], p["message_id"]))
        if source is None:
            raise ApiError(400, f"Bad Request: message to {verb} not found")
        skip = {"message_id", "date", "chat", "from", "reply_to_message", "edit_date"}
        return {k: copy.deepcopy(v) for k, v in source.items() if k not in skip}

    def _api_copyMessage(self, p: J) -> J:
        fields = {**self._source(p, "copy"), **{k: p[k] for k in ("caption",) if k in p}}
        return {"message_id": self._bot_message(p, fields)["message_id"]}  # a MessageId

    def _api_forwardMessage(self, p: J) -> J:
        origin = {"type": "hidden_user", "date": int(time.time()), "sender_user_name": "Ann"}
        return self._bot_message(p, {**self._source(p, "forward"), "forward_origin": origin})

    def _edit(self, p: J, text: str | None) -> J | bool:
        if "inline_message_id" in p:
            return True
        msg = self._messages.get((p.get("chat_id"), p.get("message_id")))
        if msg is None or msg["from"]["id"] != self.bot_id:
            raise ApiError(400, "Bad Request: message to edit not found")
        markup = self._inline_markup(p)
        if text in (None, msg.get("text")) and markup == msg.get("reply_markup"):
            raise ApiError(400, _NOT_MODIFIED)  # a classic PTB pitfall, worth reproducing
        if text is not None:
            msg["text"] = text
        # As on Telegram, an edit without reply_markup removes the inline keyboard.
        msg.pop("reply_markup", None)
        msg.update(edit_date=int(time.time()), **({"reply_markup": markup} if markup else {}))
        return msg

    def _api_editMessageText(self, p: J) -> J | bool:
        return self._edit(p, p["text"])

    def _api_editMessageReplyMarkup(self, p: J) -> J | bool:
        return self._edit(p, None)

    def _topic(self, p: J) -> J:
        topic = self._topics.get((p["chat_id"], p["message_thread_id"]))
        if topic is None:
            raise ApiError(400, TOPIC_ID_INVALID)
        return topic

    def _api_createForumTopic(self, p: J) -> J:
        chat_id, name = p["chat_id"], p["name"]
        if chat_id not in self._forums:
            raise ApiError(400, NOT_A_FORUM)
        if not self._forums[chat_id]:
            raise ApiError(400, NO_TOPIC_RIGHTS)
        if not 1 <= len(name) <= TOPIC_NAME_CHARS:
            raise ApiError(400, "Bad Request: TOPIC_NAME_INVALID")
        # The topic's first message is the service message announcing it; its id is the topic's thread id.
        created = {"name": name, "icon_color": TOPIC_ICON_COLOR}
        thread_id = self._next_mid.get(chat_id, 0) + 1
        self._new_message(chat_id, self.bot_user, {"forum_topic_created": created, "message_thread_id": thread_id,
                                                   "is_topic_message": True})
        self._topics[(chat_id, thread_id)] = {"name": name, "closed": False}
        return {"message_thread_id": thread_id, **created}

    def _set_closed(self, p: J, closed: bool) -> bool:
        topic = self._topic(p)
        if topic["closed"] == closed:
            raise ApiError(400, TOPIC_NOT_MODIFIED)
        topic["closed"] = closed
        return True

    def _api_closeForumTopic(self, p: J) -> bool:
        return self._set_closed(p, True)

    def _api_reopenForumTopic(self, p: J) -> bool:
        return self._set_closed(p, False)

    def _api_deleteForumTopic(self, p: J) -> bool:
        chat_id, thread_id = p["chat_id"], p["message_thread_id"]
        self._topic(p)
        del self._topics[(chat_id, thread_id)]
        for key in [k for k, m in self._messages.items() if k[0] == chat_id and m.get("message_thread_id") == thread_id]:
            del self._messages[key]
        return True

    def _api_deleteMessages(self, p: J) -> bool:
        # Telegram skips the ids it cannot find (deleted already, or inside a deleted topic) or may no longer delete.
        ids = p["message_ids"]
        if not 1 <= len(ids) <= 100:
            raise ApiError(400, "Bad Request: too many messages to delete")
        for message_id in ids:
            message = self._messages.get((p["chat_id"], message_id))
            if message is not None and time.time() - message["date"] < DELETABLE_SECONDS:
                del self._messages[p["chat_id"], message_id]
        return True

    def _api_deleteMessage(self, p: J) -> bool:
        if self._messages.pop((p["chat_id"], p["message_id"]), None) is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        return True
