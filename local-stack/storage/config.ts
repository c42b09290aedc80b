/**
 * Reads the Storage settings of supabase/config.toml the way the Supabase CLI does, so the gateway can
 * create the configured buckets at start (the CLI's bucket seeding):
 *   [storage] enabled, file_size_limit
 *   [storage.buckets.<name>] public, file_size_limit, allowed_mime_types
 *
 * Invariants:
 * - Sizes use the CLI's parser (docker/go-units RAMInBytes): binary multiples whatever the spelling,
 *   so "50MiB" = "50MB" = 52428800 bytes; a bare number is bytes. (The HTTP API's own size strings are
 *   decimal, see names.ts.)
 * - Defaults follow the CLI: storage enabled, global limit 50 MiB, buckets private with no own limit (0 or
 *   absent → none) and no MIME restriction. `objects_path` (seed uploads) is not handled here.
 */
import { parse } from "smol-toml";
import type { BucketSpec } from "./routes_buckets.ts";

export interface StorageConfig {
  enabled: boolean;
  fileSizeLimitBytes: number;
  buckets: BucketSpec[];
}

const DEFAULT_LIMIT = "50MiB";

/** go-units RAMInBytes: "5MB", "32kB", "50MiB", "1.5g", "1024". */
export function parseConfigSize(value: string | number): number {
  if (typeof value === "number") return value;
  const match = /^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$/i.exec(value.trim());
  if (!match) throw new Error(`invalid size in config.toml: "${value}"`);
  const power = match[2] ? "kmgtp".indexOf(match[2].toLowerCase()) + 1 : 0;
  return Math.floor(parseFloat(match[1]) * 1024 ** power);
}

export function parseStorageConfig(tomlText: string): StorageConfig {
  const storage = (parse(tomlText).storage ?? {}) as Record<string, unknown>;
  const buckets = (storage.buckets ?? {}) as Record<string, Record<string, unknown>>;
  return {
    enabled: storage.enabled !== false,
    fileSizeLimitBytes: parseConfigSize((storage.file_size_limit as string | number) ?? DEFAULT_LIMIT),
    buckets: Object.entries(buckets).map(([id, bucket]) => {
      const limit = bucket.file_size_limit === undefined
        ? 0
        : parseConfigSize(bucket.file_size_limit as string | number);
      const mimes = bucket.allowed_mime_types as string[] | undefined;
      return {
        id,
        public: bucket.public === true,
        fileSizeLimit: limit > 0 ? limit : null,
        allowedMimeTypes: mimes && mimes.length > 0 ? mimes : null,
      };
    }),
  };
}

export async function readStorageConfig(configTomlPath: string): Promise<StorageConfig> {
  return parseStorageConfig(await Deno.readTextFile(configTomlPath));
}
