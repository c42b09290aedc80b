/**
 * The route table of the Storage API stand-in (paths relative to `/storage/v1`, as hosted mounts them) and
 * the dispatcher: match → authenticate → handler → render errors → log.
 *
 * Invariants:
 * - Paths are matched on the raw request target, never a normalised URL, so `..` segments reach key
 *   validation (and are refused) instead of being silently resolved; `:param` and `*` values are
 *   percent-decoded (`%2F` → `/`).
 * - Static segments are listed before parameters, as hosted's router prefers them (`/object/public/…`
 *   wins over a bucket named "public").
 * - `required` routes refuse a missing/invalid JWT with hosted's AccessDenied; `optional` routes treat it as
 *   an unauthenticated anon caller; `none` routes (public, signed) never look at credentials.
 * - A request body the handler did not read (e.g. an upload refused up front) is cancelled.
 */
import { ANONYMOUS, authenticate, type Caller } from "./auth.ts";
import type { Ctx, Services } from "./context.ts";
import type { Pool } from "./db.ts";
import { ERRORS, toStorageError } from "./errors.ts";
import * as buckets from "./routes_buckets.ts";
import * as manage from "./routes_manage.ts";
import { download, head, info } from "./routes_read.ts";
import * as signed from "./routes_signed.ts";
import { upload } from "./routes_write.ts";

type Auth = "required" | "optional" | "none";
type Handler = (ctx: Ctx) => Promise<Response>;

const PREFIX = "/storage/v1";

const ROUTES: [method: string, pattern: string, auth: Auth, handler: Handler][] = [
  ["GET", "/bucket", "required", buckets.getBuckets],
  ["POST", "/bucket", "required", buckets.createBucket],
  ["GET", "/bucket/:id", "required", buckets.getBucket],
  ["PUT", "/bucket/:id", "required", buckets.putBucket],
  ["DELETE", "/bucket/:id", "required", buckets.removeBucket],
  ["POST", "/bucket/:id/empty", "required", buckets.emptyBucket],
  ["POST", "/object/list/:bucket", "required", manage.list],
  ["POST", "/object/move", "required", manage.move],
  ["POST", "/object/copy", "required", manage.copy],
  ["POST", "/object/sign/:bucket/*", "required", signed.signUrl],
  ["POST", "/object/sign/:bucket", "required", signed.signUrls],
  ["GET", "/object/sign/:bucket/*", "none", signed.getSigned],
  ["POST", "/object/upload/sign/:bucket/*", "required", signed.signUploadUrl],
  ["PUT", "/object/upload/sign/:bucket/*", "none", signed.uploadSigned],
  ["GET", "/object/public/:bucket/*", "none", download("public")],
  ["HEAD", "/object/public/:bucket/*", "none", head("public")],
  ["GET", "/object/authenticated/:bucket/*", "required", download("authenticated")],
  ["HEAD", "/object/authenticated/:bucket/*", "required", head("authenticated")],
  ["GET", "/object/info/public/:bucket/*", "none", info("public")],
  ["GET", "/object/info/authenticated/:bucket/*", "required", info("authenticated")],
  ["GET", "/object/info/:bucket/*", "optional", info("generic")],
  ["GET", "/object/:bucket/*", "optional", download("generic")],
  ["HEAD", "/object/:bucket/*", "optional", head("generic")],
  ["POST", "/object/:bucket/*", "required", upload("create")],
  ["PUT", "/object/:bucket/*", "required", upload("update")],
  ["DELETE", "/object/:bucket/*", "required", manage.removeOne],
  ["DELETE", "/object/:bucket", "required", manage.removeMany],
  // Resumable uploads (tus.ts): the preflight needs no credentials, everything else a JWT as any upload.
  ["OPTIONS", "/upload/resumable", "none", resumable],
  ["OPTIONS", "/upload/resumable/*", "none", resumable],
  ["POST", "/upload/resumable", "required", resumable],
  ["POST", "/upload/resumable/*", "required", resumable],
  ["HEAD", "/upload/resumable/*", "required", resumable],
  ["PATCH", "/upload/resumable/*", "required", resumable],
  ["DELETE", "/upload/resumable/*", "required", resumable],
];

function resumable(ctx: Ctx): Promise<Response> {
  return ctx.services.tus.handle(ctx);
}

const COMPILED = ROUTES.map(([method, pattern, auth, handler]) => ({
  method,
  segments: pattern.split("/").slice(1),
  auth,
  handler,
}));

/** The request target's path exactly as sent (no dot-segment resolution, still percent-encoded). */
function rawPath(url: string): string {
  const afterScheme = url.indexOf("://");
  const start = url.indexOf("/", afterScheme < 0 ? 0 : afterScheme + 3);
  if (start < 0) return "/";
  const end = url.slice(start).search(/[?#]/);
  return end < 0 ? url.slice(start) : url.slice(start, start + end);
}

function paramsOf(segments: string[], parts: string[]): Record<string, string> | null {
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i];
    if (i >= parts.length) return null;
    if (seg === "*") {
      params.path = decodeURIComponent(parts.slice(i).join("/"));
      return params;
    }
    if (seg.startsWith(":")) {
      params[seg.slice(1)] = decodeURIComponent(parts[i]);
      if (parts[i] === "") return null;
    } else if (seg !== parts[i]) return null;
  }
  return parts.length === segments.length ? params : null;
}

function match(method: string, path: string) {
  const parts = path.split("/").slice(1);
  for (const route of COMPILED) {
    const params = route.method === method ? paramsOf(route.segments, parts) : null;
    if (params) return { route, params };
  }
  return null;
}

export function createRouter(
  pool: Pool,
  services: Services,
  log: (event: Record<string, unknown>) => void,
): (req: Request) => Promise<Response> {
  return async (req) => {
    const started = performance.now();
    const path = rawPath(req.url);
    let response: Response;
    let caller: Caller = ANONYMOUS;
    try {
      const found = path.startsWith(`${PREFIX}/`) ? match(req.method, path.slice(PREFIX.length)) : null;
      if (!found) throw ERRORS.routeNotFound(req.method, path);
      if (found.route.auth !== "none") caller = await authenticate(req);
      if (found.route.auth === "required" && !caller.authenticated) {
        throw ERRORS.accessDenied(caller.failure ?? "Access denied");
      }
      const db = pool.scoped({ method: req.method, path, headers: Object.fromEntries(req.headers) });
      response = await found.route.handler({
        req,
        url: new URL(req.url),
        params: found.params,
        caller,
        db,
        services,
      });
    } catch (e) {
      const error = e instanceof URIError ? ERRORS.invalidKey(path) : toStorageError(e);
      response = error.toResponse();
      if (error.statusCode >= 500) log({ event: "storage.error", message: error.message, stack: String(e) });
    }
    // A refused upload may leave its body unread: drop it so the connection does not stall on it.
    if (req.body && !req.bodyUsed) req.body.cancel().catch(() => {});
    log({
      event: "storage.request",
      method: req.method,
      path,
      role: caller.role,
      status: response.status,
      ms: Math.round(performance.now() - started),
    });
    return response;
  };
}
