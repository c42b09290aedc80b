/**
 * Who is calling: turns a request's `Authorization: Bearer …` / `apikey` header into the caller the
 * database scope is built from, as hosted Storage's jwt plugin does (`src/http/plugins/jwt.ts`).
 *
 * Invariants:
 * - The bearer token wins over `apikey`; opaque `sb_…` keys are mapped to their legacy JWT first, as the
 *   API gateway does before Storage sees the request.
 * - Only HS256 tokens signed with the local JWT secret are accepted. A missing or invalid token yields an
 *   unauthenticated `anon` caller carrying the verification failure; routes decide whether that is an error
 *   (hosted: AccessDenied with jsonwebtoken's message) or allowed (`allowInvalidJwt` routes).
 * - `role` comes from the token's `role` claim (default `anon`); `sub` becomes the object owner.
 */
import { errors, jwtVerify } from "jose";
import { JWT_SECRET, legacyJwtFor, SERVICE_ROLE_KEY, verifyJwt } from "../keys.ts";

export interface Caller {
  role: string;
  claims: Record<string, unknown>;
  jwt: string;
  sub: string | undefined;
  authenticated: boolean;
  /** Why the token was refused (jsonwebtoken wording), when it was. */
  failure?: string;
}

const secret = new TextEncoder().encode(JWT_SECRET);

/** The identity hosted Storage uses for its own "superuser" work: the service key's claims. */
export const ADMIN: Caller = {
  role: "service_role",
  claims: (await verifyJwt(SERVICE_ROLE_KEY)) ?? { role: "service_role" },
  jwt: SERVICE_ROLE_KEY,
  sub: undefined,
  authenticated: true,
};

/** The caller of routes that never look at credentials (public and signed URLs). */
export const ANONYMOUS: Caller = anonymous("", "");

export async function authenticate(req: Request): Promise<Caller> {
  const bearer = (req.headers.get("authorization") ?? "").replace(/^Bearer\s+/i, "").trim();
  const token = legacyJwtFor(bearer || (req.headers.get("apikey") ?? "").trim());
  if (!token) return anonymous("", "jwt must be provided");
  try {
    const { payload } = await jwtVerify(token, secret, { algorithms: ["HS256"] });
    const claims = payload as Record<string, unknown>;
    const role = typeof claims.role === "string" && claims.role ? claims.role : "anon";
    const sub = typeof claims.sub === "string" && claims.sub ? claims.sub : undefined;
    return { role, claims, jwt: token, sub, authenticated: true };
  } catch (e) {
    return anonymous(token, jwtFailure(e));
  }
}

/** Verifies a token this service signed itself (signed URLs); returns its claims or the failure text. */
export async function verifySigned(token: string): Promise<Record<string, unknown> | string> {
  if (!token) return "jwt must be provided";
  try {
    return (await jwtVerify(token, secret, { algorithms: ["HS256"] })).payload as Record<string, unknown>;
  } catch (e) {
    return jwtFailure(e);
  }
}

function anonymous(jwt: string, failure: string): Caller {
  return { role: "anon", claims: { role: "anon" }, jwt, sub: undefined, authenticated: false, failure };
}

function jwtFailure(e: unknown): string {
  if (e instanceof errors.JWTExpired) return "jwt expired";
  if (e instanceof errors.JWSSignatureVerificationFailed) return "invalid signature";
  if (e instanceof errors.JOSEAlgNotAllowed) return "invalid algorithm";
  if (e instanceof errors.JWTClaimValidationFailed) return `jwt ${e.claim} invalid`;
  return "jwt malformed";
}
