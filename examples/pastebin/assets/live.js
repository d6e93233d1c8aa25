// Shows how many people are viewing this paste, live. The page works without it.
(function () {
  "use strict";
  var span = document.getElementById("viewers");
  if (!span || !window.WebSocket) { return; }
  var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + span.dataset.live;
  var socket = new WebSocket(url);
  socket.onmessage = function (event) {
    var n = parseInt(event.data, 10);
    span.textContent = n === 1 ? "1 person viewing" : n + " people viewing";
  };
  socket.onclose = function () { span.textContent = ""; };
})();
