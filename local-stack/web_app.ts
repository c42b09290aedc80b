/**
 * The upload page on the local stack (local only; on a hosted project any static host serves web/dist/ with a
 * config.json of its own: docs/web-app.md): GET /app/ serves the built page (web/build.ts writes web/dist/,
 * scripts/install.sh runs it) and /app/config.json tells the page this stack's URL and publishable key.
 *
 * Invariants:
 * - Only files directly in the build folder are served (no path with "/" or ".." after /app/), with their
 *   content type; anything else is 404.
 * - config.json is generated per request: the stack's publishable key, and as the project URL the origin the
 *   page was loaded from (the gateway itself, under whatever address the browser reached it), so the one build
 *   works on any port and behind a port forward or proxy.
 * - Nothing is cached by the browser (Cache-Control: no-store): a rebuilt page shows on the next load.
 */
import { extname, join } from "node:path";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".png": "image/png",
  ".svg": "image/svg+xml",
};

export interface WebAppOptions {
  /** The built page (web/dist). */
  distDir: string;
  /**
   * What config.json says (web/src/api.ts Config) besides supabaseUrl, which is the origin the page was loaded
   * from: this gateway, under whatever address the browser used (a port forward, a proxy).
   */
  config: {
    publishableKey: string;
    bucket: string;
    uploadFolder: string;
    realtime: boolean;
  };
}

export function createWebApp(
  o: WebAppOptions,
): (req: Request, path: string) => Promise<Response> {
  const headers = (type: string) => ({
    "content-type": type,
    "cache-control": "no-store",
  });
  return async (req, path) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      return Response.json({ message: "the page is read-only" }, {
        status: 405,
      });
    }
    if (path === "/app") {
      return Response.redirect(new URL("/app/", req.url), 308);
    }
    const name = path.slice("/app/".length) || "index.html";
    if (name === "config.json") {
      const config = { supabaseUrl: new URL(req.url).origin, ...o.config };
      return new Response(JSON.stringify(config), {
        headers: headers(TYPES[".json"]),
      });
    }
    if (
      name.includes("/") || name.includes("..") || !(extname(name) in TYPES)
    ) {
      return Response.json({ message: `no file ${name} in the page` }, {
        status: 404,
      });
    }
    try {
      const body = await Deno.readFile(join(o.distDir, name));
      return new Response(req.method === "HEAD" ? null : body, {
        headers: headers(TYPES[extname(name)]),
      });
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      const hint = name === "index.html"
        ? " (build it: deno run -A web/build.ts, or bash scripts/install.sh)"
        : "";
      return Response.json({ message: `no file ${name} in the page${hint}` }, {
        status: 404,
      });
    }
  };
}
