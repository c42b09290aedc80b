/**
 * CORS for the functions a browser calls from another origin (the web app on any static host: docs/web-app.md):
 * the client API (csv-import-api) and the health function's operator routes (csv-import-health).
 *
 * Invariants:
 * - Any origin may call: what protects the data is the credential each request carries (a user's token, or the
 *   service key the operator pasted), never the origin, and no cookie is used (no Allow-Credentials).
 * - The preflight (OPTIONS) is answered 204 without any credential, before the wrapped handler runs (browsers
 *   send no Authorization header on a preflight).
 */

export const CORS_HEADERS = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Headers": "authorization, x-client-info, apikey, content-type",
  "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
};

/** `handler` with the preflight answered and CORS headers on every response it gives. */
export function withCors(handler: (req: Request) => Promise<Response>): (req: Request) => Promise<Response> {
  return async (req) => {
    if (req.method === "OPTIONS") return new Response(null, { status: 204, headers: CORS_HEADERS });
    const response = await handler(req);
    const headers = new Headers(response.headers);
    for (const [name, value] of Object.entries(CORS_HEADERS)) headers.set(name, value);
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  };
}
