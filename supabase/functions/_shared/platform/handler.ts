/**
 * The common shell of the pipeline's HTTP handlers: configuration check, caller check, JSON body parsing and
 * error mapping, so each function's index.ts is only "parse request, call the core, respond".
 *
 * Invariants:
 * - A caller without the service role gets 401 before any work or parsing happens, whether or not the
 *   configuration is valid (the caller keys are then read on their own: config.ts callerKeys).
 * - An invalid configuration answers a service caller 500 with a generic message and logs the list of
 *   problems (masked), on every request until fixed; it is also logged once at start. No response ever
 *   carries a configured value: a problem such as "SUPABASE_URL must be an http(s) URL, got …" quotes what
 *   was set, which may be a connection string with its password.
 * - A malformed body gets 400 with what was expected; an unexpected error gets 500 and a log line, its message
 *   masked like a log line (no key, JWT or connection-string password reaches the caller).
 */
import { isServiceCaller, unauthorized } from "./auth.ts";
import { callerKeys, type Config, config, ConfigError } from "./config.ts";
import { withCors } from "./cors.ts";
import { log, redact } from "./log.ts";

export class BadRequest extends Error {}

export type ServiceHandler = (body: Record<string, unknown>, cfg: Config, req: Request) => Promise<Response>;

/** Runtime globals the handler uses, injectable for tests. */
export interface ServiceDeps {
  /** The validated configuration; throws ConfigError when it is invalid. */
  config: () => Config;
  /** The raw environment, read for the caller keys when the configuration is invalid. */
  env: () => Record<string, string | undefined>;
}

const runtimeDeps: ServiceDeps = { config, env: () => Deno.env.toObject() };

/** Serves `handler` behind the service-key check; `cors`: also to browsers on other origins (platform/cors.ts). */
export function serveService(name: string, handler: ServiceHandler, options: { cors?: boolean } = {}): void {
  try {
    config();
  } catch (error) {
    log("error", "invalid_configuration", { function: name, problems: problemsOf(error) });
  }
  const serve = serviceHandler(name, handler);
  Deno.serve(options.cors ? withCors(serve) : serve);
}

function problemsOf(error: unknown): string[] {
  return error instanceof ConfigError ? error.problems : [String(error)];
}

/** The request handler serveService serves: caller check, configuration check, body parsing, error mapping. */
export function serviceHandler(
  name: string,
  handler: ServiceHandler,
  deps: ServiceDeps = runtimeDeps,
): (req: Request) => Promise<Response> {
  return async (req) => {
    let cfg: Config;
    try {
      cfg = deps.config();
    } catch (error) {
      if (!isServiceCaller(req, callerKeys(deps.env()))) return unauthorized();
      log("error", "invalid_configuration", { function: name, problems: problemsOf(error) });
      return Response.json({
        error: "invalid_configuration",
        message: `The configuration of the ${name} function is invalid, so it cannot run; ` +
          "its log names the problem (event invalid_configuration)",
      }, { status: 500 });
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
  };
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
