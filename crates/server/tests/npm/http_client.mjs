// Calls the server under test with the official ConvexHttpClient and prints what it saw as JSON.
import { ConvexHttpClient } from "convex/browser";
import { makeFunctionReference } from "convex/server";
import { ConvexError } from "convex/values";

const url = process.argv[2];
const client = new ConvexHttpClient(url);
const fn = (name) => makeFunctionReference(name);
const out = {};

out.sent = await client.mutation(fn("messages:send"), { body: "from npm", author: "npm", n: 5n });
out.list = await client.query(fn("messages:list"), {});
out.acted = await client.action(fn("messages:act"), { body: "npm action" });
out.echo = await client.query(fn("messages:echo"), { value: { big: 9007199254740993n, bytes: new Uint8Array([1, 2, 255]).buffer, neg: -0 } });
try {
  await client.mutation(fn("messages:sendThenFail"), { body: "clash" });
  out.failure = "no error thrown";
} catch (e) {
  out.failure = { isConvexError: e instanceof ConvexError, data: e.data, message: e.message };
}
try {
  await client.query(fn("messages:boom"), {});
  out.internal = "no error thrown";
} catch (e) {
  out.internal = { isConvexError: e instanceof ConvexError, message: e.message };
}
client.setAuth("token-from-setAuth");
out.whoami = await client.query(fn("messages:whoami"), {});
out.count = await client.query(fn("messages:count"), {});

const replacer = (_k, v) => {
  if (typeof v === "bigint") return `${v}n`;
  if (v instanceof ArrayBuffer) return Array.from(new Uint8Array(v));
  if (Object.is(v, -0)) return "-0";
  return v;
};
console.log(JSON.stringify(out, replacer));
