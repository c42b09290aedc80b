/**
 * Object-key and bucket-name rules, and the API's size strings, as hosted Storage applies them
 * (supabase/storage `src/storage/limits.ts`).
 *
 * Invariants:
 * - Object keys: any UTF-8 except controls, S3's "characters to avoid" and invisible/BiDi code points; no
 *   `.` or `..` path segment; at most 1024 UTF-8 bytes. Keys are only ever database keys: file paths on disk
 *   are derived from the bucket id and a version uuid (files.ts), never from a key.
 * - Bucket names: ASCII S3-safe characters only, no `/`, 1–100 characters.
 * - API size strings ("100MB") are decimal (1 MB = 10^6 bytes), unlike config.toml sizes (config.ts).
 */
import { ERRORS } from "./errors.ts";

const VALID_OBJECT_KEY =
  // deno-lint-ignore no-control-regex
  /^[^\u0000-\u001f\u007f\u0080-\u009f#\[\]{}^`"<>\\|%~\u{034F}\u{061C}\u{200B}\u{200E}\u{200F}\u{2028}\u{2029}\u{202A}-\u{202E}\u{2060}\u{2066}-\u{2069}\u{FEFF}]+$/u;
const PATH_TRAVERSAL = /(^|\/)\.{1,2}(\/|$)/;
const VALID_BUCKET_NAME = /^[A-Za-z0-9_!.*'() &$=@;:+,?-]+$/;
const MAX_KEY_BYTES = 1024;
const encoder = new TextEncoder();

export function mustBeValidKey(key: string): void {
  const valid = key.length > 0 && VALID_OBJECT_KEY.test(key) && !PATH_TRAVERSAL.test(key) &&
    encoder.encode(key).byteLength <= MAX_KEY_BYTES;
  if (!valid) throw ERRORS.invalidKey(key);
}

export function mustBeValidBucketName(name: string): void {
  if (!(name.length > 0 && name.length < 101 && VALID_BUCKET_NAME.test(name))) {
    throw ERRORS.invalidBucketName();
  }
}

/** Hosted `parseFileSizeToBytes`: "20GB" / "20MB" / "30KB" / "3B", decimal units. */
export function parseApiSize(value: string): number {
  const match = /^([0-9]+(?:\.[0-9]+)?)(gb|mb|kb|b)$/i.exec(value);
  if (!match) throw ERRORS.invalidFileSizeLimit();
  const factor = { GB: 1e9, MB: 1e6, KB: 1e3, B: 1 }[match[2].toUpperCase() as "GB" | "MB" | "KB" | "B"];
  return Math.round(parseFloat(match[1]) * factor);
}

/** Hosted restricts `.emptyFolderPlaceholder` objects (Studio's folder markers) to 0 bytes. */
export function isEmptyFolder(name: string): boolean {
  return name.endsWith(".emptyFolderPlaceholder");
}

export function isUuid(value: string | null | undefined): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-5][0-9a-f]{3}-[089ab][0-9a-f]{3}-[0-9a-f]{12}$/i.test(value ?? "");
}
