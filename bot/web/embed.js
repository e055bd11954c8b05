/* The customer chat widget for any page:
 *   <script src="http://localhost:5005/webhooks/widget/embed.js"></script>
 * Loads rasa-webchat from the same server (no CDN) and connects it to that server's
 * socket.io channel. The conversation (its session id and messages) is kept in the
 * browser's localStorage, so it survives reloads and new tabs.
 * With a `jwt_key` on the channel, the page passes the JWT its back end signed for this
 * visitor: <script src=".../embed.js" data-token="JWT"></script>. */
(function () {
  var script = document.currentScript ||
    document.querySelector('script[src*="/webhooks/widget/embed.js"]');
  var here = new URL(script.src, document.baseURI);
  var loader = document.createElement("script");
  loader.src = new URL("webchat.js", here).href;
  loader.async = true;
  loader.onload = function () {
    window.WebChat.default({
      socketUrl: here.origin + (script.dataset.token
        ? "?token=" + encodeURIComponent(script.dataset.token) : ""),
      socketPath: "__SOCKET_PATH__",
      title: "__TITLE__",
      subtitle: "__SUBTITLE__",
      inputTextFieldHint: "__INPUT_HINT__",
      params: { storage: "local" }
    }, null);
  };
  document.head.appendChild(loader);
})();
