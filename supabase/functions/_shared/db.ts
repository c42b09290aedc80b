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
 * - Notices are not printed (they may contain row data).
 */
import net from "node:net";
import postgres from "postgres";

export type Sql = postgres.Sql;

let client: Sql | null = null;

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

export function db(dbUrl: string, applicationName = "csv-import"): Sql {
  // `socket` is a documented postgres.js option that its type declarations lack.
  const options: Record<string, unknown> = {
    prepare: false,
    max: 3,
    idle_timeout: 20,
    connect_timeout: 10,
    onnotice: () => {},
    connection: { application_name: applicationName },
    socket: noDelaySocket(dbUrl),
  };
  client ??= postgres(dbUrl, options as postgres.Options<Record<string, never>>);
  return client;
}
