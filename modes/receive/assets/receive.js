// Upload progress for the receive form. Without this script the form posts as a plain
// multipart form and the server answers with a page; with it, the same request is sent by
// XMLHttpRequest (the only browser API that reports upload progress) asking for JSON.
// Everything from the server is shown with textContent, never as markup.
/* global onionhostBytes */
"use strict";

(function () {
  const form = document.getElementById("upload-form");
  if (!form) {
    return;
  }
  const progress = document.getElementById("progress");
  const bar = document.getElementById("bar");
  const progressText = document.getElementById("progress-text");
  const result = document.getElementById("result");
  const send = document.getElementById("send");

  // Sizes read as the server writes them (onionhost_sdk::size::ByteSize), with
  // onionhostBytes from /bytes.js, the sdk's twin of that format, loaded before this script.
  const size = onionhostBytes;

  function show(lines, isError) {
    result.replaceChildren();
    const list = document.createElement(lines.length > 1 ? "ul" : "p");
    for (const line of lines) {
      const item = document.createElement(lines.length > 1 ? "li" : "span");
      item.textContent = line;
      list.appendChild(item);
    }
    result.className = isError ? "error" : "";
    result.appendChild(list);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.getAttribute("action"));
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable && e.total > 0) {
        bar.value = Math.floor((e.loaded / e.total) * 100);
        progressText.textContent = size(e.loaded) + " of " + size(e.total);
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
    progress.hidden = false;
    result.replaceChildren();
    xhr.send(new FormData(form));
  });
})();
