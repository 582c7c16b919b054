// Drives the ferrokms console in headless Chromium (Debian's /usr/bin/chromium)
// with playwright-core, as tests/e2e/test_console.py asks: every step a
// person would take, with what the page showed written as JSON on the last
// line of stdout for the Python test to check. Any wait that times out
// throws, and the script exits non-zero with the step it was in.
//
// Environment (all set by test_console.py):
//   FERROKMS_CONSOLE_URL   http://127.0.0.1:PORT/console/
//   CONSOLE_USER           JSON {accessKeyId, secretAccessKey}: the user of the key tests
//   CONSOLE_ROLE           JSON {accessKeyId, secretAccessKey, sessionToken}: a role session
//   CONSOLE_BIG_USER       JSON {accessKeyId, secretAccessKey}: a user of an account of 1,000 keys
//   CONSOLE_KEY            JSON {keyId, alias, lockoutPolicy, newPolicy}
//                          (mode "history": {keyId} only)
//   CONSOLE_SIM            JSON {denied, deniedName, allowed, granted, grantToken, conditional, other}: principal ARNs
//                          for the simulation (mode "history")
//   CONSOLE_LINT           "available" or "unavailable" (whether the server has ValidatePolicy)
//   CONSOLE_SCREENSHOTS    a directory for the PNG screenshots
//   CHROMIUM               the browser (default /usr/bin/chromium)

"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

const STEP_TIMEOUT = 15000;
const url = process.env.FERROKMS_CONSOLE_URL;
// "full" (the default), "sign-in" (sign in, see the keys page, stop:
// only CONSOLE_USER is needed) or "history" (sign in, open CONSOLE_KEY's
// page, read its History and open its first denial: CONSOLE_USER and
// CONSOLE_KEY).
const mode = process.argv[2] || "full";
const env = (name) => JSON.parse(process.env[name] || "null");
const user = env("CONSOLE_USER");
const bigUser = env("CONSOLE_BIG_USER");
const role = env("CONSOLE_ROLE");
const key = env("CONSOLE_KEY");
const lintMode = process.env.CONSOLE_LINT;
const sim = env("CONSOLE_SIM");
const shots = process.env.CONSOLE_SCREENSHOTS;

const out = { steps: [], consoleErrors: [], expectedNetworkErrors: [], pageErrors: [] };
let step = "start";
let expectErrors = false;

async function main() {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ferrokms-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
    viewport: { width: 1280, height: 800 },
    timeout: 60000,
  });
  try {
    await run(context);
  } catch (e) {
    const page = context.pages()[0];
    if (page) {
      out.alerts = await page.locator("[role=alert]").allTextContents().catch(() => []);
      await shot(page, "failure").catch(() => {});
    }
    throw e;
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

function begin(name, { awsErrors = false } = {}) {
  step = name;
  expectErrors = awsErrors;
  out.steps.push(name);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`) });
}

async function signIn(page, creds, { keyboard = false } = {}) {
  await page.goto(url + "#/sign-in");
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  if (keyboard) {
    // The form by keyboard alone: the first field has the focus.
    await page.keyboard.type(creds.accessKeyId);
    await page.keyboard.press("Tab");
    await page.keyboard.type(creds.secretAccessKey);
    await page.keyboard.press("Tab");
    await page.keyboard.press("Tab");
    await page.keyboard.press("Control+A");
    await page.keyboard.type("us-east-1");
    await page.keyboard.press("Enter");
  } else {
    await page.getByLabel("Access key ID").fill(creds.accessKeyId);
    await page.getByLabel("Secret access key").fill(creds.secretAccessKey);
    await page.getByLabel("Session token").fill(creds.sessionToken || "");
    await page.getByLabel("Region").fill("us-east-1");
    await page.getByRole("button", { name: "Sign in" }).click();
  }
}

async function keyState(page) {
  return (await page.locator('dd[data-field="State"]').textContent()).trim();
}

async function noHorizontalOverflow(page) {
  return page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
}

async function run(context) {
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT);
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const e = { step, text: m.text(), url: m.location().url || "" };
    // An AWS error answer (4xx) is logged by Chromium as a failed load; it
    // is expected in the steps that provoke one, and from the console's
    // ValidatePolicy probe on a server without Access Analyzer; nothing
    // else is.
    const failedLoad = /^Failed to load resource: the server responded with a status of 4\d\d/.test(e.text);
    const probe = lintMode === "unavailable" && e.url.endsWith("/policy/validation");
    if (failedLoad && (expectErrors || probe)) {
      out.expectedNetworkErrors.push(e);
    } else {
      out.consoleErrors.push(e);
    }
  });
  page.on("pageerror", (e) => out.pageErrors.push({ step, text: String(e) }));

  if (mode === "sign-in") {
    begin("sign in");
    await signIn(page, user);
    await page.getByRole("heading", { name: "Keys" }).waitFor();
    await page.locator("table[aria-label=Keys] tbody tr td.state-Enabled").first().waitFor();
    out.rows = await page.locator("table[aria-label=Keys] tbody tr").count();
    out.userAgent = await page.evaluate(() => navigator.userAgent);
    begin("done");
    return;
  }

  if (mode === "history") {
    begin("sign in");
    await signIn(page, user);
    await page.getByRole("heading", { name: "Keys" }).waitFor();
    begin("history");
    await page.goto(url + `#/keys/${encodeURIComponent(key.keyId)}`);
    await page.getByRole("heading", { name: "History" }).waitFor();
    await page.locator('.history-status[data-history="done"]').waitFor();
    const rows = page.locator("table[aria-label=History] tbody tr");
    out.historyRows = await Promise.all((await rows.all()).map(async (r) => ({
      time: (await r.locator("td").nth(0).textContent()).trim(),
      user: (await r.locator("td").nth(1).textContent()).trim(),
      event: (await r.locator("td").nth(2).textContent()).trim(),
      outcome: (await r.locator("td").nth(3).locator("summary, span").first().textContent()).trim(),
      eventId: await r.getAttribute("data-event-id"),
    })));
    out.historyStatus = (await page.locator(".history-status").textContent()).trim();
    await page.locator("section.history").scrollIntoViewIfNeeded();
    await shot(page, "history");
    begin("open a denial");
    const denial = page.locator("table[aria-label=History] details.denial").first();
    await denial.locator("summary").click();
    await denial.locator(".denial-message").waitFor();
    out.denial = {
      open: await denial.evaluate((d) => d.open),
      message: (await denial.locator(".denial-message").textContent()).trim(),
      decisions: (await denial.locator("ul.decisions > li").allTextContents()).map((t) => t.trim()),
      fixes: (await denial.locator("ul.fixes > li").allTextContents()).map((t) => t.trim()),
    };
    await denial.scrollIntoViewIfNeeded();
    await shot(page, "history-denial");
    // The keyboard opens and closes it too.
    await denial.locator("summary").focus();
    await page.keyboard.press("Enter");
    out.denialClosedByKeyboard = !(await denial.evaluate((d) => d.open));
    // Live simulation (the server's engine, policy simulate's words): a
    // denied request, an allowed one, one allowed by a grant, one denied
    // but for a condition, and another account's root.
    const simulate = async (principal, arn, context, tokens) => {
      const select = page.getByLabel("Principal", { exact: true });
      await select.locator(`option[value="${principal}"]`).waitFor({ state: "attached" });
      await select.selectOption(principal);
      if (arn) await page.getByLabel(/^Principal ARN/).fill(arn);
      await page.getByLabel("Action", { exact: true }).selectOption("kms:Encrypt");
      await page.getByLabel(/^Context values/).fill(context || "");
      await page.getByLabel(/^Grant tokens/).fill(tokens || "");
      await page.locator(".sim-outcome").evaluateAll((els) => els.forEach((e) => e.remove()));
      await page.getByRole("button", { name: "Simulate", exact: true }).click();
      const res = page.locator(".sim-outcome");
      await res.waitFor();
      const texts = async (sel) => (await res.locator(sel).allTextContents()).map((t) => t.trim());
      return {
        decision: await res.getAttribute("data-decision"),
        text: (await res.locator(".sim-decision").textContent()).trim(),
        decisionText: (await texts(".sim-decision-text"))[0] || null,
        message: (await texts(".sim-message"))[0] || null,
        matched: await texts("ul.sim-matched > li"),
        inert: await texts("ul.sim-inert > li"),
        fixes: await texts("ul.sim-fixes > li"),
        tokens: await texts("ul.sim-tokens > li"),
      };
    };
    begin("simulate denied");
    await page.locator("summary", { hasText: "Open the simulator" }).click();
    out.simDenied = await simulate(sim.denied);
    await page.locator("section.simulate").scrollIntoViewIfNeeded();
    await shot(page, "simulate-denied");
    begin("simulate allowed");
    out.simAllowed = await simulate(sim.allowed);
    await page.locator("section.simulate").scrollIntoViewIfNeeded();
    await shot(page, "simulate-allowed");
    begin("simulate a grant");
    out.simGrant = await simulate(sim.granted, null, "", sim.grantToken);
    await page.locator("section.simulate").scrollIntoViewIfNeeded();
    await shot(page, "simulate-grant");
    begin("simulate a condition");
    out.simCondition = await simulate(sim.conditional);
    out.simConditionMet = await simulate(sim.conditional, null, "kms:EncryptionContext:app=demo");
    begin("simulate another account");
    out.simOther = await simulate("Other principal (ARN)…", sim.other);
    begin("access map");
    await page.locator("summary", { hasText: "Show who can use this key" }).click();
    await page.locator('.map-status[data-map="done"]').waitFor();
    out.accessMap = {};
    for (const r of await page.locator("table[aria-label='Who can use this key'] tbody tr").all()) {
      const cells = {};
      for (const c of await r.locator("td").all()) {
        cells[await c.getAttribute("data-action")] = {
          text: (await c.textContent()).trim(),
          path: await c.getAttribute("data-path"),
          conditional: await c.getAttribute("data-conditional"),
        };
      }
      out.accessMap[await r.getAttribute("data-principal")] = cells;
    }
    out.accessListing = await Promise.all((await page.locator(".access-listing li").all()).map(async (li) => ({
      principal: await li.getAttribute("data-principal"),
      path: await li.getAttribute("data-path"),
      conditional: await li.getAttribute("data-conditional"),
      text: (await li.textContent()).trim(),
    })));
    out.accessEdges = await page.locator("svg.access-picture path.edge").count();
    out.accessConditionalEdges = await page.locator("svg.access-picture path.edge.conditional").count();
    out.accessPictureLabel = await page.locator("svg.access-picture").getAttribute("aria-label");
    out.mapStatus = (await page.locator(".map-status").textContent()).trim();
    await page.locator("section.access").scrollIntoViewIfNeeded();
    await shot(page, "access-map");
    await page.locator("svg.access-picture").scrollIntoViewIfNeeded();
    await shot(page, "access-picture");
    begin("account history");
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "History" }).click();
    await page.getByRole("heading", { name: "History", level: 1 }).waitFor();
    await page.locator('.history-status[data-history="done"]').waitFor();
    out.accountHistoryUsers = (await page.locator("table[aria-label=History] tbody td.user").allTextContents()).map((t) => t.trim());
    await page.getByLabel("Filter by").selectOption("Username");
    await page.getByLabel("Value", { exact: true }).fill(sim.deniedName);
    await page.getByRole("button", { name: "Apply filter" }).click();
    await page.waitForFunction(() => location.hash.startsWith("#/history?"));
    await page.locator('.history-status[data-history="done"]').waitFor();
    out.filteredHistory = await Promise.all((await page.locator("table[aria-label=History] tbody tr").all()).map(async (r) => ({
      user: (await r.locator("td.user").textContent()).trim(),
      event: (await r.locator("td").nth(2).textContent()).trim(),
    })));
    out.filteredHash = await page.evaluate(() => location.hash);
    await shot(page, "account-history");
    begin("narrow history");
    await page.setViewportSize({ width: 390, height: 800 });
    out.historyFitsNarrow = await noHorizontalOverflow(page);
    await page.setViewportSize({ width: 1280, height: 800 });
    begin("done");
    return;
  }

  begin("sign-in page");
  await page.goto(url);
  await page.getByRole("button", { name: "Sign in" }).waitFor();
  out.signInLabels = await page.evaluate(() =>
    [...document.querySelectorAll("input")].map((i) => (i.labels && i.labels[0] ? i.labels[0].textContent.trim() : null)));
  await shot(page, "sign-in");

  begin("wrong secret", { awsErrors: true });
  await signIn(page, { accessKeyId: user.accessKeyId, secretAccessKey: user.secretAccessKey + "x" }, { keyboard: true });
  const alert = page.getByRole("alert").filter({ hasText: /\S/ });
  await alert.waitFor();
  out.wrongSecretError = (await alert.textContent()).trim();
  out.wrongSecretStillOnSignIn = await page.getByRole("button", { name: "Sign in" }).isVisible();
  out.storageAfterWrongSecret = await page.evaluate(() => sessionStorage.length + localStorage.length + document.cookie.length);
  await shot(page, "sign-in-error");

  begin("temporary credentials");
  await signIn(page, role);
  await page.getByRole("heading", { name: "Keys" }).waitFor();
  out.roleWho = (await page.locator("#who").textContent()).trim();
  await page.locator(`tr[data-key-id="${key.keyId}"]`).waitFor();
  out.roleSeesKey = true;
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("button", { name: "Sign in" }).waitFor();

  begin("sign in");
  await signIn(page, user);
  await page.getByRole("heading", { name: "Keys" }).waitFor();
  out.who = (await page.locator("#who").textContent()).trim();
  out.cookies = (await context.cookies()).length;
  out.localStorage = await page.evaluate(() => localStorage.length);

  begin("keys page");
  const row = page.locator(`tr[data-key-id="${key.keyId}"]`);
  await row.waitFor();
  await row.locator("td.state-Enabled").waitFor();
  out.keyRow = (await row.locator("td").allTextContents()).map((t) => t.trim());
  await page.getByLabel("Filter keys").fill(key.alias);
  out.filteredRows = await page.locator("table[aria-label=Keys] tbody tr:not([hidden])").count();
  out.keysFitAt1280 = await noHorizontalOverflow(page);
  await page.getByLabel("Filter keys").fill("");
  await shot(page, "keys");

  begin("create key");
  await page.locator("summary", { hasText: "Create a key" }).click();
  await page.getByLabel("Description").fill("made in the console");
  await page.getByRole("button", { name: "Create key" }).click();
  await page.locator('dd[data-field="Description"]', { hasText: "made in the console" }).waitFor();
  out.createdKeyId = (await page.locator('dd[data-field="Key ID"]').textContent()).trim();

  begin("open key by alias");
  await page.goto(url + "#/keys");
  await page.locator(`tr[data-key-id="${key.keyId}"] a`, { hasText: key.alias }).click();
  await page.getByRole("heading", { name: "Key policy" }).waitFor();
  out.keyPage = {
    title: (await page.locator("h1").textContent()).trim(),
    keyId: (await page.locator('dd[data-field="Key ID"]').textContent()).trim(),
    state: await keyState(page),
    spec: (await page.locator('dd[data-field="Key spec"]').textContent()).trim(),
    origin: (await page.locator('dd[data-field="Origin"]').textContent()).trim(),
    rotation: (await page.locator('dd[data-field="Rotation"]').textContent()).trim(),
    tags: (await page.locator("table[aria-label=Tags] td").allTextContents()).map((t) => t.trim()),
    grants: (await page.locator("table[aria-label=Grants] tbody tr").count()),
    rotations: (await page.locator("table[aria-label='Key rotations'] tbody tr").count()),
  };
  await shot(page, "key");

  begin("add alias and tag");
  await page.getByLabel("Alias name").fill(key.alias + "-2");
  await page.getByRole("button", { name: "Add alias" }).click();
  await page.locator("li", { hasText: key.alias + "-2" }).waitFor();
  await page.getByLabel("Tag key").fill("added-by");
  await page.getByLabel("Tag value").fill("console");
  await page.getByRole("button", { name: "Add tag" }).click();
  await page.locator("table[aria-label=Tags] td", { hasText: "added-by" }).waitFor();

  begin("policy editor", { awsErrors: true });
  const editor = page.getByRole("textbox", { name: "Key policy" });
  await editor.waitFor();
  out.policyShown = await page.locator(".cm-content").textContent();
  // Tab is not trapped by the editor: it moves on to the Save button.
  await editor.click();
  await page.keyboard.press("Tab");
  out.tabLeavesEditor = await page.evaluate(() => document.activeElement && document.activeElement.textContent === "Save policy");
  const status = page.locator(".lint-status");
  await page.waitForFunction(() => document.querySelector(".lint-status").dataset.lint !== "pending");
  out.lintState = await status.getAttribute("data-lint");
  out.lintText = (await status.textContent()).trim();
  if (lintMode === "available") {
    // An action that does not exist: Access Analyzer reports it in place.
    await editor.click();
    await page.keyboard.press("Control+A");
    await page.keyboard.insertText(key.lintPolicy);
    await page.locator(".cm-lintRange").first().waitFor();
    out.lintMarks = await page.locator(".cm-lintRange").count();
    out.lintText = (await status.textContent()).trim();
    await shot(page, "policy-lint");
  }

  begin("policy lockout refused", { awsErrors: true });
  await editor.click();
  await page.keyboard.press("Control+A");
  await page.keyboard.insertText(key.lockoutPolicy);
  await page.getByRole("button", { name: "Save policy" }).click();
  const perr = page.locator("section .error").filter({ hasText: /\S/ });
  await perr.waitFor();
  out.lockoutError = (await perr.textContent()).trim();
  await shot(page, "policy-error");

  begin("policy saved", { awsErrors: lintMode !== "available" });
  await editor.click();
  await page.keyboard.press("Control+A");
  await page.keyboard.insertText(key.newPolicy);
  await page.getByRole("button", { name: "Save policy" }).click();
  await page.getByText("Policy saved.").waitFor();
  out.policySaved = true;

  begin("disable and enable");
  await page.getByRole("button", { name: "Disable key" }).click();
  await page.locator('dd[data-field="State"]', { hasText: "Disabled" }).waitFor();
  out.afterDisable = await keyState(page);
  await page.getByRole("button", { name: "Enable key" }).click();
  await page.locator('dd[data-field="State"]', { hasText: "Enabled" }).waitFor();
  out.afterEnable = await keyState(page);

  begin("narrow window");
  await page.setViewportSize({ width: 390, height: 800 });
  await page.getByRole("heading", { name: "Metadata" }).waitFor();
  out.keyFitsNarrow = await noHorizontalOverflow(page);
  await shot(page, "key-narrow");
  await page.setViewportSize({ width: 1280, height: 800 });

  begin("schedule deletion");
  await page.getByRole("button", { name: "Schedule deletion…" }).click();
  const dialog = page.getByRole("dialog", { name: "Schedule key deletion" });
  await dialog.waitFor();
  await dialog.getByLabel("Waiting period (days)").fill("7");
  await shot(page, "schedule-deletion");
  // Escape, then Cancel: nothing happens.
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "detached" });
  await page.getByRole("button", { name: "Schedule deletion…" }).click();
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await dialog.waitFor({ state: "detached" });
  out.afterCancel = await keyState(page);
  await page.getByRole("button", { name: "Schedule deletion…" }).click();
  await dialog.getByLabel("Waiting period (days)").fill("7");
  await dialog.getByRole("button", { name: "Schedule deletion" }).click();
  await page.locator('dd[data-field="State"]', { hasText: "PendingDeletion" }).waitFor();
  out.afterDelete = await keyState(page);
  out.deletionDate = (await page.locator('dd[data-field="Deletion date"]').textContent()).trim();

  begin("sign out");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("button", { name: "Sign in" }).waitFor();
  out.storageAfterSignOut = await page.evaluate(() => sessionStorage.length);

  begin("1000 keys");
  await signIn(page, bigUser);
  await page.getByRole("heading", { name: "Keys" }).waitFor();
  // Timed from a fresh load of the page to the 1,000th row in the table.
  const t0 = Date.now();
  await page.reload();
  await page.locator("table[aria-label=Keys] tbody tr:nth-child(1000)").waitFor({ timeout: 10000 });
  out.bigRenderMs = Date.now() - t0;
  out.bigShownAt = Number(await page.locator("#main").getAttribute("data-shown-at"));
  out.bigAppRenderMs = Number(await page.locator("#main > .keys-page").getAttribute("data-render-ms"));
  out.bigNavTiming = await page.evaluate(() => {
    const n = performance.getEntriesByType("navigation")[0];
    return n ? { responseEnd: Math.round(n.responseEnd), domContentLoaded: Math.round(n.domContentLoadedEventEnd) } : null;
  });
  out.bigRows = await page.locator("table[aria-label=Keys] tbody tr").count();
  out.bigCount = await page.locator("table[aria-label=Keys]").getAttribute("data-count");
  // The visible rows get their metadata lazily.
  await page.locator("table[aria-label=Keys] tbody tr:nth-child(1) td.state-Enabled").waitFor();
  out.bigFirstRow = (await page.locator("table[aria-label=Keys] tbody tr:nth-child(1) td").allTextContents()).map((t) => t.trim());
  out.bigFitsAt1280 = await noHorizontalOverflow(page);
  await shot(page, "keys-many");
  await page.setViewportSize({ width: 390, height: 800 });
  out.bigFitsNarrow = await noHorizontalOverflow(page);
  await shot(page, "keys-narrow");
  await page.setViewportSize({ width: 1280, height: 800 });
  begin("done");
}

main().then(
  () => {
    console.log(JSON.stringify(out));
  },
  (e) => {
    console.log(JSON.stringify({ ...out, failed: `${step}: ${e && e.message ? e.message.split("\n")[0] : e}` }));
    process.exit(1);
  },
);
