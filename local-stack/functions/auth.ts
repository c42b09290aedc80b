/**
 * The gateway's `verify_jwt` check for Edge Functions.
 *
 * Invariants:
 * - A token is taken from `Authorization: Bearer <token>`. An `sb_publishable_…` / `sb_secret_…` key there,
 *   or in the `apikey` header when Authorization is absent or itself an sb_ key, is first mapped to its
 *   legacy JWT (the CLI's gateway does that translation). A legacy JWT in `apikey` alone is not enough.
 * - The token must verify as HS256 with the local JWT secret.
 * - OPTIONS requests pass unchecked (CORS preflight), as in the CLI's main worker.
 * - Headers are never rewritten: the function receives exactly what the caller sent.
 */
import { legacyJwtFor, verifyJwt } from "../keys.ts";
import { invalidJwt, missingAuthorization } from "./responses.ts";

/** Returns the 401 to answer, or null when the request may reach the function. */
export async function checkJwt(req: Request): Promise<Response | null> {
  if (req.method === "OPTIONS") return null;
  const authorization = req.headers.get("authorization");
  let token: string | null = null;
  if (authorization !== null) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization.trim());
    token = match === null ? "" : legacyJwtFor(match[1]);
  }
  const apikey = req.headers.get("apikey");
  if ((token === null || token.startsWith("sb_")) && apikey?.startsWith("sb_")) {
    const mapped = legacyJwtFor(apikey);
    if (mapped !== apikey) token = mapped;
  }
  if (token === null) return missingAuthorization();
  return (await verifyJwt(token)) === null ? invalidJwt() : null;
}
