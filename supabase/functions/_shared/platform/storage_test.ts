/**
 * StorageClient.readRange: exactly the requested bytes, in order, whatever the server does — responses cut
 * short, 503s, a Content-Range that does not start where asked (refused), 404 (not retried) — with half-open
 * ranges turned into HTTP's inclusive Range header.
 */
import assert from "node:assert/strict";
import { type ReadTarget, StorageClient, StorageError } from "./storage.ts";

const object = new Uint8Array(10_000).map((_, i) => (i * 7 + 3) % 251);

/** A response body as the runtime's fetch gives it: a byte stream (BYOB readers work), in 1000-byte reads. */
function byteStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    type: "bytes",
    pull(controller) {
      if (at >= bytes.length) {
        controller.close();
        controller.byobRequest?.respond(0); // a pending BYOB read learns of the end (as the runtime's does)
        return;
      }
      controller.enqueue(bytes.slice(at, at + 1000));
      at += 1000;
    },
  });
}

/**
 * A fake Storage: serves `object` with Range, misbehaving as `plan` says for successive requests; bodies are
 * byte streams unless `plainBodies` (a body the BYOB reader cannot take: the client falls back).
 */
function fakeStorage(plan: ("ok" | "cut" | "503" | "shifted" | "404")[], plainBodies = false) {
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
      new Response(plainBodies ? body : byteStream(body), {
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

async function read(client: StorageClient, start: number, end?: number, target: ReadTarget = "fresh") {
  const parts: Uint8Array[] = [];
  for await (const piece of client.readRange("b", "dir/a b.csv", start, end, target)) {
    // A "reuse" piece is only valid until the next one is asked for: copy it, as a parser does.
    parts.push(target === "reuse" ? piece.slice() : piece);
    if (target instanceof Uint8Array) {
      assert.equal(piece.buffer, target.buffer, "a piece read into the caller's buffer is a view of it");
    }
  }
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

Deno.test("every read target yields the same bytes, also across resumed responses", async () => {
  const targets: [ReadTarget, boolean][] = [
    ["reuse", false],
    ["reuse", true],
    [new Uint8Array(8000), false],
    [new Uint8Array(9000), true],
  ];
  for (const [target, plainBodies] of targets) {
    const { client, ranges } = fakeStorage(["cut", "503", "cut", "ok"], plainBodies);
    assert.deepEqual(await read(client, 1000, 9000, target), object.slice(1000, 9000));
    assert.equal(ranges.length, 4);
    if (target instanceof Uint8Array) {
      assert.deepEqual(target.subarray(0, 8000), object.slice(1000, 9000), "the buffer holds the range");
    }
  }
  // Many small network reads into the one scratch buffer.
  const { client } = fakeStorage([]);
  assert.deepEqual(await read(client, 0, 10_000, "reuse"), object);
  assert.throws(() => client.readRange("b", "x", 0, 100, new Uint8Array(99)), RangeError);
  assert.throws(() => client.readRange("b", "x", 0, undefined, new Uint8Array(99)), RangeError);
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

/** A fake Storage whose successive responses carry the given ETags (null: none), each cut short after 3000 bytes. */
function versionedStorage(etags: (string | null)[]) {
  let n = 0;
  const fetchFn = (_url: string | URL | Request, init?: RequestInit) => {
    const [, from, to] = /bytes=(\d+)-(\d*)/.exec(new Headers(init?.headers).get("range")!)!;
    const start = Number(from);
    const end = to === "" ? object.length : Number(to) + 1;
    const etag = etags[Math.min(n++, etags.length - 1)];
    const headers = new Headers({ "Content-Range": `bytes ${start}-${end - 1}/${object.length}` });
    if (etag !== null) headers.set("ETag", etag);
    return Promise.resolve(
      new Response(byteStream(object.slice(start, Math.min(end, start + 3000))), { status: 206, headers }),
    );
  };
  return new StorageClient({ supabaseUrl: "http://storage.test", key: "k", fetch: fetchFn as typeof fetch });
}

Deno.test("a version-bound read yields bytes only from responses with the job's ETag", async (t) => {
  const collect = async (client: StorageClient, etag: string) => {
    const out: number[] = [];
    for await (const piece of client.readRange("b", "o", 0, 10_000, "fresh", { etag })) out.push(...piece);
    return out;
  };
  await t.step("the same ETag, strong or weak, on every resumed response: every byte", async () => {
    const bytes = await collect(versionedStorage(['"v1"', 'W/"v1"', '"v1"', '"v1"']), '"v1"');
    assert.deepEqual(bytes, [...object]);
  });
  await t.step("another version's ETag on the first response: ObjectChangedError, no byte", async () => {
    const seen: number[] = [];
    await assert.rejects(async () => {
      for await (
        const piece of versionedStorage(['"v2"']).readRange("b", "o", 0, 10_000, "fresh", { etag: '"v1"' })
      ) {
        seen.push(...piece);
      }
    }, (e: Error) => e.name === "ObjectChangedError" && /"v2"/.test(e.message));
    assert.equal(seen.length, 0);
  });
  await t.step(
    "the object changes between resumed responses: the new version's bytes are not read",
    async () => {
      const seen: number[] = [];
      await assert.rejects(async () => {
        for await (
          const piece of versionedStorage(['"v1"', '"v2"']).readRange("b", "o", 0, 10_000, "fresh", {
            etag: '"v1"',
          })
        ) seen.push(...piece);
      }, (e: Error) => e.name === "ObjectChangedError");
      assert.deepEqual(seen, [...object.slice(0, 3000)], "only the bytes of the job's version");
    },
  );
  await t.step("a response without an ETag cannot prove its version: refused", async () => {
    await assert.rejects(
      () => collect(versionedStorage([null]), '"v1"'),
      (e: Error) => e.name === "ObjectChangedError",
    );
  });
  await t.step("without an expected ETag nothing is checked", async () => {
    const out: number[] = [];
    for await (
      const piece of versionedStorage(['"v1"', '"v2"', null, '"v3"']).readRange("b", "o", 0, 10_000)
    ) {
      out.push(...piece);
    }
    assert.deepEqual(out, [...object]);
  });
});
