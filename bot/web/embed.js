/* Threadline's customer chat widget for any page:
 *   <script src="http://localhost:5005/webhooks/widget/embed.js"></script>
 * Loads rasa-webchat from the same server (no CDN) and connects it to that server's
 * socket.io channel. The conversation (its session id and messages) is kept in the
 * browser's localStorage, so it survives reloads and new tabs. */
(function () {
  var script = document.currentScript ||
    document.querySelector('script[src*="/webhooks/widget/embed.js"]');
  var here = new URL(script.src, document.baseURI);
  var loader = document.createElement("script");
  loader.src = new URL("webchat.js", here).href;
  loader.async = true;
  loader.onload = function () {
    window.WebChat.default({
      socketUrl: here.origin,
      socketPath: "__SOCKET_PATH__",
      title: "Threadline support",
      subtitle: "Orders, returns, products",
      inputTextFieldHint: "Ask about an order, a return or a product",
      params: { storage: "local" }
    }, null);
  };
  document.head.appendChild(loader);
})();
