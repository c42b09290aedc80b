/**
 * The local stack's well-known credentials: the same JWT secret, legacy JWT keys and new-style API keys
 * that `supabase start` prints, so clients, docs and tests work unchanged against either stack.
 *
 * Invariants:
 * - ANON_KEY and SERVICE_ROLE_KEY are HS256 JWTs signed with JWT_SECRET, with exactly the claims the CLI
 *   uses (`iss: "supabase-demo"`, `role`, `exp: 1983812996`), so they are byte-identical to the CLI's keys.
 * - PUBLISHABLE_KEY and SECRET_KEY are opaque (`sb_publishable_…`, `sb_secret_…`); the gateway maps them to
 *   the anon and service_role JWTs, as the CLI's API gateway does.
 * - Local only. Nothing here is a secret; never reuse these values on a hosted project.
 */
import { jwtVerify, SignJWT } from "jose";

export const JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long";
export const PUBLISHABLE_KEY = "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH";
export const SECRET_KEY = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz";

const secretBytes = new TextEncoder().encode(JWT_SECRET);

/** Signs claims as an HS256 JWT with the local JWT secret (`{alg, typ}` header, like the CLI). */
export function signJwt(claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(secretBytes);
}

export const ANON_KEY = await signJwt({ iss: "supabase-demo", role: "anon", exp: 1983812996 });
export const SERVICE_ROLE_KEY = await signJwt({
  iss: "supabase-demo",
  role: "service_role",
  exp: 1983812996,
});

/** Verifies an HS256 JWT signed with the local secret; returns its claims, or null when it is not valid. */
export async function verifyJwt(token: string): Promise<Record<string, unknown> | null> {
  try {
    const { payload } = await jwtVerify(token, secretBytes, { algorithms: ["HS256"] });
    return payload as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** Maps an opaque new-style API key to the legacy JWT it stands for, or returns the input unchanged. */
export function legacyJwtFor(key: string): string {
  if (key === PUBLISHABLE_KEY) return ANON_KEY;
  if (key === SECRET_KEY) return SERVICE_ROLE_KEY;
  return key;
}
