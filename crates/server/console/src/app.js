// The ferrokms console: sign-in, hash routing, the signed-in session.
// Credentials live in this tab's sessionStorage (gone when the tab closes)
// and in memory; never in cookies or localStorage.

import { Session } from "./api.js";
import { renderHistory, renderKey, renderKeys, renderSignIn } from "./pages.js";

const STORE = "ferrokms-console-session";

const app = {
  session: null,
  identity: null,
  main: document.getElementById("main"),
  signedIn(session, identity) {
    this.session = session;
    this.identity = identity;
    sessionStorage.setItem(
      STORE,
      JSON.stringify({ creds: session.creds, region: session.region, identity }),
    );
    showIdentity();
  },
  signOut() {
    this.session = null;
    this.identity = null;
    sessionStorage.removeItem(STORE);
    showIdentity();
    location.hash = "#/sign-in";
  },
  // What the current page must stop when it is left (the editor's linter).
  leaving: [],
  onLeave(fn) {
    this.leaving.push(fn);
  },
  go(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
};

function restore() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORE) || "null");
    if (saved && saved.creds && saved.region) {
      app.session = new Session(saved.creds, saved.region);
      app.identity = saved.identity || null;
    }
  } catch {
    sessionStorage.removeItem(STORE);
  }
}

function showIdentity() {
  const who = document.getElementById("who");
  const out = document.getElementById("sign-out");
  const nav = [document.getElementById("nav-keys"), document.getElementById("nav-history")];
  if (app.identity) {
    who.textContent = `${app.identity.Arn} · ${app.session.region}`;
    out.hidden = false;
    for (const n of nav) n.hidden = false;
  } else {
    who.textContent = "";
    out.hidden = true;
    for (const n of nav) n.hidden = true;
  }
}

let generation = 0;
let shownHash = null;

async function route() {
  const gen = ++generation;
  for (const fn of app.leaving.splice(0)) fn();
  const hash = location.hash || "#/keys";
  const view = document.createElement("div");
  const current = () => gen === generation;
  if (!app.session || hash === "#/sign-in") {
    await renderSignIn(app, view);
  } else if (hash === "#/history" || hash.startsWith("#/history?")) {
    await renderHistory(app, view, hash.slice("#/history".length), current);
  } else if (hash.startsWith("#/keys/")) {
    await renderKey(app, view, decodeURIComponent(hash.slice("#/keys/".length)), current);
  } else {
    await renderKeys(app, view, current);
  }
  if (!current()) return;
  app.main.replaceChildren(view);
  // When the page was shown, in ms since the document's navigation began.
  app.main.dataset.shownAt = String(Math.round(performance.now()));
  // The focus goes to the page's first field, or to the page itself, so
  // that a keyboard or screen reader user starts at its top, never lost on
  // <body> when the button pressed is redrawn; a page drawn again after an
  // action keeps its scroll position.
  const first = view.querySelector("[autofocus]");
  if (first) first.focus();
  else app.main.focus({ preventScroll: hash === shownHash });
  shownHash = hash;
  const h1 = view.querySelector("h1");
  document.title = h1 ? `${h1.textContent} · ferrokms console` : "ferrokms console";
}

document.getElementById("sign-out").addEventListener("click", () => app.signOut());
window.addEventListener("hashchange", () => {
  route().catch(showFatal);
});
restore();
showIdentity();
route().catch(showFatal);

function showFatal(e) {
  const p = document.createElement("p");
  p.className = "error";
  p.setAttribute("role", "alert");
  p.textContent = String(e && e.message ? e.message : e);
  app.main.replaceChildren(p);
}
