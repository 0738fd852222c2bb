// Drives the server under test with the official ConvexClient over WebSocket (live queries) and
// prints what it saw as JSON on the last line. Run by ../sync_clients.rs.
import { ConvexClient } from "convex/browser";
import { makeFunctionReference } from "convex/server";
import { ConvexError } from "convex/values";

const url = process.argv[2];
const fn = (name) => makeFunctionReference(name);
const out = {};
const deadline = (what) => setTimeout(() => {
  console.log(JSON.stringify({ timeout: what, out }));
  process.exit(2);
}, 20000);

async function waitFor(what, ready) {
  const timer = deadline(what);
  while (!ready()) await new Promise((r) => setTimeout(r, 10));
  clearTimeout(timer);
}

const watcher = new ConvexClient(url);
const writer = new ConvexClient(url);

// A subscription, then a mutation by another client.
const lists = [];
const unsubscribe = watcher.onUpdate(fn("messages:list"), {}, (docs) => lists.push(docs.map((d) => d.body)));
await waitFor("the first result", () => lists.length >= 1);
out.initial = lists[0];
out.sentId = await writer.mutation(fn("messages:send"), { body: "hello from npm" });
await waitFor("the update", () => lists.some((l) => l.includes("hello from npm")));
out.afterSend = lists[lists.length - 1];

// A mutation's promise resolves only once its own client has seen a Transition at its ts: the
// writer's own subscription must already show the new message when the promise resolves.
const counts = [];
writer.onUpdate(fn("messages:count"), {}, (n) => counts.push(n));
await waitFor("the count", () => counts.length >= 1);
await writer.mutation(fn("messages:send"), { body: "second" });
out.countWhenResolved = counts[counts.length - 1];

// A large result travels as several WebSocket frames.
out.bigLength = (await watcher.query(fn("messages:big"), { size: 100000 })).length;

// One-shot query, action, ConvexError.
out.oneShot = await watcher.query(fn("messages:count"), {});
out.acted = await writer.action(fn("messages:act"), { body: "from an action" });
try {
  await writer.mutation(fn("messages:fail"), {});
  out.failure = "no error thrown";
} catch (e) {
  out.failure = { isConvexError: e instanceof ConvexError, data: e.data, message: e.message };
}
try {
  await writer.action(fn("messages:actFail"), {});
  out.actionFailure = "no error thrown";
} catch (e) {
  out.actionFailure = { isConvexError: e instanceof ConvexError, data: e.data };
}

// Authentication with a session token; signing out turns the live result into an error.
const token = await writer.mutation(fn("auth:login"), { name: "npm-user" });
const authChanges = [];
watcher.setAuth(async () => token, (isAuthenticated) => authChanges.push(isAuthenticated));
const me = [];
watcher.onUpdate(
  fn("auth:me"),
  {},
  (v) => me.push(v),
  (e) => me.push({ error: e instanceof ConvexError ? e.data : e.message }),
);
await waitFor("the signed-in user", () => me.some((v) => v && v.name === "npm-user"));
out.me = me.find((v) => v && v.name);
out.authChanges = authChanges.slice();
await writer.mutation(fn("auth:logout"), { token });
await waitFor("the sign-out", () => me.some((v) => v && v.error));
out.afterLogout = me[me.length - 1];

// Unsubscribed: no more updates.
unsubscribe();
const seen = lists.length;
await writer.mutation(fn("messages:send"), { body: "after unsubscribe" });
await new Promise((r) => setTimeout(r, 300));
out.updatesAfterUnsubscribe = lists.length - seen;

await watcher.close();
await writer.close();
console.log(JSON.stringify(out));
process.exit(0);
