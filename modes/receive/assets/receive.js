// Upload progress, per file, and dropping files on the form, for the receive page. Without
// this script the form posts as a plain multipart form and the server answers with a page;
// with it, the same request is sent by XMLHttpRequest (the only browser API that reports
// upload progress) asking for JSON. Everything from the server, and every file name, is
// shown with textContent, never as markup.
/* global onionhostBytes */
"use strict";

(function () {
  const form = document.getElementById("upload-form");
  if (!form) {
    return;
  }
  const input = document.getElementById("files");
  const drop = document.getElementById("drop");
  const chosen = document.getElementById("chosen");
  const progress = document.getElementById("progress");
  const bar = document.getElementById("bar");
  const progressText = document.getElementById("progress-text");
  const fileProgress = document.getElementById("file-progress");
  const result = document.getElementById("result");
  const send = document.getElementById("send");

  // Sizes read as the server writes them (onionhost_sdk::size::ByteSize), with
  // onionhostBytes from /bytes.js, the sdk's twin of that format, loaded before this script.
  const size = onionhostBytes;

  function show(lines, isError) {
    const list = document.createElement(lines.length > 1 ? "ul" : "p");
    for (const line of lines) {
      const item = document.createElement(lines.length > 1 ? "li" : "span");
      item.textContent = line;
      list.appendChild(item);
    }
    result.className = isError ? "note error" : "note success";
    result.replaceChildren(list);
  }

  function clear() {
    result.className = "";
    result.replaceChildren();
  }

  // The files the form will send, listed under the field.
  function showChosen() {
    if (!input || !chosen) {
      return;
    }
    const items = Array.from(input.files).map(function (file) {
      const li = document.createElement("li");
      li.textContent = file.name + " (" + size(file.size) + ")";
      return li;
    });
    chosen.replaceChildren(...items);
    chosen.hidden = items.length === 0;
  }

  // Dropping files anywhere on the form chooses them, as the file field would.
  if (input && drop) {
    document.getElementById("drop-hint").hidden = false;
    const carriesFiles = function (event) {
      return event.dataTransfer && Array.from(event.dataTransfer.types).includes("Files");
    };
    for (const type of ["dragenter", "dragover"]) {
      form.addEventListener(type, function (event) {
        if (carriesFiles(event)) {
          event.preventDefault();
          event.dataTransfer.dropEffect = "copy";
          drop.classList.add("dragging");
        }
      });
    }
    form.addEventListener("dragleave", function (event) {
      if (!form.contains(event.relatedTarget)) {
        drop.classList.remove("dragging");
      }
    });
    form.addEventListener("drop", function (event) {
      drop.classList.remove("dragging");
      if (!carriesFiles(event)) {
        return;
      }
      event.preventDefault();
      input.files = event.dataTransfer.files;
      showChosen();
    });
    input.addEventListener("change", showChosen);
    // A file dropped next to the form would make the browser leave the page for it.
    for (const type of ["dragover", "drop"]) {
      window.addEventListener(type, function (event) {
        if (carriesFiles(event)) {
          event.preventDefault();
        }
      });
    }
  }

  // One row per file: its name, its own bar, how much of it has gone.
  function fileRows() {
    if (!input) {
      return [];
    }
    return Array.from(input.files).map(function (file) {
      const li = document.createElement("li");
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = file.name;
      const meter = document.createElement("progress");
      meter.max = 100;
      meter.value = 0;
      meter.setAttribute("aria-label", file.name);
      const text = document.createElement("span");
      text.className = "size";
      li.append(name, meter, text);
      return { size: file.size, meter: meter, text: text, li: li };
    });
  }

  // The body is the files in order, then the message, with a little multipart framing:
  // `loaded` of `total` bytes is taken as that share of the files' bytes.
  function showFiles(rows, loaded, total) {
    const bytes = rows.reduce(function (sum, row) {
      return sum + row.size;
    }, 0);
    const sent = total > 0 ? Math.min(bytes, (loaded / total) * bytes) : 0;
    let start = 0;
    for (const row of rows) {
      const done = Math.max(0, Math.min(row.size, sent - start));
      const whole = row.size === 0 ? sent >= start : done >= row.size;
      row.meter.value = whole ? 100 : Math.floor((done / row.size) * 100);
      row.text.textContent = whole ? "sent" : size(Math.floor(done)) + " of " + size(row.size);
      start += row.size;
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const rows = fileRows();
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.getAttribute("action"));
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable && e.total > 0) {
        bar.value = Math.floor((e.loaded / e.total) * 100);
        progressText.textContent = size(e.loaded) + " of " + size(e.total);
        showFiles(rows, e.loaded, e.total);
      }
    });
    xhr.addEventListener("load", function () {
      send.disabled = false;
      progress.hidden = true;
      let answer = null;
      try {
        answer = JSON.parse(xhr.responseText);
      } catch (_) {
        show(["The server's answer could not be read (status " + xhr.status + ")."], true);
        return;
      }
      if (answer.ok) {
        const lines = answer.files.map(function (f) {
          return "Received " + f.name + " (" + size(f.size) + ")";
        });
        if (answer.message) {
          lines.push("Your message was received.");
        }
        show(lines, false);
        form.reset();
        showChosen();
      } else {
        show([answer.message], true);
      }
    });
    xhr.addEventListener("error", function () {
      send.disabled = false;
      progress.hidden = true;
      show([
        "The connection was lost, or the server refused the upload before it was sent " +
          "(see the limits below). Nothing was saved.",
      ], true);
    });
    send.disabled = true;
    bar.value = 0;
    progressText.textContent = "";
    fileProgress.replaceChildren(...rows.map((row) => row.li));
    fileProgress.hidden = rows.length < 2;
    progress.hidden = false;
    clear();
    xhr.send(new FormData(form));
  });
})();
