/**
 * StorageClient.readRange: exactly the requested bytes, in order, whatever the server does — responses cut
 * short, 503s, a Content-Range that does not start where asked (refused), 404 (not retried) — with half-open
 * ranges turned into HTTP's inclusive Range header.
 */
import assert from "node:assert/strict";
import { StorageClient, StorageError } from "./storage.ts";

const object = new Uint8Array(10_000).map((_, i) => (i * 7 + 3) % 251);

/** A fake Storage: serves `object` with Range, misbehaving as `plan` says for successive requests. */
function fakeStorage(plan: ("ok" | "cut" | "503" | "shifted" | "404")[]) {
  const ranges: string[] = [];
  const fetchFn = (_url: string | URL | Request, init?: RequestInit) => {
    const range = new Headers(init?.headers).get("range")!;
    ranges.push(range);
    const [, from, to] = /bytes=(\d+)-(\d*)/.exec(range)!;
    const start = Number(from);
    const end = to === "" ? object.length : Number(to) + 1;
    const behaviour = plan[ranges.length - 1] ?? "ok";
    if (behaviour === "503") return Promise.resolve(new Response("busy", { status: 503 }));
    if (behaviour === "404") return Promise.resolve(new Response('{"statusCode":"404"}', { status: 400 }));
    const from2 = behaviour === "shifted" ? start + 1 : start;
    const body = object.slice(from2, behaviour === "cut" ? Math.min(end, from2 + 777) : end);
    return Promise.resolve(
      new Response(body, {
        status: 206,
        headers: { "Content-Range": `bytes ${from2}-${end - 1}/${object.length}` },
      }),
    );
  };
  const client = new StorageClient({
    supabaseUrl: "http://storage.test",
    key: "k",
    fetch: fetchFn as typeof fetch,
  });
  return { client, ranges };
}

async function read(client: StorageClient, start: number, end?: number) {
  const parts: Uint8Array[] = [];
  for await (const piece of client.readRange("b", "dir/a b.csv", start, end)) parts.push(piece);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

Deno.test("a half-open range becomes an inclusive Range header and yields exactly those bytes", async () => {
  const { client, ranges } = fakeStorage(["ok"]);
  assert.deepEqual(await read(client, 100, 4100), object.slice(100, 4100));
  assert.deepEqual(ranges, ["bytes=100-4099"]);
});

Deno.test("responses cut short and 503s are resumed from the next missing byte", async () => {
  const { client, ranges } = fakeStorage(["cut", "503", "cut", "ok"]);
  assert.deepEqual(await read(client, 1000, 9000), object.slice(1000, 9000));
  assert.deepEqual(ranges, ["bytes=1000-8999", "bytes=1777-8999", "bytes=1777-8999", "bytes=2554-8999"]);
});

Deno.test("an open-ended read ends with the object", async () => {
  const { client } = fakeStorage(["ok"]);
  assert.deepEqual(await read(client, 9_500), object.slice(9_500));
});

Deno.test("a response starting elsewhere than asked is refused, never spliced in", async () => {
  const { client } = fakeStorage(["shifted"]);
  await assert.rejects(
    read(client, 10, 20),
    (e: Error) => e instanceof StorageError && /from 11 when asked for 10/.test(e.message),
  );
});

Deno.test("a 4xx answer is not retried; persistent 503s give up after the attempt budget", async () => {
  const missing = fakeStorage(["404"]);
  await assert.rejects(read(missing.client, 0, 10), StorageError);
  assert.equal(missing.ranges.length, 1);
  const busy = fakeStorage(Array(10).fill("503"));
  await assert.rejects(read(busy.client, 0, 10), /503/);
  assert.equal(busy.ranges.length, 6);
});
