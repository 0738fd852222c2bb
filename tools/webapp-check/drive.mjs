// Drives the unchanged web app (next dev on :3200) against our server (:3210) in headless Chromium:
// for each role, signs in through the login page, visits pages, and records crashes, console errors
// and every failed function call seen on the WebSocket.
//   node drive.mjs '<json: [{label, email, password, pages: [..]}]>'
import { chromium } from "playwright-core";
import fs from "node:fs";

const APP = process.env.APP_URL ?? "http://localhost:3200";
const runs = JSON.parse(process.argv[2]);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
const report = [];
fs.mkdirSync("shots", { recursive: true });

for (const run of runs) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const failures = [];
  const pending = new Map();
  page.on("console", (m) => {
    if (m.type() === "error") failures.push({ kind: "console", text: m.text().slice(0, 300) });
  });
  page.on("pageerror", (e) => failures.push({ kind: "pageerror", text: String(e).slice(0, 300) }));
  page.on("websocket", (ws) => {
    ws.on("framesent", (f) => {
      try {
        const msg = JSON.parse(f.payload);
        if (msg.type === "ModifyQuerySet")
          for (const m of msg.modifications) if (m.type === "Add") pending.set(`q${m.queryId}`, m.udfPath);
        if (msg.type === "Mutation" || msg.type === "Action") pending.set(`r${msg.requestId}`, msg.udfPath);
      } catch {}
    });
    ws.on("framereceived", (f) => {
      try {
        const msg = JSON.parse(f.payload);
        if (msg.type === "Transition")
          for (const m of msg.modifications)
            if (m.type === "QueryFailed")
              failures.push({ kind: "query", path: pending.get(`q${m.queryId}`), text: m.errorMessage?.slice(0, 200), data: m.errorData });
        if ((msg.type === "MutationResponse" || msg.type === "ActionResponse") && !msg.success)
          failures.push({ kind: msg.type, path: pending.get(`r${msg.requestId}`), text: String(msg.result).slice(0, 200), data: msg.errorData });
      } catch {}
    });
  });
  const visits = [];
  if (run.email) {
    await page.goto(`${APP}/login/`, { waitUntil: "domcontentloaded", timeout: 120000 });
    await page.waitForSelector('input[type="email"]', { timeout: 120000 });
    await page.fill('input[type="email"]', run.email);
    await page.fill('input[type="password"]', run.password);
    await page.click('button[type="submit"]');
    await page.waitForTimeout(4000);
    visits.push({ page: "/login", url: page.url() });
  }
  for (const p of run.pages) {
    const before = failures.length;
    try {
      await page.goto(`${APP}${p}`, { waitUntil: "domcontentloaded", timeout: 180000 });
      await page.waitForTimeout(run.wait ?? 5000);
    } catch (e) {
      failures.push({ kind: "navigation", text: String(e).slice(0, 200) });
    }
    const body = await page.textContent("body").catch(() => "");
    const crashed = /Application error/.test(body ?? "") || failures.slice(before).some((f) => f.kind === "pageerror");
    const shot = `shots/${run.label}${p.replace(/[^a-z0-9]+/gi, "_")}.png`;
    await page.screenshot({ path: shot, fullPage: false }).catch(() => {});
    visits.push({ page: p, url: page.url(), crashed, newFailures: failures.slice(before) });
  }
  report.push({ label: run.label, visits });
  await context.close();
}
await browser.close();
console.log(JSON.stringify(report, null, 1));
