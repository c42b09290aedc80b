/**
 * The common shell of the pipeline's HTTP handlers: configuration check, caller check, JSON body parsing and
 * error mapping, so each function's index.ts is only "parse request, call the core, respond".
 *
 * Invariants:
 * - An invalid configuration answers 500 with the list of problems (no secret values), on every request, until
 *   fixed; it is also logged once at start.
 * - A caller without the service role gets 401 before any work or parsing happens.
 * - A malformed body gets 400 with what was expected; an unexpected error gets 500 and a log line, its message
 *   masked like a log line (no key, JWT or connection-string password reaches the caller).
 */
import { isServiceCaller, unauthorized } from "./auth.ts";
import { type Config, config, ConfigError } from "./config.ts";
import { log, redact } from "./log.ts";

export class BadRequest extends Error {}

export type ServiceHandler = (body: Record<string, unknown>, cfg: Config, req: Request) => Promise<Response>;

export function serveService(name: string, handler: ServiceHandler): void {
  try {
    config();
  } catch (error) {
    log("error", "invalid_configuration", { function: name, error });
  }
  Deno.serve(async (req) => {
    let cfg: Config;
    try {
      cfg = config();
    } catch (error) {
      const problems = error instanceof ConfigError ? error.problems : [String(error)];
      return Response.json({ error: "invalid_configuration", problems }, { status: 500 });
    }
    if (!isServiceCaller(req, cfg)) return unauthorized();
    let body: Record<string, unknown> = {};
    if (req.method === "POST") {
      const text = await req.text();
      try {
        body = text.trim() ? JSON.parse(text) : {};
      } catch {
        return Response.json({ error: "bad_request", message: "The body must be a JSON object" }, {
          status: 400,
        });
      }
      if (body === null || typeof body !== "object" || Array.isArray(body)) {
        return Response.json({ error: "bad_request", message: "The body must be a JSON object" }, {
          status: 400,
        });
      }
    }
    try {
      return await handler(body, cfg, req);
    } catch (error) {
      if (error instanceof BadRequest) {
        return Response.json({ error: "bad_request", message: error.message }, { status: 400 });
      }
      log("error", `${name}_failed`, { error });
      return Response.json({ error: `${name}_failed`, message: redact(String(error)) }, { status: 500 });
    }
  });
}

/** Reads a required positive integer field of a request body. */
export function requireId(body: Record<string, unknown>, field: string): number {
  const value = body[field];
  const id = typeof value === "string" ? Number(value) : value;
  if (typeof id !== "number" || !Number.isSafeInteger(id) || id <= 0) {
    throw new BadRequest(`"${field}" must be a positive integer`);
  }
  return id;
}
