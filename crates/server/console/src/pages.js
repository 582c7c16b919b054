// The console's pages: sign-in, the keys of the account, one key. Every
// element is built with textContent (never innerHTML), so nothing a server
// or a key's description holds can become markup.

import { AwsError, Session, allPages } from "./api.js";

/** `h("p", {class: "x"}, "text", child)`: an element. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

let uid = 0;
/** A labelled input: {wrap, input}. */
function field(label, attrs = {}, hint) {
  const id = `f${++uid}`;
  const input = h(attrs.tag || "input", { id, ...attrs, tag: null });
  const wrap = h("div", { class: "field" }, h("label", { for: id }, label, hint ? h("span", { class: "hint" }, ` ${hint}`) : null), input);
  return { wrap, input };
}

function selectField(label, options, value) {
  const f = field(label, { tag: "select" });
  for (const o of options) f.input.append(h("option", { value: o, selected: o === value }, o));
  return f;
}

function errorBox() {
  return h("p", { class: "error", role: "alert" });
}

function showError(box, e) {
  box.textContent = e instanceof AwsError ? `${e.code}: ${e.awsMessage}` : String(e.message || e);
}

/** Runs `fn` with `button` disabled and its errors shown in `box`. */
async function busy(button, box, fn) {
  button.disabled = true;
  box.textContent = "";
  try {
    await fn();
  } catch (e) {
    showError(box, e);
  } finally {
    button.disabled = false;
  }
}

function keyHash(idOrAlias) {
  return `#/keys/${encodeURIComponent(idOrAlias)}`;
}

// --- sign-in ---------------------------------------------------------------

export async function renderSignIn(app, view) {
  const ak = field("Access key ID", { name: "access-key-id", autocomplete: "off", spellcheck: "false", required: true, autofocus: true });
  const sk = field("Secret access key", { name: "secret-access-key", type: "password", autocomplete: "off", required: true });
  const st = field("Session token", { name: "session-token", type: "password", autocomplete: "off" }, "(optional, for temporary credentials)");
  const region = field("Region", { name: "region", value: app.session?.region || "us-east-1", required: true, spellcheck: "false" });
  const err = errorBox();
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    h("p", { class: "muted" }, "Your secret access key signs each request here, in the browser (SigV4): it is kept in this tab only and never sent."),
    ak.wrap, sk.wrap, st.wrap, region.wrap, err, button,
  );
  if (!window.isSecureContext || !globalThis.crypto || !crypto.subtle) {
    // WebCrypto, which signs every request, exists in secure contexts only.
    err.textContent = "This page is not a secure context, so the browser cannot sign requests: open the console over HTTPS (ferrokms serve --tls-cert) or on localhost.";
    button.disabled = true;
  }
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(button, err, async () => {
      const creds = { accessKeyId: ak.input.value.trim(), secretAccessKey: sk.input.value };
      if (st.input.value.trim()) creds.sessionToken = st.input.value.trim();
      const session = new Session(creds, region.input.value.trim());
      const identity = await session.whoami();
      app.signedIn(session, identity);
      app.go("#/keys");
    });
  });
  view.append(form);
}

// --- the keys of the account ----------------------------------------------

const DESCRIBE_CONCURRENCY = 6;

/** Runs async jobs, at most `n` at a time. */
class Pool {
  constructor(n) {
    this.n = n;
    this.running = 0;
    this.queue = [];
  }
  push(job) {
    this.queue.push(job);
    this.pump();
  }
  pump() {
    while (this.running < this.n && this.queue.length > 0) {
      const job = this.queue.shift();
      this.running++;
      job().finally(() => {
        this.running--;
        this.pump();
      });
    }
  }
}

export async function renderKeys(app, view, current) {
  const started = performance.now();
  const s = app.session;
  view.append(h("h1", {}, "Keys"));
  const err = errorBox();
  view.append(err);
  let keys, aliases;
  try {
    [keys, aliases] = await Promise.all([
      allPages(s, "ListKeys", { Limit: 1000 }, "Keys"),
      allPages(s, "ListAliases", { Limit: 100 }, "Aliases"),
    ]);
  } catch (e) {
    showError(err, e);
    return;
  }
  if (!current()) return;
  const byKey = new Map();
  for (const a of aliases) {
    if (!a.TargetKeyId) continue;
    if (!byKey.has(a.TargetKeyId)) byKey.set(a.TargetKeyId, []);
    byKey.get(a.TargetKeyId).push(a.AliasName);
  }

  view.append(createKeyForm(app));

  const filter = field("Filter keys", { type: "search", placeholder: "id, alias, description, state…" });
  const count = h("span", { class: "muted", "aria-live": "polite" });
  view.append(h("div", { class: "toolbar" }, filter.wrap, count));

  const tbody = h("tbody");
  const rows = [];
  const pool = new Pool(DESCRIBE_CONCURRENCY);
  const observer = new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      observer.unobserve(e.target);
      const row = rows[Number(e.target.dataset.index)];
      pool.push(() => describeRow(s, row, filter));
    }
  });
  keys.forEach((k, i) => {
    const names = byKey.get(k.KeyId) || [];
    const cells = {
      spec: h("td", { class: "hide-narrow" }, "…"),
      usage: h("td", { class: "hide-narrow" }, "…"),
      state: h("td", {}, "…"),
      description: h("td", {}, ""),
    };
    const tr = h(
      "tr",
      { "data-index": i, "data-key-id": k.KeyId },
      h("td", { class: "id" }, h("a", { href: keyHash(k.KeyId) }, k.KeyId)),
      h("td", { class: "aliases" }, names.map((n) => h("a", { href: keyHash(n) }, n))),
      cells.spec, cells.usage, cells.state, cells.description,
    );
    const row = { key: k, names, tr, cells, text: `${k.KeyId} ${names.join(" ")}`.toLowerCase() };
    rows.push(row);
    tbody.append(tr);
    observer.observe(tr);
  });
  const table = h(
    "table",
    { "aria-label": "Keys", "data-count": keys.length },
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Key ID"),
      h("th", { scope: "col" }, "Aliases"),
      h("th", { scope: "col", class: "hide-narrow" }, "Key spec"),
      h("th", { scope: "col", class: "hide-narrow" }, "Usage"),
      h("th", { scope: "col" }, "State"),
      h("th", { scope: "col" }, "Description"))),
    tbody,
  );
  const showCount = (shown) => {
    const n = (k) => `${k} key${k === 1 ? "" : "s"}`;
    count.textContent = shown === keys.length ? n(keys.length) : `${shown} of ${n(keys.length)}`;
  };
  showCount(keys.length);
  filter.input.addEventListener("input", () => applyFilter(rows, filter.input.value, showCount));
  view.append(keys.length ? h("div", { class: "table-wrap" }, table) : h("p", {}, "No keys in this account yet."));
  view.dataset.renderMs = String(Math.round(performance.now() - started));
  view.classList.add("keys-page");
}

function applyFilter(rows, value, showCount) {
  const words = value.toLowerCase().split(/\s+/).filter(Boolean);
  let shown = 0;
  for (const r of rows) {
    const hit = words.every((w) => r.text.includes(w));
    r.tr.hidden = !hit;
    if (hit) shown++;
  }
  showCount(shown);
}

async function describeRow(s, row, filter) {
  try {
    const m = (await s.kms("DescribeKey", { KeyId: row.key.KeyId })).KeyMetadata;
    row.cells.spec.textContent = m.KeySpec || "";
    row.cells.usage.textContent = m.KeyUsage || "";
    row.cells.state.textContent = m.KeyState || "";
    row.cells.state.className = `state state-${m.KeyState}`;
    row.cells.description.textContent = m.Description || "";
    row.text = `${row.text} ${m.KeySpec} ${m.KeyUsage} ${m.KeyState} ${m.Description || ""}`.toLowerCase();
  } catch (e) {
    row.cells.state.textContent = e instanceof AwsError ? e.code : "error";
  }
}

function createKeyForm(app) {
  const desc = field("Description", { name: "description", maxlength: 8192 });
  const spec = selectField("Key spec", [
    "SYMMETRIC_DEFAULT", "RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384",
    "ECC_NIST_P521", "ECC_SECG_P256K1", "HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512",
  ], "SYMMETRIC_DEFAULT");
  const usage = selectField("Key usage", ["ENCRYPT_DECRYPT", "SIGN_VERIFY", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT"], "ENCRYPT_DECRYPT");
  const err = errorBox();
  const button = h("button", { type: "submit" }, "Create key");
  const form = h("form", { class: "inline", "aria-label": "Create a key" }, desc.wrap, spec.wrap, usage.wrap, button);
  spec.input.addEventListener("change", () => {
    const v = spec.input.value;
    usage.input.value = v.startsWith("HMAC") ? "GENERATE_VERIFY_MAC" : v === "SYMMETRIC_DEFAULT" ? "ENCRYPT_DECRYPT" : usage.input.value === "GENERATE_VERIFY_MAC" ? "SIGN_VERIFY" : usage.input.value;
  });
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(button, err, async () => {
      const params = { KeySpec: spec.input.value, KeyUsage: usage.input.value };
      if (desc.input.value) params.Description = desc.input.value;
      const out = await app.session.kms("CreateKey", params);
      app.go(keyHash(out.KeyMetadata.KeyId));
    });
  });
  return h("details", {}, h("summary", {}, "Create a key"), form, err);
}

// --- one key ---------------------------------------------------------------

/** An optional read: its answer, or the AWS error code as text. */
async function maybe(p) {
  try {
    return { ok: await p };
  } catch (e) {
    if (e instanceof AwsError) return { error: `${e.code}${e.awsMessage ? `: ${e.awsMessage}` : ""}` };
    throw e;
  }
}

export async function renderKey(app, view, ref, current) {
  const s = app.session;
  const err = errorBox();
  let meta;
  try {
    meta = (await s.kms("DescribeKey", { KeyId: ref })).KeyMetadata;
  } catch (e) {
    view.append(h("h1", {}, ref), err);
    showError(err, e);
    return;
  }
  const id = meta.KeyId;
  const [aliases, tags, grants, rotation, rotations, policy] = await Promise.all([
    maybe(allPages(s, "ListAliases", { KeyId: id, Limit: 100 }, "Aliases")),
    maybe(allPages(s, "ListResourceTags", { KeyId: id, Limit: 50 }, "Tags")),
    maybe(allPages(s, "ListGrants", { KeyId: id, Limit: 100 }, "Grants")),
    maybe(s.kms("GetKeyRotationStatus", { KeyId: id })),
    maybe(allPages(s, "ListKeyRotations", { KeyId: id, Limit: 100 }, "Rotations")),
    maybe(s.kms("GetKeyPolicy", { KeyId: id, PolicyName: "default" })),
  ]);
  if (!current()) return;
  const names = aliases.ok ? aliases.ok.map((a) => a.AliasName) : [];
  view.append(h("p", {}, h("a", { href: "#/keys" }, "← All keys")));
  view.append(h("h1", {}, names[0] ? `${names[0]} (${id})` : id));
  view.append(err);

  // Metadata and the state actions.
  const rot = rotation.ok
    ? rotation.ok.KeyRotationEnabled
      ? `enabled, every ${rotation.ok.RotationPeriodInDays} days${rotation.ok.NextRotationDate ? `, next ${new Date(rotation.ok.NextRotationDate * 1000).toISOString()}` : ""}`
      : "disabled"
    : `not available (${rotation.error})`;
  const items = [
    ["Key ID", id],
    ["ARN", meta.Arn],
    ["State", meta.KeyState],
    ["Key spec", meta.KeySpec],
    ["Key usage", meta.KeyUsage],
    ["Origin", meta.Origin],
    ["Key manager", meta.KeyManager],
    ["Rotation", rot],
    ["Description", meta.Description || "—"],
    ["Created", meta.CreationDate ? new Date(meta.CreationDate * 1000).toISOString() : ""],
  ];
  if (meta.DeletionDate) items.push(["Deletion date", new Date(meta.DeletionDate * 1000).toISOString()]);
  view.append(
    h("h2", {}, "Metadata"),
    h("dl", { class: "meta" }, items.map(([k, v]) => [h("dt", {}, k), h("dd", { class: k === "State" ? `state state-${v}` : null, "data-field": k }, v)])),
    stateActions(app, meta, err),
  );

  // Aliases.
  view.append(h("h2", {}, "Aliases"));
  view.append(aliases.ok
    ? names.length ? h("ul", {}, names.map((n) => h("li", {}, n))) : h("p", { class: "muted" }, "No aliases.")
    : h("p", { class: "error" }, aliases.error));
  view.append(addAliasForm(app, id));

  // Tags.
  view.append(h("h2", {}, "Tags"));
  view.append(tags.ok
    ? tags.ok.length
      ? table("Tags", ["Key", "Value"], tags.ok.map((t) => [t.TagKey, t.TagValue]))
      : h("p", { class: "muted" }, "No tags.")
    : h("p", { class: "error" }, tags.error));
  view.append(addTagForm(app, id));

  // Grants.
  view.append(h("h2", {}, "Grants"));
  view.append(grants.ok
    ? grants.ok.length
      ? table("Grants", ["Grant ID", "Grantee", "Operations", "Retiring principal"],
        grants.ok.map((g) => [g.GrantId, g.GranteePrincipal, (g.Operations || []).join(", "), g.RetiringPrincipal || "—"]))
      : h("p", { class: "muted" }, "No grants.")
    : h("p", { class: "error" }, grants.error));

  // Key materials and rotations.
  view.append(h("h2", {}, "Key rotations"));
  view.append(rotations.ok
    ? rotations.ok.length
      ? table("Key rotations", ["Key material", "Rotated", "Type"],
        rotations.ok.map((r) => [r.KeyMaterialId || "—", r.RotationDate ? new Date(r.RotationDate * 1000).toISOString() : "", r.RotationType || ""]))
      : h("p", { class: "muted" }, "No rotations yet.")
    : h("p", { class: "muted" }, `Not available (${rotations.error}).`));

  // The key policy.
  view.append(h("h2", {}, "Key policy"));
  if (policy.ok) {
    const ed = await policyEditor(app, id, policy.ok.Policy || "{}");
    view.append(ed.section);
  } else view.append(h("p", { class: "error" }, policy.error));

  // Live simulation on the key (the server's engine: policy simulate's).
  view.append(h("h2", { id: "simulate-title" }, "Simulate a request"));
  view.append(simulator(app, meta, current));

  // Who can use this key: the access map.
  view.append(h("h2", { id: "access-title" }, "Who can use this key"));
  view.append(accessMap(app, meta, current));

  // The key's audit records (CloudTrail LookupEvents).
  view.append(h("h2", { id: "history-title" }, "History"));
  view.append(history(app, { AttributeKey: "ResourceName", AttributeValue: meta.Arn }, current, "history-title"));
}

// --- history ----------------------------------------------------------------

/** Pages of LookupEvents one "Load older events" click asks for, at most. */
const HISTORY_PAGE = 50;

/**
 * The key's events, newest first, from CloudTrail's LookupEvents (the
 * server's audit trail): time, user, event, outcome; a denial opens to its
 * explanation (the AccessDenied message, the decisions the record keeps,
 * and what would allow it, as `ferrokms policy explain` words it).
 */
function history(app, attribute, current, titleId) {
  const s = app.session;
  const err = errorBox();
  const status = h("p", { class: "muted history-status", "aria-live": "polite", "data-history": "loading" }, "Loading the key's history…");
  const tbody = h("tbody");
  const tbl = h("div", { class: "table-wrap" }, h("table", { "aria-label": "History" },
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Time"),
      h("th", { scope: "col" }, "User"),
      h("th", { scope: "col" }, "Event"),
      h("th", { scope: "col" }, "Outcome"))),
    tbody));
  tbl.hidden = true;
  const more = h("button", { type: "button", class: "secondary" }, "Load older events");
  more.hidden = true;
  const refresh = h("button", { type: "button", class: "secondary" }, "Refresh history");
  let next = null;
  let shown = 0;
  const load = async (reset) => {
    if (reset) {
      tbody.textContent = "";
      next = null;
      shown = 0;
    }
    const params = { MaxResults: HISTORY_PAGE };
    if (attribute) params.LookupAttributes = [attribute];
    if (next) params.NextToken = next;
    const page = await s.cloudtrail("LookupEvents", params);
    if (!current()) return;
    for (const e of page.Events || []) {
      tbody.append(historyRow(e));
      shown++;
    }
    next = page.NextToken || null;
    more.hidden = !next;
    tbl.hidden = shown === 0;
    status.dataset.history = "done";
    status.textContent = shown
      ? `${shown} event${shown === 1 ? "" : "s"}, newest first${next ? " (older ones: Load older events)" : ""}.`
      : next ? "No events in the newest part of the trail: Load older events." : `No events${attribute ? " that match" : ""} in the audit trail.`;
  };
  const run = (button, reset) => busy(button, err, async () => {
    try {
      await load(reset);
    } catch (e) {
      status.dataset.history = "failed";
      status.textContent = "History unavailable.";
      throw e;
    }
  });
  more.addEventListener("click", () => run(more, false));
  refresh.addEventListener("click", () => run(refresh, true));
  run(refresh, true);
  return h("section", { "aria-labelledby": titleId, class: "history" },
    status, tbl, h("div", { class: "actions" }, more, refresh), err);
}

const LOOKUP_KEYS = ["Username", "EventName", "ResourceName", "EventSource", "AccessKeyId", "ReadOnly", "EventId", "ResourceType"];

/**
 * The account's History (`#/history`, `#/history?Username=alice`): its
 * events, newest first, filtered by one lookup attribute as LookupEvents
 * allows.
 */
export async function renderHistory(app, view, query, current) {
  const params = new URLSearchParams(query);
  const [k, v] = [...params.entries()].find(([key]) => LOOKUP_KEYS.includes(key)) || ["", ""];
  view.append(h("h1", { id: "account-history-title" }, "History"));
  const attr = selectField("Filter by", ["(none)", ...LOOKUP_KEYS], k || "(none)");
  const value = field("Value", { name: "lookup-value", value: v, spellcheck: "false" });
  const button = h("button", { type: "submit" }, "Apply filter");
  const form = h("form", { class: "inline", "aria-label": "Filter the history" }, attr.wrap, value.wrap, button);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const key = attr.input.value;
    const val = value.input.value.trim();
    app.go(key !== "(none)" && val ? `#/history?${new URLSearchParams({ [key]: val })}` : "#/history");
  });
  view.append(form);
  view.append(history(app, k && v ? { AttributeKey: k, AttributeValue: v } : null, current, "account-history-title"));
}

/** One event as a row; a denial with its explanation, opened on demand. */
function historyRow(e) {
  let rec = {};
  try {
    rec = JSON.parse(e.CloudTrailEvent || "{}");
  } catch {
    rec = {};
  }
  const when = e.EventTime ? new Date(e.EventTime * 1000).toISOString().replace(".000Z", "Z") : "";
  const who = rec.userIdentity && rec.userIdentity.arn ? rec.userIdentity.arn : e.Username || "";
  const outcome = h("td", { class: "outcome" });
  const denied = rec.errorCode === "AccessDeniedException" || rec.errorCode === "AccessDenied";
  if (!rec.errorCode) {
    outcome.append(h("span", { class: "allowed" }, "Allowed"));
  } else if (!denied) {
    outcome.append(h("span", { class: "failed" }, rec.errorCode));
  } else {
    const decisions = Array.isArray(rec.ferrokmsAuthorization) ? rec.ferrokmsAuthorization : [];
    const fixes = Array.isArray(rec.ferrokmsExplanation) ? rec.ferrokmsExplanation : [];
    const firstArn = rec.resources && rec.resources[0] ? rec.resources[0].ARN : "";
    outcome.append(h("details", { class: "denial" },
      h("summary", {}, h("span", { class: "denied" }, "Denied"), " — why?"),
      h("p", { class: "denial-message" }, `${rec.errorCode}: ${rec.errorMessage || ""}`),
      decisions.length
        ? [h("h3", {}, "Decisions"), h("ul", { class: "decisions" }, decisions.map((d) => h("li", {},
          `${d.action} on ${d.resource || firstArn}: ${d.allowed ? "allowed" : "denied"}${d.decision ? ` (${d.decision})` : ""}`,
          d.statements && d.statements.length ? h("ul", {}, d.statements.map((st) => h("li", { class: "statement" }, st))) : null)))]
        : h("p", { class: "muted" }, "The record keeps no decision (another account's call, or the request failed before any)."),
      fixes.length
        ? [h("h3", {}, "What would allow it"), h("ul", { class: "fixes" }, fixes.map((f) => h("li", {}, f)))]
        : null));
  }
  return h("tr", { "data-event-id": e.EventId },
    h("td", { class: "time" }, when),
    h("td", { class: "user" }, h("span", { title: who }, e.Username || who)),
    h("td", {}, e.EventName || ""),
    outcome);
}

function table(label, head, rows) {
  return h("div", { class: "table-wrap" }, h("table", { "aria-label": label },
    h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c)))))));
}

function reload(app) {
  app.go(location.hash);
}

function stateActions(app, meta, err) {
  const s = app.session;
  const id = meta.KeyId;
  const out = h("div", { class: "actions" });
  const act = (label, fn, cls) => {
    const b = h("button", { type: "button", class: cls }, label);
    b.addEventListener("click", () => busy(b, err, async () => {
      await fn();
      reload(app);
    }));
    out.append(b);
  };
  if (meta.KeyState === "Enabled") act("Disable key", () => s.kms("DisableKey", { KeyId: id }), "secondary");
  if (meta.KeyState === "Disabled") act("Enable key", () => s.kms("EnableKey", { KeyId: id }), "secondary");
  if (meta.KeyState === "PendingDeletion") {
    act("Cancel deletion", () => s.kms("CancelKeyDeletion", { KeyId: id }), "secondary");
  } else if (meta.KeyManager !== "AWS") {
    const b = h("button", { type: "button", class: "danger" }, "Schedule deletion…");
    b.addEventListener("click", () => confirmDeletion(app, id, err));
    out.append(b);
  }
  return out;
}

/** The confirmation dialog of ScheduleKeyDeletion. */
function confirmDeletion(app, id, err) {
  const days = field("Waiting period (days)", { type: "number", min: 7, max: 30, value: 30, required: true }, "7 to 30");
  const derr = errorBox();
  const confirm = h("button", { type: "submit", class: "danger" }, "Schedule deletion");
  const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
  const dialog = h(
    "dialog",
    { "aria-labelledby": "del-title" },
    h("form", { method: "dialog" },
      h("h2", { id: "del-title" }, "Schedule key deletion"),
      h("p", {}, `Key ${id} will be deleted at the end of the waiting period, with its key material: whatever it encrypted can then never be decrypted. Until then the key is disabled and the deletion can be cancelled.`),
      days.wrap, derr,
      h("div", { class: "actions" }, confirm, cancel)),
  );
  cancel.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => dialog.remove());
  dialog.querySelector("form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(confirm, derr, async () => {
      await app.session.kms("ScheduleKeyDeletion", { KeyId: id, PendingWindowInDays: Number(days.input.value) });
      dialog.close();
      reload(app);
    });
  });
  document.body.append(dialog);
  dialog.showModal();
  err.textContent = "";
}

function addAliasForm(app, id) {
  const name = field("Alias name", { name: "alias-name", placeholder: "alias/my-key", required: true, spellcheck: "false" });
  const err = errorBox();
  const button = h("button", { type: "submit" }, "Add alias");
  const form = h("form", { class: "inline", "aria-label": "Add an alias" }, name.wrap, button);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(button, err, async () => {
      await app.session.kms("CreateAlias", { AliasName: name.input.value.trim(), TargetKeyId: id });
      reload(app);
    });
  });
  return h("div", {}, form, err);
}

function addTagForm(app, id) {
  const key = field("Tag key", { name: "tag-key", required: true });
  const value = field("Tag value", { name: "tag-value" });
  const err = errorBox();
  const button = h("button", { type: "submit" }, "Add tag");
  const form = h("form", { class: "inline", "aria-label": "Add a tag" }, key.wrap, value.wrap, button);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(button, err, async () => {
      await app.session.kms("TagResource", { KeyId: id, Tags: [{ TagKey: key.input.value, TagValue: value.input.value }] });
      reload(app);
    });
  });
  return h("div", {}, form, err);
}

const SEVERITY = { ERROR: "error", SECURITY_WARNING: "warning", WARNING: "warning", SUGGESTION: "info" };

/** The policy editor: CodeMirror (editor.js), lint by ValidatePolicy, PutKeyPolicy. */
async function policyEditor(app, id, policy) {
  const { createPolicyEditor } = await import("./editor.js");
  let pretty = policy;
  try {
    pretty = JSON.stringify(JSON.parse(policy), null, 2);
  } catch {
    pretty = policy;
  }
  const status = h("p", { class: "lint-status", "aria-live": "polite", "data-lint": "pending" }, "Checking the policy…");
  const setStatus = (state, text) => {
    status.dataset.lint = state;
    status.textContent = text;
  };
  const session = app.session;
  const lint = async (text) => {
    // An editor left behind by a sign-out asks nothing with the new session.
    if (session !== app.session) return [];
    try {
      const findings = await session.validateKeyPolicy(text);
      if (findings === null) {
        setStatus("unavailable", "Policy validation unavailable: this server has no Access Analyzer API (ValidatePolicy).");
        return [];
      }
      setStatus("done", findings.length ? `${findings.length} finding${findings.length > 1 ? "s" : ""} (Access Analyzer ValidatePolicy)` : "No findings (Access Analyzer ValidatePolicy).");
      return findings.map((f) => {
        const span = f.locations && f.locations[0] && f.locations[0].span;
        return {
          from: span ? span.start.offset : 0,
          to: span ? span.end.offset : 0,
          severity: SEVERITY[f.findingType] || "info",
          source: f.issueCode,
          message: `${f.findingType}: ${f.findingDetails}`,
        };
      });
    } catch (e) {
      setStatus("failed", `Policy validation failed: ${e instanceof AwsError ? `${e.code}: ${e.awsMessage}` : e.message}`);
      return [];
    }
  };
  const holder = h("div", { class: "editor" });
  const editor = createPolicyEditor(holder, { doc: pretty, label: "Key policy", lint });
  app.onLeave(() => editor.view.destroy());
  const err = errorBox();
  const note = h("p", { class: "note", role: "status" });
  const save = h("button", { type: "button" }, "Save policy");
  save.addEventListener("click", () => busy(save, err, async () => {
    note.textContent = "";
    await session.kms("PutKeyPolicy", { KeyId: id, PolicyName: "default", Policy: editor.text() });
    note.textContent = "Policy saved.";
  }));
  const id2 = `lbl${++uid}`;
  const section = h("section", { "aria-labelledby": id2 },
    h("p", { id: id2, class: "muted" }, "Edit the key policy (JSON). Findings appear in place as you type; Save calls PutKeyPolicy. Tab moves on to the next control."),
    holder, status, h("div", { class: "actions" }, save), err, note);
  return { section, text: () => editor.text() };
}

// --- live simulation ------------------------------------------------------------

const SIM_ACTIONS = [
  "kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
  "kms:GenerateDataKeyWithoutPlaintext", "kms:Sign", "kms:Verify", "kms:GenerateMac", "kms:VerifyMac",
  "kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:CreateGrant", "kms:ListGrants",
  "kms:EnableKey", "kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:TagResource",
];
const OTHER = "Other principal (ARN)…";

/** Non-empty trimmed lines of a text area. */
function lines(text) {
  return text.split("\n").map((l) => l.trim()).filter((l) => l);
}

/**
 * Simulates one request on this key with the server's own engine
 * (FerrokmsService.SimulateKeyRequest: the answer of `ferrokms policy
 * simulate`, in its words): a user of the account, a role (as a session of
 * it), or any principal by ARN or account id (a role session, another
 * account's root or user), an action, context values and grant tokens.
 */
function simulator(app, meta, current) {
  const s = app.session;
  const who = field("Principal", { tag: "select", name: "sim-principal" });
  const other = field("Principal ARN", { name: "sim-arn", spellcheck: "false", placeholder: "arn:aws:iam::444455556666:root" }, "(a role session, another account's root or user, an account id…)");
  other.wrap.hidden = true;
  const action = selectField("Action", SIM_ACTIONS, "kms:Encrypt");
  const ctx = field("Context values", { tag: "textarea", name: "sim-context", rows: 3, spellcheck: "false", placeholder: "kms:EncryptionContext:app=demo" }, "(one KEY=VALUE a line; repeat a key for several values)");
  const tokens = field("Grant tokens", { tag: "textarea", name: "sim-tokens", rows: 2, spellcheck: "false" }, "(one a line, as the request would carry them)");
  const err = errorBox();
  const button = h("button", { type: "submit" }, "Simulate");
  const result = h("div", { class: "sim-result", "aria-live": "polite" });
  const form = h("form", { class: "inline simulate", "aria-label": "Simulate a request" }, who.wrap, other.wrap, action.wrap, ctx.wrap, tokens.wrap, button);
  who.input.append(h("option", { value: "" }, "Loading principals…"));
  who.input.addEventListener("change", () => {
    other.wrap.hidden = who.input.value !== OTHER;
  });
  // The principals are listed when the simulator is opened, not with
  // every key page (a user without iam:ListUsers is not refused on each).
  let listed = false;
  const listPrincipals = async () => {
    if (listed) return;
    listed = true;
    const [users, roles] = await Promise.all([maybe(s.query("iam", "ListUsers", { MaxItems: "1000" })), maybe(s.query("iam", "ListRoles", { MaxItems: "1000" }))]);
    if (!current()) return;
    who.input.textContent = "";
    const arns = (r, tag) => (r.ok ? [...r.ok.querySelectorAll(`${tag} > member > Arn`)].map((n) => n.textContent) : []);
    for (const a of arns(users, "Users")) who.input.append(h("option", { value: a }, a));
    for (const a of arns(roles, "Roles")) who.input.append(h("option", { value: a }, `${a} (as a session)`));
    who.input.append(h("option", { value: OTHER }, OTHER));
    if (users.error && roles.error) {
      who.input.value = OTHER;
      other.wrap.hidden = false;
    }
  };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(button, err, async () => {
      result.textContent = "";
      let principal = who.input.value;
      if (principal === OTHER || !principal) principal = other.input.value.trim();
      const params = { KeyId: meta.Arn, Principal: principal, Action: action.input.value };
      const context = [];
      for (const line of lines(ctx.input.value)) {
        const i = line.indexOf("=");
        if (i <= 0) throw new Error(`Context value "${line}": expected KEY=VALUE`);
        context.push({ Key: line.slice(0, i).trim(), Value: line.slice(i + 1).trim() });
      }
      if (context.length) params.Context = context;
      const grantTokens = lines(tokens.input.value);
      if (grantTokens.length) params.GrantTokens = grantTokens;
      const answer = await s.ferrokms("SimulateKeyRequest", params);
      if (current()) result.append(simulationResult(answer));
    });
  });
  const open = h("details", { class: "simulator" },
    h("summary", {}, "Open the simulator"),
    h("p", { class: "muted" }, "The decision the server's authorization would take for this request on the key as it is saved — key policy, delegation, identity policies, boundary, grants and grant tokens — and, for a denial, what would allow it: the answer and the words of ferrokms policy simulate. Another account's principal is simulated as if its own account allowed everything: the answer is the key's part."),
    form, err, result);
  open.addEventListener("toggle", () => {
    if (open.open) listPrincipals();
  });
  return h("section", { "aria-labelledby": "simulate-title", class: "simulate" }, open);
}

/** A list under a heading, or nothing for an empty list. */
function listed(title, items, cls) {
  return items.length ? [h("h3", {}, title), h("ul", { class: cls }, items.map((i) => h("li", {}, i)))] : null;
}

/** SimulateKeyRequest's answer, laid out as `ferrokms policy simulate` prints it. */
function simulationResult(a) {
  const allowed = a.allowed === true;
  const decision = a.error || a.decision || (allowed ? "allow" : "deny");
  const tokens = (a.grant_tokens || []).map((t) => h("li", { class: "sim-token" },
    `grant token: grant ${t.grant_id || "?"} on ${t.key_arn || "?"} for ${t.grantee || "?"} (${(t.operations || []).join(", ")}): ${t.applies ? "applies" : "does not apply"}`,
    t.reasons && t.reasons.length ? h("ul", {}, t.reasons.map((r) => h("li", {}, r))) : null));
  return h("div", { class: `sim-outcome ${allowed ? "sim-allowed" : "sim-denied"}`, "data-decision": decision },
    h("p", { class: "sim-decision" }, h("strong", {}, allowed ? "allowed" : "denied"), `: ${a.principal} ${a.action} on ${a.resource}`),
    a.role_arn ? h("p", { class: "muted sim-role" }, `(a session of ${a.role_arn})`) : null,
    allowed ? h("p", { class: "sim-decision-text" }, `decision: ${a.decision}`) : null,
    a.message ? h("p", { class: "sim-message" }, h("code", {}, `AccessDeniedException: ${a.message}`)) : null,
    a.error ? h("p", { class: "sim-message" }, h("code", {}, `${a.error}`)) : null,
    a.error ? null : (a.statements || []).length
      ? listed("Statements that applied", a.statements, "sim-matched")
      : h("p", { class: "muted sim-matched" }, "statements that applied: none"),
    listed("Statements that matched without deciding", a.matched_without_effect || [], "sim-inert"),
    tokens.length ? [h("h3", {}, "Grant tokens"), h("ul", { class: "sim-tokens" }, tokens)] : null,
    listed("To allow it", a.suggestions || [], "sim-fixes"));
}

// --- who can use this key ---------------------------------------------------------

/** The actions of the access map's columns. */
const MAP_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:Sign", "kms:DescribeKey", "kms:CreateGrant", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion"];
const PATHS = {
  "key policy": { cls: "path-key", color: "#1f5fa8" },
  "delegation + identity policy": { cls: "path-iam", color: "#2e7d32" },
  grant: { cls: "path-grant", color: "#c2570c" },
};
/** The path of a listing entry as the map colours it ("grant ID" is a grant). */
const pathKind = (p) => (p.startsWith("grant") ? "grant" : p);

/**
 * The access map: the server's exact listing of who can use the key
 * (FerrokmsService.ListKeyAccess, `ferrokms key access --exact`): per class
 * of principals (a user, the sessions of a role, any principal of an
 * account...), the actions it may use and by which path — the key policy,
 * the key policy's delegation and an identity policy, or a grant —
 * unconditionally or only for requests carrying some context (with an
 * example). It needs kms:GetKeyPolicy, kms:ListGrants and
 * iam:GetAccountAuthorizationDetails.
 */
function accessMap(app, meta, current) {
  const s = app.session;
  const err = errorBox();
  const status = h("p", { class: "muted map-status", "aria-live": "polite", "data-map": "idle" });
  const out = h("div", { class: "access-map" });
  const open = h("details", { class: "map" },
    h("summary", {}, "Show who can use this key"),
    h("p", { class: "muted" }, "Every class of principals that can use the key as it is saved, by path (key policy, the key policy's delegation and an identity policy, a grant), from the server's whole-space analysis (ferrokms key access --exact). Conditional access is marked, with a request context that gets it. Other accounts' own policies are not read: their principals are shown as the key lets them in (their account must allow it too)."),
    status, out, err);
  let built = false;
  open.addEventListener("toggle", () => {
    if (!open.open || built) return;
    built = true;
    status.dataset.map = "loading";
    status.textContent = "Analysing…";
    buildMap(s, meta).then((m) => {
      if (!current()) return;
      if (m.unknown) {
        status.dataset.map = "unknown";
        status.textContent = `The analysis cannot decide this key: ${m.unknown}`;
        return;
      }
      out.append(accessTable(m), accessPicture(m), accessListing(m));
      status.dataset.map = "done";
      status.textContent = `${m.rows.length} class${m.rows.length === 1 ? "" : "es"} of principals, ${m.entries.length} path${m.entries.length === 1 ? "" : "s"}; the table shows ${MAP_ACTIONS.length} actions, the list below every action.`;
    }, (e) => {
      status.dataset.map = "failed";
      status.textContent = "The access map is unavailable.";
      showError(err, e);
    });
  });
  return h("section", { "aria-labelledby": "access-title", class: "access" }, open);
}

async function buildMap(s, meta) {
  const answer = await s.ferrokms("ListKeyAccess", { KeyId: meta.Arn });
  if (!answer.exact) return { unknown: answer.unknown || "unknown", rows: [], entries: [] };
  const entries = answer.access || [];
  const rows = [];
  for (const e of entries) {
    let row = rows.find((r) => r.arn === e.principal);
    if (!row) {
      row = { arn: e.principal, example: e.example, external: e.external, cells: {} };
      rows.push(row);
    }
    for (const a of e.actions) {
      const action = a.startsWith("kms:") ? a : `kms:${a}`;
      const have = row.cells[action];
      // An unconditional path before a conditional one; the listing's
      // order (key policy, delegation, grant) among equals.
      if (!have || (have.conditional && !e.conditional)) row.cells[action] = { path: e.path, kind: pathKind(e.path), conditional: e.conditional, context: e.exampleContext || [] };
    }
  }
  return { rows, entries };
}

function contextText(ctx) {
  return ctx.length ? ctx.map((c) => `${c.key}=${c.value}`).join(" ") : "(no condition keys)";
}

/** Every entry of the listing, as `key access --exact` prints it. */
function accessListing(m) {
  return h("div", { class: "access-listing" }, h("h3", {}, "Every path"),
    h("ul", {}, m.entries.map((e) => h("li", { "data-principal": e.principal, "data-path": e.path, "data-conditional": String(e.conditional) },
      h("strong", {}, e.principal), e.external ? " (external)" : "", `: ${e.conditional ? "conditional, " : ""}${e.path}: ${e.actions.join(", ")}`,
      e.conditional ? h("div", { class: "muted example" }, `e.g. ${e.example} with ${contextText(e.exampleContext || [])}`) : null))));
}

function accessTable(m) {
  return h("div", { class: "table-wrap" }, h("table", { "aria-label": "Who can use this key", class: "access-table" },
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Principal"),
      MAP_ACTIONS.map((a) => h("th", { scope: "col" }, a.replace("kms:", ""))))),
    h("tbody", {}, m.rows.map((r) => h("tr", { "data-principal": r.arn },
      h("th", { scope: "row", class: "principal" }, r.arn, r.external ? h("span", { class: "muted" }, " (external)") : null),
      MAP_ACTIONS.map((a) => {
        const c = r.cells[a];
        if (!c) return h("td", { class: "cell none", "data-action": a }, "—");
        return h("td", { class: `cell ${PATHS[c.kind].cls}${c.conditional ? " conditional" : ""}`, "data-action": a, "data-path": c.path, "data-conditional": String(c.conditional), title: c.conditional ? `only with ${contextText(c.context)}` : "" },
          c.conditional ? [`${c.kind} (conditional)`, h("span", { class: "example" }, ` e.g. ${contextText(c.context)}`)] : c.kind);
      }))))));
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** The map as a picture: principals on the left, actions on the right, a line per path. */
function accessPicture(m) {
  const short = (arn) => (arn.length > 46 ? `…${arn.slice(-45)}` : arn);
  const rowH = 26;
  const left = 330;
  const right = 560;
  const height = Math.max(m.rows.length, MAP_ACTIONS.length) * rowH + 60;
  const pY = (i) => 40 + i * rowH + (Math.max(0, MAP_ACTIONS.length - m.rows.length) * rowH) / 2;
  const aY = (j) => 40 + j * rowH + (Math.max(0, m.rows.length - MAP_ACTIONS.length) * rowH) / 2;
  const lines = [];
  m.rows.forEach((r, i) => MAP_ACTIONS.forEach((a, j) => {
    const c = r.cells[a];
    if (!c) return;
    lines.push(svg("path", {
      d: `M${left} ${pY(i)} C${(left + right) / 2} ${pY(i)}, ${(left + right) / 2} ${aY(j)}, ${right} ${aY(j)}`,
      fill: "none", stroke: PATHS[c.kind].color, "stroke-width": 2, "stroke-opacity": 0.75,
      "stroke-dasharray": c.conditional ? "6 4" : "none", class: `edge ${PATHS[c.kind].cls}${c.conditional ? " conditional" : ""}`,
    }, svg("title", {}, `${r.arn} → ${a}: ${c.path}${c.conditional ? ` (conditional, e.g. ${contextText(c.context)})` : ""}`)));
  }));
  const legend = Object.entries(PATHS).map(([name, p], k) => svg("g", { transform: `translate(${10 + k * 200}, 14)` },
    svg("line", { x1: 0, y1: 0, x2: 24, y2: 0, stroke: p.color, "stroke-width": 3 }),
    svg("text", { x: 30, y: 4, "font-size": 12 }, name)));
  legend.push(svg("g", { transform: "translate(610, 14)" },
    svg("line", { x1: 0, y1: 0, x2: 24, y2: 0, stroke: "#444", "stroke-width": 3, "stroke-dasharray": "6 4" }),
    svg("text", { x: 30, y: 4, "font-size": 12 }, "conditional")));
  const pic = svg("svg", {
    viewBox: `0 0 820 ${height}`, width: "100%", role: "img",
    "aria-label": `Who can use this key: ${lines.length} paths from ${m.rows.length} principals to ${MAP_ACTIONS.length} actions`,
    class: "access-picture",
  },
  ...legend,
  ...lines,
  ...m.rows.map((r, i) => svg("g", {},
    svg("circle", { cx: left, cy: pY(i), r: 5, fill: "#444" }),
    svg("text", { x: left - 10, y: pY(i) + 4, "text-anchor": "end", "font-size": 12 }, short(r.arn), svg("title", {}, r.arn)))),
  ...MAP_ACTIONS.map((a, j) => svg("g", {},
    svg("circle", { cx: right, cy: aY(j), r: 5, fill: "#444" }),
    svg("text", { x: right + 10, y: aY(j) + 4, "font-size": 12 }, a))));
  return h("div", { class: "picture-wrap" }, pic);
}
