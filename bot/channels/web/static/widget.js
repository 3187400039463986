// shopbot's chat widget: <script src="https://chat.your-shop.example/widget.js" defer></script> on any page
// of the shop (its site listed in [web] allowed_origins) opens the chat in a corner. No build step, no CDN.
// SHOPBOT_LABELS (the widget's texts in every configured language) is put before this code by the server.
(() => {
  "use strict";
  const script = document.currentScript;
  const chat = new URL(".", script.src); // the chat lives next to this script
  const wanted = (script.dataset.lang || document.documentElement.lang || navigator.language || "").toLowerCase();
  const lang = wanted.split("-")[0] in SHOPBOT_LABELS ? wanted.split("-")[0] : Object.keys(SHOPBOT_LABELS)[0];
  const labels = SHOPBOT_LABELS[lang];
  const phone = () => window.innerWidth < 520;

  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "\u{1F4AC} " + labels.open_chat; // a speech balloon; the script stays ASCII
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("aria-controls", "shopbot-chat");
  Object.assign(button.style, {
    position: "fixed", right: "16px", bottom: "16px", zIndex: "2147483000", minHeight: "48px",
    padding: "0 18px", border: "0", borderRadius: "24px", background: "#0b57d0", color: "#fff",
    font: "600 16px system-ui, sans-serif", boxShadow: "0 2px 8px rgba(0,0,0,.3)", cursor: "pointer",
  });

  const frame = document.createElement("iframe");
  frame.id = "shopbot-chat";
  frame.title = labels.title;
  frame.hidden = true;
  Object.assign(frame.style, {
    position: "fixed", zIndex: "2147483001",
    background: "#fff", boxShadow: "0 4px 24px rgba(0,0,0,.3)",
  });

  function place() { // a phone gets the whole screen; a desktop a panel above the button
    Object.assign(frame.style, phone()
      ? {inset: "0", width: "100%", height: "100%", border: "0", borderRadius: "0"}
      : {inset: "auto", right: "16px", bottom: "80px", width: "min(380px, calc(100vw - 32px))",
         height: "min(600px, calc(100vh - 100px))", border: "1px solid #c8c8d0", borderRadius: "12px"});
  }

  function open() {
    if (!frame.src) frame.src = new URL(`?widget=1&lang=${encodeURIComponent(lang)}`, chat).href;
    place();
    frame.hidden = false;
    button.setAttribute("aria-expanded", "true");
    button.hidden = phone();
    frame.focus();
  }

  function close() {
    frame.hidden = true;
    button.hidden = false;
    button.setAttribute("aria-expanded", "false");
    button.focus();
  }

  button.addEventListener("click", () => (frame.hidden ? open() : close()));
  window.addEventListener("message", (e) => {
    if (e.origin === chat.origin && e.data === "shopbot:close") close();
  });
  window.addEventListener("resize", () => { if (!frame.hidden) place(); });
  document.body.append(frame, button);
})();
