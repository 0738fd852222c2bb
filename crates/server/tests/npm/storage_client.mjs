// The Convex file upload flow with the official client, as an app does it: a mutation returns an
// upload URL, `fetch` POSTs the file there, a mutation returns the download URL, `fetch` GETs it.
//
//   node storage_client.mjs <server url> <company id>
import { ConvexHttpClient } from "convex/browser";
import { makeFunctionReference } from "convex/server";

const [url, company] = process.argv.slice(2);
const client = new ConvexHttpClient(url);
const fn = (name) => makeFunctionReference(name);
const out = {};

const text = "Incident photo stand-in: plain text, café ☕\n".repeat(50);
const postUrl = await client.mutation(fn("files:generateUploadUrl"), { company });
out.uploadUrlShape = postUrl.replace(/token=[A-Za-z0-9_-]+$/, "token=T").replace(url, "ORIGIN");
const posted = await fetch(postUrl, {
  method: "POST",
  headers: { "Content-Type": "text/plain" },
  body: new Blob([text]),
});
out.uploadStatus = posted.status;
const { storageId } = await posted.json();
out.storageId = storageId;
out.metadata = await client.query(fn("files:getMetadata"), { company, storageId });

const downloadUrl = await client.mutation(fn("files:getUrl"), { company, storageId });
const got = await fetch(downloadUrl);
out.downloadStatus = got.status;
out.contentType = got.headers.get("content-type");
out.sameBytes = (await got.text()) === text;

// The same URL cannot be used twice.
const again = await fetch(postUrl, { method: "POST", headers: { "Content-Type": "text/plain" }, body: "x" });
out.reuse = { status: again.status, body: await again.json() };
console.log(JSON.stringify(out));
