/**
 * Creates the buckets supabase/config.toml declares (`[storage.buckets.*]`) in the database at SUPABASE_DB_URL,
 * as the local stack's gateway does when it starts (local-stack/main.ts) and as `supabase start` seeds them.
 * Used by scripts/other_major.sh, whose short-lived cluster has no gateway, so that the pgTAP suite finds the
 * same buckets there as on the stack's own cluster.
 *
 * Invariant: the same code path as the gateway (readStorageConfig + ensureBuckets), so both clusters agree.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createStorageApi, readStorageConfig } from "../local-stack/storage/api.ts";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const dbUrl = Deno.env.get("SUPABASE_DB_URL");
if (!dbUrl) throw new Error("SUPABASE_DB_URL is not set");
const stateDir = Deno.env.get("LOCAL_STATE_DIR") ?? join(repoRoot, ".local");

const config = await readStorageConfig(join(repoRoot, "supabase", "config.toml"));
const storage = createStorageApi({
  dbUrl,
  rootDir: join(stateDir, "storage"),
  fileSizeLimitBytes: config.fileSizeLimitBytes,
});
try {
  await storage.ensureBuckets(config.buckets);
} finally {
  await storage.close();
}
console.log(`buckets: ${config.buckets.map((b) => b.id).join(", ")}`);
