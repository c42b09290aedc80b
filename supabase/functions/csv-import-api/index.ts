/**
 * csv-import-api: the client API for signed-in users (issue 17), answering with the caller's own rights: their
 * imports and each one's progress, its first rejects, a signed link to its rejects file, and cancelling it.
 * Routes and guarantees: _shared/client_api/handler.ts; the SQL it asks: _shared/client_api/queries.ts and
 * csv_import_api (migration 20261210000000_client_api.sql). On hosted projects apps may ask PostgREST the same
 * questions directly (docs/client-api.md); this function answers them where PostgREST is absent (the local
 * stack) and for clients that prefer one endpoint.
 *
 * Auth: a signed-in user's access token (`Authorization: Bearer …`), checked with Supabase Auth
 * (_shared/platform/user_auth.ts); verify_jwt = false, as for the other functions.
 */
import { asUser } from "../_shared/client_api/as_user.ts";
import { type ClientApiDeps, clientApiHandler } from "../_shared/client_api/handler.ts";
import { FUNCTION_NAMES } from "../_shared/pipeline/function_names.ts";
import { config } from "../_shared/platform/config.ts";
import { db } from "../_shared/platform/db.ts";
import { StorageClient } from "../_shared/platform/storage.ts";
import { signedInUser } from "../_shared/platform/user_auth.ts";

let deps: ClientApiDeps | null = null;

Deno.serve(clientApiHandler(() => {
  if (deps) return deps;
  const cfg = config();
  const sql = db(cfg.dbUrl, FUNCTION_NAMES.api);
  const storage = new StorageClient({ supabaseUrl: cfg.supabaseUrl, key: cfg.serviceKey });
  deps = {
    authenticate: (req) => signedInUser(req, { supabaseUrl: cfg.supabaseUrl, apiKey: cfg.serviceKey }),
    asUser: (user, work) => asUser(sql, user.claims, work),
    signUrl: (bucket, name, expiresIn) => storage.signedUrl(bucket, name, expiresIn),
  };
  return deps;
}));
