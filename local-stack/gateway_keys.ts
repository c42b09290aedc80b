/**
 * The API gateway's rule for opaque API keys in `Authorization` (hosted: the platform's API gateway, in front of
 * Storage and Edge Functions): "You cannot send a publishable or secret key in the `Authorization: Bearer ...`
 * header, except if the value exactly equals the `apikey` header"
 * (supabase/supabase:apps/docs/content/guides/api/api-keys.mdx, "Known limitations and compatibility
 * differences"; https://supabase.com/docs/guides/api/api-keys).
 *
 * Invariants:
 * - A request whose `Authorization: Bearer` value starts with `sb_` and differs from its `apikey` header (absent
 *   included) is refused with 401 before it reaches Storage or a function; nothing else is looked at here.
 * - A JWT in `Authorization` (legacy keys, user sessions) and requests without `Authorization` pass unchanged, as
 *   does an `sb_` bearer equal to `apikey` (the documented exception; supabase-js sends its key that way).
 * - The refusal never echoes the presented key. Its body is this stand-in's own wording: the hosted gateway's
 *   exact body is not documented (the status is the one hosted uses for key refusals, e.g.
 *   https://supabase.com/kb/troubleshooting/auth-error-401-unauthorized_missing_api_key-on-admin-endpoints-ac2afd).
 */

/** The 401 the gateway answers for an `sb_` key in `Authorization: Bearer` that is not also the `apikey`; else null. */
export function refuseOpaqueBearer(req: Request): Response | null {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.get("authorization") ?? "")?.[1];
  if (!bearer || !bearer.startsWith("sb_")) return null;
  if (bearer === (req.headers.get("apikey") ?? "").trim()) return null;
  return Response.json(
    {
      message: "Invalid authorization: a publishable or secret key (sb_...) was sent as Bearer",
      hint:
        "Send sb_ keys in the apikey header only; Authorization takes a JWT, or the same value as apikey.",
    },
    { status: 401, headers: { "sb-error-code": "UNAUTHORIZED_INVALID_BEARER_KEY" } },
  );
}
