/**
 * Database access with hosted Storage's request scoping (`src/internal/database/connection.ts` setScope):
 * every statement runs inside a transaction that first sets `role`, `request.jwt.claims` (and the other
 * `request.*` settings) locally, so RLS policies on storage.buckets / storage.objects decide exactly as on
 * hosted.
 *
 * Invariants:
 * - `asCaller` scopes to the request's JWT; `asAdmin` scopes to the service key (role `service_role`,
 *   BYPASSRLS), which is what hosted uses for its "superuser" work such as completing an upload.
 * - `storage.allow_delete_query` is `true` only in transactions opened with `{ allowDelete: true }`.
 * - `probe` runs its work and always rolls back (hosted `testPermission`): row triggers fire but leave
 *   nothing behind; only errors escape.
 * - Postgres errors leave this module already mapped to Storage errors. A transaction that fails because its
 *   pooled connection was gone (ended by a Postgres restart) runs once more on a fresh one.
 * - Latency: the scope statement is pipelined with the transaction's first statements (it is sent first,
 *   and Postgres executes a connection's statements in order, so they run — and are planned — under it).
 */
import net from "node:net";
import postgres from "postgres";
import type { Caller } from "./auth.ts";
import { fromPgError } from "./errors.ts";

export type Tx = postgres.TransactionSql;

export interface RequestInfo {
  method: string;
  path: string;
  headers: Record<string, string>;
}

export interface ScopeOptions {
  allowDelete?: boolean;
  /** Transaction-local lock_timeout, e.g. "5s" (hosted waits 5 s for the object lock). */
  lockTimeout?: string;
}

export interface Db {
  run<T>(caller: Caller, fn: (tx: Tx) => Promise<T>, options?: ScopeOptions): Promise<T>;
  probe(caller: Caller, fn: (tx: Tx) => Promise<unknown>): Promise<void>;
  /** Switches an open transaction to another caller; statements issued after this call run under it. */
  rescope(tx: Tx, caller: Caller): Promise<unknown>;
}

export interface Pool {
  /** A Db whose transactions expose this request's method/path/headers as `request.*` settings. */
  scoped(request: RequestInfo): Db;
  close(): Promise<void>;
}

const ROLLBACK = Symbol("rollback");

/**
 * A socket factory for postgres.js's `socket` option: TCP_NODELAY, resolved once the socket is connected. The
 * stand-in keeps its own copy rather than reaching into the product's (supabase/functions/_shared/platform/db.ts).
 */
function noDelaySocket(dbUrl: string) {
  const url = new URL(dbUrl);
  const port = Number(url.port || 5432);
  const host = decodeURIComponent(url.hostname).replace(/^\[|\]$/g, "");
  return () =>
    new Promise<net.Socket>((resolve, reject) => {
      const socket = net.connect(port, host);
      socket.once("connect", () => {
        socket.setNoDelay(true);
        resolve(socket);
      });
      socket.once("error", reject);
    });
}

export function createPool(dbUrl: string): Pool {
  const options: Record<string, unknown> = {
    max: 16,
    idle_timeout: 30,
    connect_timeout: 10,
    // A socket factory that resolves on "connect" (the same as the pipeline's platform/db.ts): with
    // postgres.js's own under Deno, one new connection in a burst of uploads now and then never finished
    // connecting (CONNECT_TIMEOUT after 30 s, seen in a CI run; porsager/postgres#723 reports CONNECT_TIMEOUT
    // with the npm package on Deno).
    socket: noDelaySocket(dbUrl),
    onnotice: () => {},
    types: {
      bigint: { to: 20, from: [20], serialize: (v: number) => String(v), parse: (v: string) => Number(v) },
    },
  };
  // `socket` is a documented postgres.js option that its type declarations lack (as in the pipeline's db.ts).
  const sql = postgres(dbUrl, options as postgres.Options<Record<string, postgres.PostgresType>>);
  return { scoped: (request) => scopedDb(sql, request), close: () => sql.end({ timeout: 5 }) };
}

function scopedDb(sql: postgres.Sql, request: RequestInfo): Db {
  const rescope = (tx: Tx, caller: Caller, options: ScopeOptions = {}) =>
    tx`select
      set_config('role', ${caller.role}, true),
      set_config('request.jwt.claim.role', ${caller.role}, true),
      set_config('request.jwt', ${caller.jwt}, true),
      set_config('request.jwt.claim.sub', ${caller.sub ?? ""}, true),
      set_config('request.jwt.claims', ${JSON.stringify(caller.claims)}, true),
      set_config('request.headers', ${JSON.stringify(request.headers)}, true),
      set_config('request.method', ${request.method}, true),
      set_config('request.path', ${request.path}, true),
      set_config('storage.allow_delete_query', ${options.allowDelete ? "true" : "false"}, true),
      set_config('lock_timeout', ${options.lockTimeout ?? "0"}, true)`.execute();
  const run = async <T>(caller: Caller, fn: (tx: Tx) => Promise<T>, options: ScopeOptions = {}) => {
    for (let attempt = 1;; attempt++) {
      try {
        return await sql.begin(async (tx) => {
          const scope = rescope(tx, caller, options);
          return (await Promise.all([scope, fn(tx)]))[1];
        }) as T;
      } catch (e) {
        // A pooled connection that the server ended while idle (a Postgres restart) fails the next transaction
        // on it, and a new connection may time out; hosted Storage's pool hides both, so run the transaction
        // again, once, on a fresh connection (nothing of it committed: the connection was gone).
        if (attempt === 1 && connectionLost(e)) continue;
        throw e instanceof postgres.PostgresError ? fromPgError(e) : e;
      }
    }
  };
  return {
    run,
    rescope: (tx, caller) => rescope(tx, caller),
    async probe(caller, fn) {
      try {
        await run(caller, async (tx) => {
          await fn(tx);
          throw ROLLBACK;
        });
      } catch (e) {
        if (e !== ROLLBACK) throw e;
      }
    },
  };
}

/**
 * Errors that mean the server ended the connection (shutdown, crash recovery, admin command: the transaction
 * was rolled back) or it never opened (connect timed out): nothing of the transaction committed. A socket
 * closed mid-statement is not among them (a COMMIT may have gone through).
 */
function connectionLost(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return typeof code === "string" &&
    ["57P01", "57P02", "57P03", "CONNECT_TIMEOUT"]
      .includes(code);
}
