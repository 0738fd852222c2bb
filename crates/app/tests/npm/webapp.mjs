// Makes calls the way SupportSignal's web app does: the official ConvexClient over one WebSocket,
// function references by path, `sessionToken` in the arguments (the app's provider injects it into
// mutations and actions; its queries send whatever the component passes, often nothing).
//
//   node webapp.mjs <server url> '<json: [{kind, path, args}, ...]>'
//
// Runs the calls in order and prints one JSON array on its last line, one entry per call:
// `{value}` or `{error: {isConvexError, data, message}}`. `data` is the ConvexError's data as the
// app sees it (a string or an object); a plain error has none. Run by ../webapp/main.rs.
import { ConvexClient } from "convex/browser";
import { makeFunctionReference } from "convex/server";
import { ConvexError } from "convex/values";

const [url, input = "[]"] = process.argv.slice(2);
const calls = JSON.parse(input);
const client = new ConvexClient(url);

const timer = setTimeout(() => {
  console.log(JSON.stringify({ timeout: "calls did not finish in 30 s" }));
  process.exit(2);
}, 30000);

const results = [];
for (const { kind, path, args } of calls) {
  try {
    const value = await client[kind](makeFunctionReference(path), args ?? {});
    results.push({ value: value === undefined ? null : value });
  } catch (e) {
    results.push({
      error: {
        isConvexError: e instanceof ConvexError,
        data: e instanceof ConvexError ? e.data : null,
        message: e.message,
      },
    });
  }
}
clearTimeout(timer);
await client.close();
console.log(JSON.stringify(results));
