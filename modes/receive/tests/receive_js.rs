//! The form's script (`assets/receive.js`, after the sdk's `bytes.js`) under node, in the
//! sdk's stand-in for a browser (`onionhost_sdk::testing::script_test`): dropping files on
//! the form, a bar per file, and the answers as notices. Regressions of issue 12. Needs
//! `node`.

use onionhost_sdk::testing::script_test;

const RECEIVE_JS: &str = include_str!("../assets/receive.js");

/// The form page's elements, as `page.rs` renders them.
const SETUP: &str = r#"
function formPage() {
  const browser = page(
    {
      "upload-form": "form", drop: "div", files: "input", "drop-hint": "p", chosen: "ul",
      text: "textarea", send: "button", progress: "div", bar: "progress",
      "progress-text": "p", "file-progress": "ul", result: "div",
    },
    {
      drop: "upload-form", files: "drop", "drop-hint": "drop", chosen: "drop",
      text: "upload-form", send: "upload-form",
    }
  );
  for (const id of ["drop-hint", "chosen", "progress", "file-progress"]) {
    browser.byId[id].hidden = true;
  }
  browser.byId["upload-form"].setAttribute("action", "/upload");
  return browser.run(...SCRIPTS);
}

function dragged(files) {
  return { dataTransfer: { types: ["Files"], files, dropEffect: "none" } };
}
"#;

fn run(test: &str) {
    script_test(
        &[onionhost_sdk::size::BYTES_JS, RECEIVE_JS],
        &format!("{SETUP}\n{test}"),
    );
}

/// Regression: files could not be dropped. Dropped on the form, they become the file
/// field's, listed under it; a file dropped beside the form does not make the browser leave.
#[test]
fn files_dropped_on_the_form_are_chosen() {
    run(r#"
const b = formPage();
const drop = b.byId.drop;
assert.strictEqual(b.byId["drop-hint"].hidden, false, "the hint shows with the script");
const files = [{ name: "a.txt", size: 3 }, { name: "<b>.bin", size: 1536 }];
const over = b.byId.files.dispatch("dragover", dragged(files));
assert.ok(over.defaultPrevented, "the form takes the drop");
assert.ok(drop.classList.contains("dragging"));
const dropped = b.byId.text.dispatch("drop", dragged(files));
assert.ok(dropped.defaultPrevented);
assert.ok(!drop.classList.contains("dragging"));
assert.strictEqual(b.byId.files.files, files);
assert.strictEqual(b.byId.chosen.hidden, false);
assert.deepStrictEqual(lines(b.byId.chosen), ["a.txt (3 bytes)", "<b>.bin (1.5 KiB)"]);
// Text, not markup: the name is a text node.
assert.strictEqual(b.byId.chosen.elements[1].children[0].constructor.name, "Text");
const beside = b.dispatchToWindow("drop", dragged(files));
assert.ok(beside.defaultPrevented, "the browser does not open a file dropped beside");
const words = b.byId.files.dispatch("dragover", { dataTransfer: { types: ["text/plain"] } });
assert.ok(!words.defaultPrevented, "only files are taken");
"#);
}

/// Regression: several files had one bar between them. Each file gets its own, from its
/// share of the bytes sent; the answer is a success notice.
#[test]
fn each_file_has_its_own_progress_and_the_answer_is_a_notice() {
    run(r#"
const b = formPage();
b.byId.files.files = [{ name: "a", size: 1000 }, { name: "b", size: 3000 }];
const submitted = b.byId["upload-form"].dispatch("submit");
assert.ok(submitted.defaultPrevented);
const xhr = b.requests[0];
assert.strictEqual(xhr.url, "/upload");
assert.strictEqual(xhr.headers.Accept, "application/json");
assert.strictEqual(b.byId.progress.hidden, false);
const rows = b.byId["file-progress"];
assert.strictEqual(rows.hidden, false, "a bar per file with two files");
assert.strictEqual(rows.elements.length, 2);
// Half of the body: the first file whole, a third of the second.
xhr.progress(2100, 4200);
const [a, second] = rows.elements;
assert.strictEqual(a.elements[1].value, 100);
assert.strictEqual(a.elements[2].textContent, "sent");
assert.strictEqual(second.elements[1].value, 33);
assert.strictEqual(second.elements[2].textContent, "1000 bytes of 2.9 KiB");
assert.strictEqual(b.byId.bar.value, 50);
assert.strictEqual(b.byId["progress-text"].textContent, "2.1 KiB of 4.1 KiB");

xhr.answer(200, { ok: true, files: [{ name: "a", size: 1000 }, { name: "b", size: 3000 }], message: true });
assert.strictEqual(b.byId.progress.hidden, true);
assert.strictEqual(b.byId.result.className, "note success");
assert.deepStrictEqual(lines(b.byId.result.elements[0]), [
  "Received a (1000 bytes)", "Received b (2.9 KiB)", "Your message was received.",
]);
assert.strictEqual(b.byId.send.disabled, false);
"#);
}

/// One file: the one bar says it all. A refusal is an error notice with the server's words.
#[test]
fn one_file_has_one_bar_and_a_refusal_is_an_error_notice() {
    run(r#"
const b = formPage();
b.byId.files.files = [{ name: "a", size: 10 }];
b.byId["upload-form"].dispatch("submit");
assert.strictEqual(b.byId["file-progress"].hidden, true);
b.requests[0].answer(413, { ok: false, error: "max_upload_size", message: "The upload is too large." });
assert.strictEqual(b.byId.result.className, "note error");
assert.strictEqual(b.byId.result.textContent, "The upload is too large.");
"#);
}
