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

/**
 * Error answers recorded in hosted Storage's shape (supabase/storage src/http/error-handler.ts,
 * src/internal/errors/codes.ts): HTTP 400 for all but 500/544/429, the real code in the body's statusCode.
 */
const HOSTED = {
  noSuchKey: [400, { statusCode: "404", code: "NoSuchKey", error: "not_found", message: "Object not found" }],
  accessDenied: [400, {
    statusCode: "403",
    code: "AccessDenied",
    error: "Unauthorized",
    message: "invalid signature",
  }],
  lockTimeout: [400, {
    statusCode: "503",
    code: "LockTimeout",
    error: "acquiring_lock_timeout",
    message: "acquiring lock timeout",
  }],
  readOnly: [400, {
    statusCode: "503",
    code: "DatabaseReadOnly",
    error: "DatabaseReadOnly",
    message: "The database is currently in read-only mode. Please try again later.",
  }],
  s3SlowDown: [400, {
    statusCode: "503",
    code: "S3Error",
    error: "Please reduce your request rate.",
    message: "SlowDown",
  }],
  databaseTimeout: [544, {
    statusCode: "544",
    code: "DatabaseTimeout",
    error: "DatabaseTimeout",
    message: "The connection to the database timed out",
  }],
  tooManyConnections: [429, {
    statusCode: "429",
    code: "SlowDown",
    error: "too_many_connections",
    message: "Too many connections issued to the database",
  }],
  internal: [500, {
    statusCode: "500",
    code: "InternalError",
    error: "Internal",
    message: "Internal Server Error",
  }],
} as const;

/** A fake Storage answering `errors` (one per request, in order), then the object's bytes; counts requests. */
function answering(errors: (keyof typeof HOSTED)[], headersSeen: Headers[] = [], key = "k") {
  let n = 0;
  const fetchFn = (_url: string | URL | Request, init?: RequestInit) => {
    const headers = new Headers(init?.headers);
    headersSeen.push(headers);
    const error = errors[n++];
    if (error) {
      const [status, body] = HOSTED[error];
      return Promise.resolve(Response.json(body, { status }));
    }
    if (init?.method === "HEAD") return Promise.resolve(new Response(null, { headers: { ETag: '"v1"' } }));
    const [, from, to] = /bytes=(\d+)-(\d*)/.exec(headers.get("range")!)!;
    const start = Number(from);
    const end = to === "" ? object.length : Number(to) + 1;
    return Promise.resolve(
      new Response(byteStream(object.slice(start, end)), {
        status: 206,
        headers: { "Content-Range": `bytes ${start}-${end - 1}/${object.length}`, ETag: '"v1"' },
      }),
    );
  };
  const client = new StorageClient({
    supabaseUrl: "http://storage.test",
    key,
    fetch: fetchFn as typeof fetch,
  });
  return { client, requests: () => n };
}

Deno.test("errors are classified by the body's statusCode, as hosted sends them (HTTP 400 + code)", async (t) => {
  for (const error of ["noSuchKey", "accessDenied"] as const) {
    await t.step(`${error}: permanent, StorageError with the body's code, not retried`, async () => {
      const fake = answering([error]);
      await assert.rejects(
        read(fake.client, 0, 10),
        (e: Error) =>
          e instanceof StorageError && e.status === Number(HOSTED[error][1].statusCode) &&
          e.code === HOSTED[error][1].code && e.httpStatus === 400,
      );
      assert.equal(fake.requests(), 1);
    });
  }
  for (
    const error of [
      "lockTimeout",
      "readOnly",
      "s3SlowDown",
      "databaseTimeout",
      "tooManyConnections",
      "internal",
    ] as const
  ) {
    await t.step(
      `${error} (HTTP ${HOSTED[error][0]}, code ${HOSTED[error][1].statusCode}): transient, retried`,
      async () => {
        const fake = answering([error, error]);
        assert.deepEqual(await read(fake.client, 10, 2000), object.slice(10, 2000));
        assert.equal(fake.requests(), 3);
      },
    );
  }
  await t.step(
    "objectEtag: a refused HEAD (no body) is asked again as info; 404 in that body is StorageError 404",
    async () => {
      const fake = answering(["noSuchKey", "noSuchKey"]);
      await assert.rejects(
        fake.client.objectEtag("b", "gone.csv"),
        (e: Error) => e instanceof StorageError && e.status === 404 && e.code === "NoSuchKey",
      );
      assert.equal(fake.requests(), 2);
      const busy = answering(["lockTimeout", "lockTimeout"]);
      await assert.rejects(busy.client.objectEtag("b", "x.csv"), (e: Error) => e.name === "TransientError");
    },
  );
});

Deno.test("an sb_ key is sent as apikey only; a legacy JWT as Bearer and apikey (api-keys.mdx)", async () => {
  const seen: Headers[] = [];
  await read(answering([], seen, "sb_secret_abc").client, 0, 10);
  await read(answering([], seen, "eyJhbGciOiJIUzI1NiJ9.e30.x").client, 0, 10);
  assert.equal(seen[0].get("authorization"), null);
  assert.equal(seen[0].get("apikey"), "sb_secret_abc");
  assert.equal(seen[1].get("authorization"), "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x");
  assert.equal(seen[1].get("apikey"), "eyJhbGciOiJIUzI1NiJ9.e30.x");
});

Deno.test("a stale cached copy of the job's version is waited out, spending no attempt", async (t) => {
  /** Storage whose first `stale` responses carry the previous version's ETag (a CDN copy), then '"v1"'. */
  const staleThen = (stale: number, currentEtag: string | null, staleWaitMs = 60_000) => {
    let n = 0;
    const asked: string[] = [];
    const fetchFn = (_url: string | URL | Request, init?: RequestInit) => {
      const etag = n++ < stale ? '"v0"' : '"v1"';
      const [, from, to] = /bytes=(\d+)-(\d*)/.exec(new Headers(init?.headers).get("range")!)!;
      const end = Number(to) + 1;
      return Promise.resolve(
        new Response(byteStream(object.slice(Number(from), end)), {
          status: 206,
          headers: { "Content-Range": `bytes ${from}-${to}/${object.length}`, ETag: etag },
        }),
      );
    };
    const client = new StorageClient({
      supabaseUrl: "http://storage.test",
      key: "k",
      attempts: 2,
      staleWaitMs,
      fetch: fetchFn as typeof fetch,
      currentEtag: (b, o) => {
        asked.push(`${b}/${o}`);
        return Promise.resolve(currentEtag);
      },
    });
    return { client, requests: () => n, asked };
  };
  const collect = async (client: StorageClient) => {
    const out: number[] = [];
    for await (const piece of client.readRange("b", "o", 0, 3000, "fresh", { etag: '"v1"' })) {
      out.push(...piece);
    }
    return out;
  };
  await t.step(
    "the database still records the job's ETag: stale copies are waited out, then every byte",
    async () => {
      const fake = staleThen(3, '"v1"');
      assert.deepEqual(await collect(fake.client), [...object.slice(0, 3000)]);
      assert.equal(
        fake.requests(),
        4,
        "three stale answers with a budget of two attempts: none of them spent one",
      );
      assert.deepEqual(fake.asked, ["b/o", "b/o", "b/o"]);
    },
  );
  await t.step(
    "the database records another ETag (an overwrite): ObjectChangedError at once, no byte",
    async () => {
      const fake = staleThen(3, '"v2"');
      await assert.rejects(collect(fake.client), (e: Error) => e.name === "ObjectChangedError");
      assert.equal(fake.requests(), 1);
    },
  );
  await t.step("past staleWaitMs the wait ends: ObjectChangedError", async () => {
    const fake = staleThen(100, '"v1"', 1);
    await assert.rejects(collect(fake.client), (e: Error) => e.name === "ObjectChangedError");
  });
});
