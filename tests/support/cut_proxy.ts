/**
 * A TCP proxy in front of the local gateway that drops one connection in the middle of an upload, as a flaky
 * network does: the browser test loads the upload page through it (so every request of the page goes through
 * it: the gateway's /app/config.json names the origin the page was loaded from), and the proxy closes both
 * sides of the connection carrying the chosen TUS PATCH once `cutAfterBytes` of it have been forwarded. The
 * browser sees its request fail mid-body, and the client must ask the server for the offset it stored and
 * resume from there.
 *
 * Invariants:
 * - Bytes are forwarded unchanged in both directions; only the one cut connection is closed early.
 * - At most one cut per arm(); which PATCH (1st, 2nd, …) counts from the arm() call; a request line split between
 *   two reads is found too.
 * - Every connection carries one request: the proxy makes the first response on each say `Connection: close`
 *   (replacing the gateway's keep-alive). Chromium resends a request whose *reused* keep-alive connection breaks
 *   before any response, whatever the method (HttpNetworkTransaction::ShouldResendRequest); a cut PATCH on a reused
 *   connection was then sent again unseen, tus-js-client never retried, and the test waited in vain (fresh-clone CI
 *   failed so three times). On a fresh connection the cut reaches the page as a network error.
 * - The browser learns of the cut only once the server has stored what it got (server side closed first, then
 *   HEAD with the cut PATCH's own headers until the offset moved, bounded), so the retry's HEAD finds it.
 */

import { concat } from "../../supabase/functions/_shared/compression/test_support.ts";

const PATCH_LINE = new TextEncoder().encode("PATCH /storage/v1/upload/resumable/");
/** How long the proxy waits for the server to store a cut PATCH's bytes before dropping the browser's side. */
const STORED_WAIT_MS = 10_000;

/** The PATCH's path and the headers a HEAD for its upload needs, from the request's head (null: not all there). */
function patchHead(bytes: Uint8Array): { path: string; headers: Headers; offset: number } | null {
  const text = new TextDecoder("latin1").decode(bytes.subarray(0, Math.min(bytes.length, 16 * 1024)));
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const [line, ...fields] = text.slice(0, end).split("\r\n");
  const headers = new Headers();
  for (const field of fields) {
    const colon = field.indexOf(":");
    const name = field.slice(0, colon).trim().toLowerCase();
    if (["authorization", "apikey", "tus-resumable", "x-client-info"].includes(name)) {
      headers.set(name, field.slice(colon + 1).trim());
    }
    if (name === "upload-offset") headers.set("x-cut-offset", field.slice(colon + 1).trim());
  }
  const offset = Number(headers.get("x-cut-offset"));
  headers.delete("x-cut-offset");
  return { path: line.split(" ")[1], headers, offset };
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

const HEAD_END = new TextEncoder().encode("\r\n\r\n");

/** A response head (status line and fields, without the blank line) with `Connection: close` as its only connection field. */
function closingHead(head: Uint8Array): Uint8Array {
  const lines = new TextDecoder("latin1").decode(head).split("\r\n")
    .filter((line, i) => i === 0 || !/^connection\s*:/i.test(line) && !/^keep-alive\s*:/i.test(line));
  lines.push("Connection: close");
  return Uint8Array.from(lines.join("\r\n"), (c) => c.charCodeAt(0));
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

export interface CutProxy {
  /** The proxy's base URL, e.g. http://127.0.0.1:41234. */
  url: string;
  /** Cuts the connection of the `nth` PATCH from now (1 = the next one) after `cutAfterBytes` of it. */
  arm(nth: number, cutAfterBytes: number): void;
  /** How many connections were cut so far, and how many bytes of the cut PATCH were forwarded. */
  cuts(): { count: number; forwardedBytes: number };
  close(): void;
}

export function startCutProxy(target: { hostname: string; port: number }): CutProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  let plan: { nth: number; after: number; seen: number } | null = null;
  let count = 0;
  let forwardedBytes = 0;

  async function serve(client: Deno.Conn): Promise<void> {
    const server = await Deno.connect(target);
    open.add(client).add(server);
    /** The cut PATCH: bytes of it forwarded, its first 16 KiB (headRead: this read's bytes are in it already). */
    let cutting: { forwarded: number; head: Uint8Array; headRead: boolean } | null = null;
    const closeServer = () => {
      open.delete(server);
      try {
        server.close();
      } catch {
        // already closed
      }
    };
    /** Waits (bounded) until the server reports an offset past the cut PATCH's (see the module doc). */
    const stored = async (head: Uint8Array) => {
      const patch = patchHead(head);
      if (patch === null) return;
      const deadline = Date.now() + STORED_WAIT_MS;
      while (Date.now() < deadline) {
        const response = await fetch(`http://${target.hostname}:${target.port}${patch.path}`, {
          method: "HEAD",
          headers: patch.headers,
        }).catch(() => null);
        await response?.body?.cancel();
        if (Number(response?.headers.get("upload-offset") ?? -1) > patch.offset) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const cut = () => {
      for (const conn of [client, server]) {
        open.delete(conn);
        try {
          conn.close();
        } catch {
          // already closed
        }
      }
    };
    // The end of the previous read: a request line may be split between two reads (a keep-alive connection's next
    // PATCH begins wherever the last body ended; missed, nothing was cut and the test waited for a retry in vain).
    let tail = new Uint8Array(0);
    const upstream = async () => {
      const buffer = new Uint8Array(64 * 1024);
      for (;;) {
        const n = await client.read(buffer).catch(() => null);
        if (n === null) break;
        let piece = buffer.subarray(0, n);
        if (plan && !cutting) {
          const joined = new Uint8Array(tail.length + piece.length);
          joined.set(tail);
          joined.set(piece, tail.length);
          const found = indexOf(joined, PATCH_LINE);
          if (found >= 0 && ++plan.seen === plan.nth) {
            // Where the line starts in this read; negative: it began in the previous one, already forwarded.
            const at = found - tail.length;
            cutting = { forwarded: Math.max(-at, 0), head: joined.slice(found), headRead: true };
            if (at > 0) {
              await writeAll(server, piece.subarray(0, at)).catch(() => {});
              piece = piece.subarray(at);
            }
          }
          tail = joined.slice(Math.max(joined.length - (PATCH_LINE.length - 1), 0));
        }
        if (cutting && plan) {
          if (cutting.headRead) cutting.headRead = false;
          else if (cutting.head.length < 16 * 1024) {
            const head = new Uint8Array(cutting.head.length + piece.length);
            head.set(cutting.head);
            head.set(piece, cutting.head.length);
            cutting.head = head.slice(0, 16 * 1024);
          }
          const room = plan.after - cutting.forwarded;
          if (piece.length >= room) {
            await writeAll(server, piece.subarray(0, room)).catch(() => {});
            forwardedBytes = cutting.forwarded + room;
            count++;
            plan = null;
            closeServer();
            await stored(cutting.head);
            cut();
            return;
          }
          cutting.forwarded += piece.length;
        }
        if (!(await writeAll(server, piece).then(() => true, () => false))) break;
      }
      try {
        await server.closeWrite();
      } catch {
        // closed
      }
    };
    const downstream = async () => {
      const buffer = new Uint8Array(64 * 1024);
      // The first response's head, held until it is whole, then sent with `Connection: close` (module doc).
      let head: Uint8Array | null = new Uint8Array(0);
      for (;;) {
        const n = await server.read(buffer).catch(() => null);
        if (n === null) break;
        let piece: Uint8Array = buffer.subarray(0, n);
        if (head !== null) {
          const joined = concat([head, piece]);
          const end = indexOf(joined, HEAD_END);
          if (end < 0) {
            head = joined;
            continue;
          }
          piece = concat([closingHead(joined.subarray(0, end)), joined.subarray(end)]);
          head = null;
        }
        if (!(await writeAll(client, piece).then(() => true, () => false))) break;
      }
      if (head !== null && head.length > 0) await writeAll(client, head).catch(() => {});
      try {
        await client.closeWrite();
      } catch {
        // closed
      }
    };
    await Promise.allSettled([upstream(), downstream()]);
    if (open.has(client)) cut();
  }

  (async () => {
    for await (const client of listener) serve(client).catch(() => {});
  })().catch(() => {});

  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    arm: (nth, after) => {
      plan = { nth, after, seen: 0 };
    },
    cuts: () => ({ count, forwardedBytes }),
    close: () => {
      listener.close();
      for (const conn of open) {
        try {
          conn.close();
        } catch {
          // closed
        }
      }
      open.clear();
    },
  };
}
