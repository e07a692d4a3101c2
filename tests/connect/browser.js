#!/usr/bin/env node
// tests/connect/browser.js — open a page in Debian's headless Chromium
// (driven by playwright-core, which downloads no browser) and wait for
// what shows that a real app works, websockets included:
//
//   node browser.js --check code-server|jupyter|cookies --url URL
//        [--login SERVER_URL --email E --password P] [--file NAME]
//        [--screenshot PNG] [--timeout SECONDS]
//
// --login signs in the way a person does: the page POSTs to the server's
// login route, which sets the session cookie (HttpOnly) in the browser.
// Checks:
//   code-server  the VS Code workbench renders (.monaco-workbench) and its
//                explorer lists --file from the opened folder: the file list
//                comes over code-server's websocket, so this proves it works
//   jupyter      a notebook's first cell runs `6*7` on the kernel (kernels
//                talk over websockets) and its output is 42
//   cookies      prints document.cookie as the page sees it (one line,
//                "cookies: …"), so the caller can check what an app reads
// Prints "ok: …" and exits 0, or "FAIL: …" and exits 1. Needs NODE_PATH
// (or a node_modules above it) holding playwright-core.
"use strict";
const { chromium } = require("playwright-core");

function args(argv) {
  const a = { timeout: 90 };
  for (let i = 2; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, "");
    a[k] = argv[i + 1];
  }
  a.timeout = Number(a.timeout) * 1000;
  return a;
}

async function login(page, a) {
  // A page on the server's origin, so the cookie lands where the apps are.
  await page.goto(a.login + "/healthz");
  const status = await page.evaluate(
    async ({ email, password }) => {
      const r = await fetch("/api/v2/users/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ email, password }),
      });
      return r.status;
    },
    { email: a.email, password: a.password },
  );
  if (status !== 201) throw new Error(`login answered ${status}`);
}

async function codeServer(page, a) {
  await page.waitForSelector(".monaco-workbench", { timeout: a.timeout });
  const name = a.file || "hello-atrium.txt";
  await page.waitForSelector(
    `.explorer-folders-view .monaco-list-row[aria-label*="${name}"], ` +
      `.explorer-folders-view :text("${name}")`,
    { timeout: a.timeout },
  );
  return `the workbench rendered and its explorer lists ${name}`;
}

async function jupyter(page, a) {
  await page.waitForFunction(
    () =>
      window.Jupyter &&
      Jupyter.notebook &&
      Jupyter.notebook.kernel &&
      Jupyter.notebook.kernel.is_connected(),
    null,
    { timeout: a.timeout },
  );
  await page.evaluate(() => {
    const cell = Jupyter.notebook.get_cell(0);
    cell.set_text("6*7");
    cell.execute();
  });
  const out = await page.waitForFunction(
    () => {
      const o = document.querySelector(".output_result pre, .output_result");
      return o && o.textContent.trim() === "42" ? o.textContent.trim() : null;
    },
    null,
    { timeout: a.timeout },
  );
  return `a cell ran 6*7 on the kernel: ${await out.jsonValue()}`;
}

async function main() {
  const a = args(process.argv);
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    // The machine's network is closed: without these Chromium keeps
    // dialing out (and, as root, it needs --no-sandbox).
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
  let code = 1;
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  try {
    if (a.login) await login(page, a);
    const r = await page.goto(a.url, { timeout: a.timeout });
    if (!r || r.status() >= 400)
      throw new Error(`${a.url} answered ${r ? r.status() : "nothing"}`);
    let what;
    if (a.check === "code-server") what = await codeServer(page, a);
    else if (a.check === "jupyter") what = await jupyter(page, a);
    else if (a.check === "cookies")
      what = "cookies: " + (await page.evaluate(() => document.cookie));
    else throw new Error(`unknown --check ${a.check}`);
    console.log("ok: " + what);
    code = 0;
  } catch (e) {
    console.log("FAIL: " + (e && e.message ? e.message : e));
    if (errors.length) console.log("page errors:\n" + errors.join("\n"));
    try {
      console.log("url now: " + page.url());
      console.log(
        "page text: " +
          (await page.evaluate(() => document.body.innerText)).slice(0, 2000),
      );
    } catch (_) {}
  }
  if (a.screenshot) {
    try {
      await page.screenshot({ path: a.screenshot });
    } catch (_) {}
  }
  await browser.close();
  process.exit(code);
}

main().catch((e) => {
  console.log("FAIL: " + e);
  process.exit(1);
});
