/**
 * The local Storage API stand-in: a library the gateway mounts at `/storage/v1`. It serves the routes
 * supabase-js `storage` uses (buckets, upload/update, download with Range, HEAD, info, list, remove, move,
 * copy, signed download and upload URLs) and resumable (TUS) uploads (tus.ts) over local disk + the local Postgres, with hosted Storage's request
 * and response shapes, error bodies and RLS semantics (see router.ts for the table).
 *
 * Invariants:
 * - Rows live in storage.buckets / storage.objects; bytes live under `rootDir` (files.ts), one file per
 *   object version. A row's `version` names its file.
 * - Every database access runs in a transaction scoped to the caller's role and JWT claims (db.ts), so
 *   RLS policies decide exactly as on hosted; the service role bypasses them.
 * - Uploads follow hosted's order: RLS permission test, bytes to disk, then the row (upload.ts).
 * - `log` receives one `storage.request` event per request (method, path, role, status, ms) and a
 *   `storage.error` event for server errors.
 */
import { FileStore } from "./files.ts";
import { StorageFaults } from "./faults.ts";
import { createPool, type Pool } from "./db.ts";
import { createRouter } from "./router.ts";
import { createTus } from "./tus.ts";
import { applyBuckets, type BucketSpec } from "./routes_buckets.ts";

export type { BucketSpec } from "./routes_buckets.ts";
export { parseStorageConfig, readStorageConfig, type StorageConfig } from "./config.ts";

export interface StorageApiOptions {
  dbUrl: string;
  rootDir: string;
  /** Global upload limit in bytes; default 50 MiB, the CLI's `[storage] file_size_limit`. */
  fileSizeLimitBytes?: number;
  log?: (event: Record<string, unknown>) => void;
}

export interface StorageApi {
  /** Serves one request whose URL path starts with `/storage/v1`. */
  handle(req: Request): Promise<Response>;
  /** Creates or reconfigures buckets as the service role (config.toml `[storage.buckets.*]`). */
  ensureBuckets(buckets: BucketSpec[]): Promise<void>;
  /** Local-only fault injection for object reads (faults.ts), driven by the gateway's /_local routes. */
  faults: StorageFaults;
  close(): Promise<void>;
}

export function createStorageApi(options: StorageApiOptions): StorageApi {
  const pool: Pool = createPool(options.dbUrl);
  const files = new FileStore(options.rootDir);
  const services = {
    files,
    fileSizeLimit: options.fileSizeLimitBytes ?? 50 * 1024 * 1024,
    faults: new StorageFaults(files),
    tus: createTus(options.rootDir),
  };
  const handle = createRouter(pool, services, options.log ?? (() => {}));
  return {
    handle,
    ensureBuckets: (buckets) =>
      applyBuckets(pool.scoped({ method: "", path: "", headers: {} }), buckets, services.fileSizeLimit),
    faults: services.faults,
    close: () => pool.close(),
  };
}
