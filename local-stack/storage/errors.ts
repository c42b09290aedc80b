/**
 * Storage API errors, rendered exactly like hosted Storage renders them (supabase/storage
 * `src/internal/errors/codes.ts`, `storage-error.ts`, `src/http/error-handler.ts`).
 *
 * Invariants:
 * - Body shape is always `{ statusCode: "<code as string>", code, error, message }`.
 * - The HTTP status is 400 for every error whose `statusCode` is not 500, as hosted does: `StorageBackendError`
 *   sets `userStatusCode = httpStatusCode === 500 ? 500 : 400` (`src/internal/errors/storage-error.ts:23`) and
 *   the REST error handler answers with it (`src/http/error-handler.ts:46-52`). So not-found (404), lock
 *   timeouts and a read-only database (503) travel as HTTP 400 with the real code in the body's `statusCode`.
 * - The real status only where hosted keeps it: DatabaseTimeout 544 (`codes.ts` `withStatusCode(544)`), too
 *   many database connections 429 (`error-handler.ts:33-42`, `isDatabaseSlowDownError`), route not found 404
 *   (fastify), and 500.
 * - An unsatisfiable Range is answered as hosted's S3 backend answers it: GetObject's S3 `InvalidRange` (416)
 *   escapes the renderer (`src/storage/renderer/renderer.ts:81-102` only maps 304 and 404), is neither a
 *   renderable error nor carries `statusCode`, so the handler's last branch sends HTTP 500
 *   `{statusCode:"500", code:"InternalError", error:"Internal", message:"Internal Server Error"}`. The 416 of
 *   `src/storage/range.ts` belongs to the file backend, which hosted does not run.
 * - Postgres errors map by SQLSTATE as hosted's `DBError.fromDBError` does (`src/storage/database/errors.ts`:
 *   42501 → AccessDenied, 55P03 → ResourceLocked, 57014 → DatabaseTimeout 544, 25006 → DatabaseReadOnly, …);
 *   a lock timeout while waiting for an object's upload lock is LockTimeout (`src/storage/database/pg.ts`
 *   `waitObjectLock`).
 */
import postgres from "postgres";

export class StorageError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly error: string = code,
    readonly httpStatus: number = statusCode === 500 ? 500 : 400,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toResponse(): Response {
    const body = {
      statusCode: String(this.statusCode),
      code: this.code,
      error: this.error,
      message: this.message,
    };
    return Response.json(body, { status: this.httpStatus, headers: this.headers });
  }
}

export const ERRORS = {
  noSuchBucket: () => new StorageError(404, "NoSuchBucket", "Bucket not found", "Bucket not found"),
  noSuchKey: () => new StorageError(404, "NoSuchKey", "Object not found", "not_found"),
  invalidKey: (key: string) => new StorageError(400, "InvalidKey", `Invalid key: ${key}`),
  invalidBucketName: () => new StorageError(400, "InvalidBucketName", "Bucket name invalid", "Invalid Input"),
  invalidJwt: (message: string) => new StorageError(400, "InvalidJWT", message || "Invalid JWT"),
  invalidSignature: () => new StorageError(400, "InvalidSignature", "Invalid signature"),
  accessDenied: (message: string) => new StorageError(403, "AccessDenied", message, "Unauthorized"),
  keyAlreadyExists: () =>
    new StorageError(409, "KeyAlreadyExists", "The resource already exists", "Duplicate"),
  bucketAlreadyExists: () =>
    new StorageError(409, "BucketAlreadyExists", "The resource already exists", "Duplicate"),
  resourceAlreadyExists: () =>
    new StorageError(409, "ResourceAlreadyExists", "The resource already exists", "Duplicate"),
  bucketNotEmpty: () =>
    new StorageError(409, "ResourceNotEmpty", "The bucket you tried to delete is not empty"),
  relatedResourceNotFound: () =>
    new StorageError(404, "InvalidRequest", "The related resource does not exist"),
  entityTooLarge: (entity = "object") =>
    new StorageError(
      413,
      "EntityTooLarge",
      `The ${entity} exceeded the maximum allowed size`,
      "Payload too large",
    ),
  invalidMimeType: (mime: string) =>
    new StorageError(415, "InvalidMimeType", `mime type ${mime} is not supported`, "invalid_mime_type"),
  invalidFileSizeLimit: () =>
    new StorageError(400, "InvalidRequest", "Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B"),
  noContentProvided: () => new StorageError(400, "InvalidRequest", "No content provided"),
  invalidRequest: (message: string) => new StorageError(400, "InvalidRequest", message),
  /** An unsatisfiable Range on the S3 backend (see the module doc): an unrendered S3 error, HTTP 500. */
  invalidRange: () => new StorageError(500, "InternalError", "Internal Server Error", "Internal", 500),
  resourceLocked: () => new StorageError(423, "ResourceLocked", "The resource is locked"),
  storedBytesMissing: () => new StorageError(404, "NoSuchKey", "The resource was not found", "Not found"),
  databaseError: (message: string) => new StorageError(500, "DatabaseError", message),
  /** `codes.ts` LockTimeout: the object's upload lock was not acquired in time. HTTP 400, 503 in the body. */
  lockTimeout: () => new StorageError(503, "LockTimeout", "acquiring lock timeout", "acquiring_lock_timeout"),
  /** `codes.ts` DatabaseReadOnly (SQLSTATE 25006). HTTP 400, 503 in the body. */
  databaseReadOnly: () =>
    new StorageError(
      503,
      "DatabaseReadOnly",
      "The database is currently in read-only mode. Please try again later.",
    ),
  /** `codes.ts` DatabaseTimeout (SQLSTATE 57014, pool timeouts): the one error hosted sends with HTTP 544. */
  databaseTimeout: () =>
    new StorageError(
      544,
      "DatabaseTimeout",
      "The connection to the database timed out",
      "DatabaseTimeout",
      544,
    ),
  /** `error-handler.ts:33-42`: the database refused a connection (too many clients). HTTP 429. */
  tooManyConnections: () =>
    new StorageError(
      429,
      "SlowDown",
      "Too many connections issued to the database",
      "too_many_connections",
      429,
    ),
  /** An S3 error on a write (`StorageBackendError.fromError`): code S3Error, the S3 name as message. */
  s3SlowDown: () => new StorageError(503, "S3Error", "SlowDown", "Please reduce your request rate."),
  internal: (message = "Internal server error") => new StorageError(500, "InternalError", message),
  routeNotFound: (method: string, path: string) =>
    new StorageError(404, "NotFound", `Route ${method}:${path} not found`, "Not Found", 404),
};

/** Maps a Postgres error to the Storage error hosted returns for the same SQLSTATE. */
export function fromPgError(e: postgres.PostgresError): StorageError {
  switch (e.code) {
    case "42501":
      return ERRORS.accessDenied(
        e.message.includes("row-level security") ? "new row violates row-level security policy" : e.message,
      );
    case "23505":
      return ERRORS.resourceAlreadyExists();
    case "23503":
      return ERRORS.relatedResourceNotFound();
    case "55P03":
      return ERRORS.resourceLocked();
    case "57014":
      return ERRORS.databaseTimeout();
    case "25006":
      return ERRORS.databaseReadOnly();
    case "53300":
      return ERRORS.tooManyConnections();
    case "22P02":
      return new StorageError(400, "InvalidParameter", e.message || "Invalid Parameter value");
    default:
      return ERRORS.databaseError(`database error, code: ${e.code}`);
  }
}

/** Turns anything thrown while handling a request into the error to render. */
export function toStorageError(e: unknown): StorageError {
  if (e instanceof StorageError) return e;
  if (e instanceof postgres.PostgresError) return fromPgError(e);
  return ERRORS.internal(e instanceof Error ? e.message : String(e));
}
