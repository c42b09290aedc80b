/**
 * Signed-in callers of the user-facing function (csv-import-api). The pipeline's functions accept only the
 * service role (auth.ts); this one accepts only a user's session, and asks Supabase Auth whether it is one.
 *
 * Invariants:
 * - A caller is a signed-in user only when `Authorization: Bearer <JWT>` carries role "authenticated" and a
 *   `sub`, and Supabase Auth accepts the token (`GET /auth/v1/user` answers 200 with that same user id). Auth
 *   checks the signature whatever the project's signing scheme (the legacy HS256 secret or asymmetric signing
 *   keys) and refuses tokens of deleted users, so nothing here holds a JWT secret.
 * - Anything else is no user (the caller answers 401): no Authorization, the anon or publishable key, the service
 *   key, an sb_ key, a token Auth refuses, a token whose claims are not a user's. Tokens that are plainly not a
 *   user's are refused without asking Auth.
 * - The claims are returned as the token carries them: they become request.jwt.claims, as PostgREST sets them.
 * - The apikey sent to Auth is the function's own key, presented as auth.ts `keyHeaders` says.
 */
import { decodeJwt } from "jose";
import { keyHeaders } from "./auth.ts";

export interface SignedInUser {
  /** The user's id (the token's `sub`, auth.uid() in SQL). */
  id: string;
  claims: Record<string, unknown>;
}

export interface UserAuthOptions {
  supabaseUrl: string;
  /** The key the request to Auth presents as `apikey` (the function's service or secret key). */
  apiKey: string;
  fetch?: typeof fetch;
}

/** The claims of a JWT, unverified (null when it is not one). Verification is Auth's (see the module doc). */
export function jwtClaims(token: string): Record<string, unknown> | null {
  try {
    return decodeJwt(token);
  } catch {
    return null;
  }
}

/** The signed-in user a request speaks for, or null (see the module doc). */
export async function signedInUser(req: Request, options: UserAuthOptions): Promise<SignedInUser | null> {
  const token = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.get("authorization") ?? "")?.[1];
  if (!token || token.startsWith("sb_")) return null;
  const claims = jwtClaims(token);
  if (claims?.role !== "authenticated" || typeof claims.sub !== "string" || !claims.sub) return null;
  const response = await (options.fetch ?? fetch)(`${options.supabaseUrl}/auth/v1/user`, {
    headers: { ...keyHeaders(options.apiKey), Authorization: `Bearer ${token}` },
  });
  if (response.status !== 200) {
    await response.body?.cancel();
    return null;
  }
  const user = await response.json().catch(() => null) as { id?: unknown } | null;
  return user?.id === claims.sub ? { id: claims.sub, claims } : null;
}
