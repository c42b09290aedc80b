/**
 * The database client: postgres.js over SUPABASE_DB_URL, one small pool per function instance, reused across
 * invocations (an isolate serves several requests).
 *
 * Invariants:
 * - `prepare: false`, so it also works behind Supabase's transaction pooler (Supavisor, port 6543), which does
 *   not support prepared statements; every pipeline write is one transaction, which the pooler keeps on one
 *   server connection.
 * - TCP_NODELAY on every connection: postgres.js over Deno's node:net leaves Nagle's algorithm on, which
 *   stalls each COPY by two delayed-ACK timeouts (~85 ms per COPY measured here, ~2.4 ms without). TLS, when
 *   the URL asks for it, is negotiated by postgres.js on top of this socket as usual.
 * - bigint (int8, oid 20) arrives as a JavaScript number, not postgres.js's default string: every bigint the
 *   pipeline reads is an id, a byte offset or size, a line number or a count, all below 2^53 (an object is at
 *   most a few GiB; Number.MAX_SAFE_INTEGER is 8 PiB), so a number is exact, and the SQL↔TS boundary is typed
 *   here once instead of with a cast or a Number(...) per call site. numeric values stay strings; parameters
 *   are sent as text, as postgres.js does by default.
 * - Notices are not printed (they may contain row data).
 * - A database restart does not end the worker: postgres.js 3.4.9 can throw from a timer after the server
 *   dropped a connection (connection.js nextWrite writes to the socket it already set to null: "Cannot read
 *   properties of null (reading 'write')"). Uncaught, it would end the whole worker and strand its chunk until
 *   the lease expired (measured: a Postgres restart mid-job then costs 125 s instead of ~2 s;
 *   tests/faults_recovery_test.ts). The statement it belonged to has already failed with CONNECTION_CLOSED
 *   and is retried, so that error alone is logged and swallowed; any other uncaught error still ends the worker.
 * - A pool whose connections time out is replaced: after a Postgres restart, postgres.js 3.4.9 in a long-lived
 *   isolate could answer every query with CONNECT_TIMEOUT long after the server was back (the socket factory
 *   below fixed one cause, not all: CI still saw a chunk dead-lettered after five attempts of it, and on this
 *   machine one run in three of tests/faults_recovery_test.ts "Postgres restarted mid-job" failed so). The first
 *   CONNECT_TIMEOUT that withRetry retries (retry.ts onTransientFailure) swaps in a new pool (at most one swap per
 *   RESET_INTERVAL_MS) and ends the old one; `db()` returns a handle that always uses the current pool, so the
 *   retry, and every invocation of the isolate after it, connects afresh.
 */
import net from "node:net";
import postgres from "postgres";
import { log } from "./log.ts";
import { onTransientFailure } from "./retry.ts";

export type Sql = postgres.Sql;

/** The isolate's current pool, how to make another, and the handle every caller holds. */
let client: Sql | null = null;
let makeClient: (() => Sql) | null = null;
let handle: Sql | null = null;
let lastReset = Number.NEGATIVE_INFINITY;
const RESET_INTERVAL_MS = 2_000;

/**
 * A socket factory for postgres.js's `socket` option: TCP_NODELAY once connected. The socket is handed over at
 * once, still connecting (postgres.js writes its startup or SSL request, which waits in the socket until it is
 * connected), so that a refused connection reaches postgres.js as the socket's own `error` and `close`: its
 * reconnect cycle then runs as for its built-in sockets. A factory that rejects instead leaves the pool's
 * connection stuck in "connecting" (postgres.js 3.4.9 createSocket returns without closing it): measured after a
 * Postgres restart, an isolate whose connections were refused while the server was down answered every query
 * with CONNECT_TIMEOUT for over a minute, and under per_worker every chunk routed to that isolate failed until
 * the chunk was dead-lettered (tests/faults_recovery_test.ts, "Postgres restarted mid-job").
 */
export function noDelaySocket(dbUrl: string) {
  const url = new URL(dbUrl);
  const port = Number(url.port || 5432);
  const host = decodeURIComponent(url.hostname).replace(/^\[|\]$/g, "");
  return () => {
    const socket = net.connect(port, host);
    socket.once("connect", () => socket.setNoDelay(true));
    return Promise.resolve(socket);
  };
}

/** postgres.js custom type: int8 results parsed as numbers (see the module doc); serialized as postgres.js does. */
const INT8_AS_NUMBER = {
  to: 20,
  from: [20],
  serialize: (x: number | bigint | string) => String(x),
  parse: (x: string) => Number(x),
};

export function db(dbUrl: string, applicationName = "csv-import"): Sql {
  // `socket` is a documented postgres.js option that its type declarations lack.
  const options: Record<string, unknown> = {
    prepare: false,
    max: 3,
    idle_timeout: 20,
    connect_timeout: 10,
    onnotice: () => {},
    connection: { application_name: applicationName },
    types: { int8AsNumber: INT8_AS_NUMBER },
    socket: noDelaySocket(dbUrl),
  };
  if (!handle) {
    globalThis.addEventListener("error", ignoreWriteAfterClose);
    makeClient = () => postgres(dbUrl, options as postgres.Options<Record<string, never>>);
    client = makeClient();
    onTransientFailure(replaceStuckPool);
    // The handle: a call, a tagged template and every method go to the pool current at that moment.
    handle = new Proxy(function () {} as unknown as Sql, {
      apply: (_target, _this, args: unknown[]) =>
        (client as unknown as (...a: unknown[]) => unknown)(...args),
      get: (_target, property) => {
        const value = (client as unknown as Record<PropertyKey, unknown>)[property];
        return typeof value === "function" ? value.bind(client) : value;
      },
    });
  }
  return handle;
}

/** Swaps in a new pool after a CONNECT_TIMEOUT (see the module doc); the old one is ended in the background. */
function replaceStuckPool(error: unknown): void {
  if ((error as { code?: unknown })?.code !== "CONNECT_TIMEOUT" || !makeClient || !client) return;
  const now = performance.now();
  if (now - lastReset < RESET_INTERVAL_MS) return;
  lastReset = now;
  const old = client;
  client = makeClient();
  old.end({ timeout: 0 }).catch(() => {});
  log("warn", "db_pool_replaced", { error: String(error) });
}

function ignoreWriteAfterClose(event: ErrorEvent): void {
  const stack = event.error instanceof Error ? event.error.stack ?? "" : "";
  if (/postgres\/[\d.]+\/src\/connection\.js/.test(stack) && /reading 'write'/.test(stack)) {
    event.preventDefault();
    log("warn", "db_write_after_close_ignored", { error: String(event.error) });
  }
}
