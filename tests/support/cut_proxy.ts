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
 */

const PATCH_LINE = new TextEncoder().encode("PATCH /storage/v1/upload/resumable/");

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
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
    let cutting: { forwarded: number } | null = null;
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
            cutting = { forwarded: Math.max(-at, 0) };
            if (at > 0) {
              await writeAll(server, piece.subarray(0, at)).catch(() => {});
              piece = piece.subarray(at);
            }
          }
          tail = joined.slice(Math.max(joined.length - (PATCH_LINE.length - 1), 0));
        }
        if (cutting && plan) {
          const room = plan.after - cutting.forwarded;
          if (piece.length >= room) {
            await writeAll(server, piece.subarray(0, room)).catch(() => {});
            forwardedBytes = cutting.forwarded + room;
            count++;
            plan = null;
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
      for (;;) {
        const n = await server.read(buffer).catch(() => null);
        if (n === null) break;
        if (!(await writeAll(client, buffer.subarray(0, n)).then(() => true, () => false))) break;
      }
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
