/**
 * What every route handler receives: the request, its decoded path parameters, the authenticated caller,
 * a request-scoped database handle and the shared services. Also the JSON response helper.
 *
 * Invariants:
 * - `params` values are already percent-decoded (an encoded `%2F` becomes `/` inside an object name).
 * - Handlers return a Response or throw a StorageError; rendering errors is the router's job.
 */
import type { Caller } from "./auth.ts";
import type { Db } from "./db.ts";
import { ERRORS } from "./errors.ts";
import type { FileStore } from "./files.ts";
import type { StorageFaults } from "./faults.ts";
import type { Tus } from "./tus.ts";

export interface Services {
  files: FileStore;
  /** The global upload limit in bytes (config.toml `[storage] file_size_limit`). */
  fileSizeLimit: number;
  /** Local-only fault injection for object reads (faults.ts); inactive until a plan is set. */
  faults: StorageFaults;
  /** Resumable (TUS) uploads at /upload/resumable (tus.ts). */
  tus: Tus;
}

export interface Ctx {
  req: Request;
  url: URL;
  params: Record<string, string>;
  caller: Caller;
  db: Db;
  services: Services;
}

export function json(body: unknown, status = 200): Response {
  return Response.json(body, { status });
}

/** Parses a JSON request body into an object; a malformed body is the client's error. */
export async function jsonBody(req: Request): Promise<Record<string, unknown>> {
  try {
    const body = await req.json();
    if (body && typeof body === "object" && !Array.isArray(body)) return body;
  } catch {
    // reported below
  }
  throw ERRORS.invalidRequest("Body must be a JSON object");
}
