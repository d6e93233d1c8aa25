//! The live page's script (`assets/chat.js`) under node, in the sdk's stand-in for a browser
//! (`onionhost_sdk::testing::script_test`): what it shows when the connection comes and
//! goes, the people list while disconnected, following new lines, and Enter on a touch
//! screen. Regressions of issue 12, seen in a real browser. Needs `node`.

use onionhost_sdk::testing::script_test;

const CHAT_JS: &str = include_str!("../assets/chat.js");

/// The live page's elements, as `page.rs` renders them, and a helper that welcomes the page.
const SETUP: &str = r#"
function livePage(options) {
  const browser = page(
    {
      app: "main", status: "p", log: "ol", "send-form": "form", text: "textarea",
      "send-button": "button", "enter-hint": "p", people: "aside", count: "span",
      "people-stale": "p", members: "ul", "rename-form": "form", name: "input",
      "rename-button": "button", "nojs-link": "span",
    },
    { text: "send-form", "send-button": "send-form", name: "rename-form" },
    options
  );
  browser.byId.app.hidden = true;
  browser.byId["nojs-link"].hidden = true;
  browser.byId.status.hidden = true;
  browser.byId["people-stale"].hidden = true;
  return browser.run(...SCRIPTS);
}

function welcome(socket, you, members) {
  socket.open();
  socket.receive({
    type: "welcome", you, resume: "r", members, present: members.length,
    max_message_bytes: 4096, title: "room",
  });
}

function last(element) {
  const all = lines(element);
  return all[all.length - 1];
}
"#;

fn run(test: &str) {
    script_test(&[CHAT_JS], &format!("{SETUP}\n{test}"));
}

/// The page shows itself and its footer's link to the page without JavaScript (hidden when
/// the script does not run, since `/` already is that page then), and joins.
#[test]
fn the_page_shows_itself_and_joins() {
    run(r#"
const b = livePage();
assert.strictEqual(b.byId.app.hidden, false);
assert.strictEqual(b.byId["nojs-link"].hidden, false);
assert.strictEqual(b.sockets.length, 1);
assert.match(b.byId.status.textContent, /Connecting/);
assert.strictEqual(b.byId.status.hidden, false);
welcome(b.sockets[0], "ann", ["ann", "bo"]);
assert.deepStrictEqual(b.sockets[0].sent[0], { type: "join" });
assert.strictEqual(b.byId.status.hidden, true);
assert.match(last(b.byId.log), /You are in the room as ann\./);
assert.strictEqual(b.byId.count.textContent, "2");
assert.strictEqual(b.byId.text.disabled, false);
"#);
}

/// Regression: "Disconnected..." was small grey text under the title, the people list looked
/// current while disconnected, and after the reconnect nothing said that messages may have
/// been missed.
#[test]
fn a_lost_connection_is_a_notice_the_list_goes_stale_and_the_reconnect_says_what_was_missed() {
    run(r#"
const b = livePage();
welcome(b.sockets[0], "ann", ["ann", "bo"]);
b.sockets[0].close(1006);
const status = b.byId.status;
assert.strictEqual(status.hidden, false);
assert.strictEqual(status.className, "note error");
assert.match(status.textContent, /^Disconnected\. Reconnecting in \d+ s… Messages said meanwhile will not be shown\.$/);
assert.ok(b.byId.people.classList.contains("stale"), "the list is marked stale");
assert.strictEqual(b.byId["people-stale"].hidden, false);
assert.strictEqual(b.byId.text.disabled, true);

assert.strictEqual(b.runTimers(), 1, "a retry is scheduled");
assert.strictEqual(b.sockets.length, 2);
welcome(b.sockets[1], "ann", ["ann"]);
assert.deepStrictEqual(b.sockets[1].sent[0], { type: "join", name: "ann", resume: "r" });
assert.strictEqual(status.hidden, true);
assert.ok(!b.byId.people.classList.contains("stale"));
assert.strictEqual(b.byId["people-stale"].hidden, true);
assert.match(last(b.byId.log), /Reconnected as ann\. .*you may have missed some\./);
"#);
}

/// Regression: "The chat has stopped." did not say what to do.
#[test]
fn the_stopped_notice_says_what_to_do_and_offers_a_reload() {
    run(r#"
const b = livePage();
welcome(b.sockets[0], "ann", ["ann"]);
b.sockets[0].close(1001);
const status = b.byId.status;
assert.strictEqual(status.className, "note error");
assert.match(status.textContent, /The chat has stopped: .* Reload later/);
const button = status.elements.find((e) => e.tagName === "BUTTON");
assert.ok(button, "a Reload button");
assert.strictEqual(button.textContent, "Reload");
button.dispatch("click");
assert.strictEqual(b.reloads, 1);
assert.strictEqual(b.runTimers(), 0, "no retry after a stop");
"#);
}

/// Regression: auto-scroll did nothing. The list follows new lines while the visitor reads
/// its end, stays put while they read further up, and always follows their own message.
#[test]
fn the_list_follows_new_lines_at_its_end_only() {
    run(r#"
const b = livePage();
const log = b.byId.log;
welcome(b.sockets[0], "ann", ["ann", "bo"]);
for (let i = 0; i < 30; i++) {
  b.sockets[0].receive({ type: "message", from: "bo", text: "line " + i });
}
assert.strictEqual(log.scrollTop, log.scrollHeight, "followed to the end");
log.scrollTop = 0;
b.sockets[0].receive({ type: "message", from: "bo", text: "while reading up" });
assert.strictEqual(log.scrollTop, 0, "stays where the visitor reads");
b.sockets[0].receive({ type: "message", from: "ann", text: "mine" });
assert.strictEqual(log.scrollTop, log.scrollHeight, "follows the visitor's own line");
const mine = log.elements[log.elements.length - 1];
assert.strictEqual(mine.className, "msg mine");
assert.strictEqual(mine.elements[0].tagName, "TIME", "each line starts with its time");
"#);
}

/// Regression: the "Enter sends" hint showed on phones. On a touch screen Enter makes a new
/// line (the style sheet hides the hint); elsewhere it sends.
#[test]
fn enter_sends_except_on_a_touch_screen() {
    run(r#"
function typeAndPressEnter(b) {
  welcome(b.sockets[0], "ann", ["ann"]);
  b.byId.text.value = "hello";
  return b.byId.text.dispatch("keydown", { key: "Enter", shiftKey: false, isComposing: false });
}
const desk = livePage();
const pressed = typeAndPressEnter(desk);
assert.ok(pressed.defaultPrevented);
assert.deepStrictEqual(desk.sockets[0].sent[1], { type: "send", text: "hello" });
assert.strictEqual(desk.byId.text.value, "");

const phone = livePage({ media: { "(hover: none) and (pointer: coarse)": true } });
const tapped = typeAndPressEnter(phone);
assert.ok(!tapped.defaultPrevented, "Enter makes a new line");
assert.strictEqual(phone.sockets[0].sent.length, 1, "nothing sent but the join");
"#);
    let css = include_str!("../assets/chat.css");
    let touch = css
        .split("@media (hover: none) and (pointer: coarse)")
        .nth(1)
        .expect("a rule for touch screens");
    assert!(
        touch
            .trim_start()
            .starts_with("{\n  .enter-hint {\n    display: none;"),
        "{touch}"
    );
}
