/**
 * The HTTP side of the client API (csv-import-api): routes, the caller check, CORS and JSON errors. Every
 * answer about imports comes from SQL run as the caller (deps.asUser), so row-level security decides.
 *
 * Routes (under the function's URL, e.g. /functions/v1/csv-import-api):
 * - `GET /imports?limit=50` → `{imports: Import[]}`, newest first (limit 1..1000).
 * - `GET /imports/:id` → Import, or 404.
 * - `GET /imports/:id/rejects?limit=100` → `{rejects: [{line, column_name, reason, raw}], total}` by line
 *   (limit 1..1000; total = the import's rows_rejected, all counted, not all stored), or 404.
 * - `GET /imports/:id/rejects-file` → `{status: rejects_status, url}`: url is a download link of the rejects CSV
 *   valid 10 minutes when the file is written, else null; 404 when the import is not the caller's.
 * - `POST /imports/:id/cancel` → `{status}` (the import's status afterwards), or 404.
 *
 * Invariants:
 * - Only a signed-in user's token is accepted (platform/user_auth.ts): anything else gets 401 before any query.
 * - Another user's import and one that does not exist get the same 404.
 * - The rejects file's link is signed with the function's key only after the caller's own query returned the
 *   import (so it is theirs), and only for the object that import names.
 * - Errors are JSON `{error, message}`; an unexpected one is logged and answered 500 with a masked message.
 * - Every answer carries CORS headers; OPTIONS answers the preflight without a token.
 */
import { CORS_HEADERS } from "../platform/cors.ts";
import type { Sql } from "../platform/db.ts";
import { log, redact } from "../platform/log.ts";
import type { SignedInUser } from "../platform/user_auth.ts";
import { cancelImport, getImport, ImportNotFound, listImports, listRejects } from "./queries.ts";

/** How long a rejects file link is valid (seconds). */
export const REJECTS_URL_SECONDS = 600;
const DEFAULT_IMPORTS_LIMIT = 50;
const DEFAULT_REJECTS_LIMIT = 100;
const MAX_LIMIT = 1000;

/** What the handler needs from the platform, injectable for tests. */
export interface ClientApiDeps {
  /** The signed-in user the request speaks for, or null. */
  authenticate(req: Request): Promise<SignedInUser | null>;
  /** Runs queries in a transaction as the user (as_user.ts). */
  asUser<T>(user: SignedInUser, work: (tx: Sql) => Promise<T>): Promise<T>;
  /** A signed download URL of an object, valid `expiresIn` seconds. */
  signUrl(bucket: string, name: string, expiresIn: number): Promise<string>;
}

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

function json(body: unknown, status = 200): Response {
  return Response.json(body, { status, headers: { ...CORS_HEADERS, "Cache-Control": "no-store" } });
}

function errorResponse(status: number, code: string, message: string): Response {
  return json({ error: code, message }, status);
}

function limitParam(url: URL, fallback: number): number {
  const raw = url.searchParams.get("limit");
  if (raw === null) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > MAX_LIMIT) {
    throw new HttpError(400, "bad_request", `limit must be an integer from 1 to ${MAX_LIMIT}, got "${raw}"`);
  }
  return value;
}

/** The route a path names: `…/imports[/<id>[/<action>]]`, wherever the function is mounted. */
export function route(pathname: string): { id: number | null; action: string | null } | null {
  const match = /\/imports(?:\/([^/]+)(?:\/([^/]+))?)?\/?$/.exec(pathname);
  if (!match) return null;
  if (match[1] === undefined) return { id: null, action: null };
  const id = Number(match[1]);
  if (!/^\d{1,15}$/.test(match[1]) || !Number.isSafeInteger(id) || id <= 0) {
    throw new HttpError(400, "bad_request", `An import id is a positive integer, got "${match[1]}"`);
  }
  return { id, action: match[2] ?? null };
}

async function answer(req: Request, user: SignedInUser, deps: ClientApiDeps): Promise<Response> {
  const url = new URL(req.url);
  const where = route(url.pathname);
  const method = req.method;
  if (where && where.id === null && method === "GET") {
    const limit = limitParam(url, DEFAULT_IMPORTS_LIMIT);
    return json({ imports: await deps.asUser(user, (tx) => listImports(tx, limit)) });
  }
  if (where && where.id !== null) {
    const id = where.id;
    if (where.action === null && method === "GET") {
      const found = await deps.asUser(user, (tx) => getImport(tx, id));
      if (!found) throw new ImportNotFound(id);
      return json(found);
    }
    if (where.action === "rejects" && method === "GET") {
      const limit = limitParam(url, DEFAULT_REJECTS_LIMIT);
      return json(await deps.asUser(user, (tx) => listRejects(tx, id, limit)));
    }
    if (where.action === "rejects-file" && method === "GET") {
      const found = await deps.asUser(user, (tx) => getImport(tx, id));
      if (!found) throw new ImportNotFound(id);
      const link = found.rejects_status === "written" && found.rejects_object
        ? await deps.signUrl(found.bucket, found.rejects_object, REJECTS_URL_SECONDS)
        : null;
      return json({ status: found.rejects_status, url: link });
    }
    if (where.action === "cancel" && method === "POST") {
      return json({ status: await deps.asUser(user, (tx) => cancelImport(tx, id)) });
    }
  }
  return errorResponse(404, "not_found", `No route ${method} ${url.pathname}`);
}

/** The function's request handler. `deps` is called per request; a throw there is a configuration problem. */
export function clientApiHandler(deps: () => ClientApiDeps): (req: Request) => Promise<Response> {
  return async (req) => {
    if (req.method === "OPTIONS") return new Response(null, { status: 204, headers: CORS_HEADERS });
    let resolved: ClientApiDeps;
    try {
      resolved = deps();
    } catch (error) {
      log("error", "invalid_configuration", { function: "csv-import-api", error });
      return errorResponse(500, "invalid_configuration", "The csv-import-api function is not configured");
    }
    try {
      const user = await resolved.authenticate(req);
      if (!user) {
        await req.body?.cancel();
        return errorResponse(401, "unauthorized", "Sign in: this API needs a signed-in user's access token");
      }
      return await answer(req, user, resolved);
    } catch (error) {
      if (error instanceof ImportNotFound) return errorResponse(404, "not_found", error.message);
      if (error instanceof HttpError) return errorResponse(error.status, error.code, error.message);
      log("error", "csv-import-api_failed", { error });
      return errorResponse(500, "csv-import-api_failed", redact(String(error)));
    }
  };
}
