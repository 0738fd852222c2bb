// A ConvexClient through a connection failure and a server restart. Prints one JSON line per step;
// the test (../sync_clients.rs) cuts the network or restarts the server between steps and answers
// on stdin.
import { ConvexClient } from "convex/browser";
import { makeFunctionReference } from "convex/server";
import readline from "node:readline";

const url = process.argv[2];
const name = process.argv[3];
const fn = (n) => makeFunctionReference(n);
const say = (step, extra = {}) => console.log(JSON.stringify({ step, ...extra }));
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const waitLine = async () => (await lines.next()).value;
setTimeout(() => {
  say("timeout");
  process.exit(2);
}, 60000);

async function waitFor(ready) {
  while (!ready()) await new Promise((r) => setTimeout(r, 10));
}

const client = new ConvexClient(url);
const values = [];
client.onUpdate(fn("counter:get"), { name }, (v) => values.push(v));
await waitFor(() => values.length >= 1);
say("subscribed", { value: values[0] });

// Sent, then the connection drops while it runs on the server; the client sends it again on
// reconnecting, and it must apply once.
const slow = client.mutation(fn("counter:slowBump"), { name, delayMs: 600 });
say("sent");
const first = await slow;
await waitFor(() => values.includes(1));
say("bumped", { result: first });

await waitLine(); // the server restarted
const second = await client.mutation(fn("counter:bump"), { name });
await waitFor(() => values.includes(2));
say("done", { result: second, values });
await client.close();
process.exit(0);
