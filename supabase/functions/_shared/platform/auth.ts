/**
 * Caller checks for the pipeline's functions. They are deployed with verify_jwt = false (they are called by
 * pg_net, pg_cron and each other, and new sb_secret_ keys are not JWTs), so each handler checks its caller
 * itself: only the service role key / a secret key, or the optional internal secret, may call.
 *
 * Invariants:
 * - Comparison is constant-time in the length of the candidate.
 * - A refusal never echoes the presented credential.
 */
import type { CallerKeys } from "./config.ts";

/**
 * The headers that present `key` to Supabase's API gateway: an opaque `sb_publishable_`/`sb_secret_` key only as
 * `apikey` ("You cannot send a publishable or secret key in the `Authorization: Bearer ...` header, except if the
 * value exactly equals the `apikey` header", supabase/supabase:apps/docs/content/guides/api/api-keys.mdx; the
 * migration guide says to send them on `apikey` only), a legacy JWT key as both `Authorization: Bearer` and
 * `apikey`, as supabase-js does.
 */
export function keyHeaders(key: string): Record<string, string> {
  return key.startsWith("sb_") ? { apikey: key } : { Authorization: `Bearer ${key}`, apikey: key };
}

function timingSafeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ (y[i % Math.max(y.length, 1)] ?? 0);
  return diff === 0;
}

/** The credential a request presents: `Authorization: Bearer …`, else `apikey`, else `x-pipeline-secret`. */
function presented(req: Request): string[] {
  const out: string[] = [];
  const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.get("authorization") ?? "")?.[1]?.trim();
  if (bearer) out.push(bearer);
  const apikey = req.headers.get("apikey")?.trim();
  if (apikey) out.push(apikey);
  const secret = req.headers.get("x-pipeline-secret")?.trim();
  if (secret) out.push(secret);
  return out;
}

/** True when the request carries the service role key, a secret key, or the internal secret. */
export function isServiceCaller(req: Request, config: CallerKeys): boolean {
  const accepted = [...config.acceptedServiceKeys, ...(config.internalSecret ? [config.internalSecret] : [])];
  return presented(req).some((candidate) => accepted.some((key) => timingSafeEqual(candidate, key)));
}

/** A 401 response for callers without the service role. */
export function unauthorized(): Response {
  return Response.json(
    {
      error: "unauthorized",
      message: "This function only accepts the service role key or the pipeline's internal secret",
    },
    { status: 401 },
  );
}
