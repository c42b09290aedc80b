/**
 * Storage API errors, rendered exactly like hosted Storage renders them (supabase/storage
 * `src/internal/errors/codes.ts`, `storage-error.ts`, `src/http/error-handler.ts`).
 *
 * Invariants:
 * - Body shape is always `{ statusCode: "<code as string>", code, error, message }`.
 * - The HTTP status is 400 for every error whose `statusCode` is not 500, as hosted does ("we always return
 *   the http status code as 400 for errors", supabase/storage#158). The only exceptions are the ones hosted
 *   makes itself (route not found: 404) and an unsatisfiable Range (416 with `Content-Range: bytes *\/size`,
 *   RFC 9110 §15.5.17), which range readers rely on.
 * - Postgres errors map by SQLSTATE as hosted's `DBError.fromDBError` does (42501 → AccessDenied, …).
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
  invalidRange: (size: number) =>
    new StorageError(416, "InvalidRange", "invalid range provided", "invalid_range", 416, {
      "Content-Range": `bytes */${size}`,
    }),
  resourceLocked: () => new StorageError(423, "ResourceLocked", "The resource is locked"),
  storedBytesMissing: () => new StorageError(404, "NoSuchKey", "The resource was not found", "Not found"),
  databaseError: (message: string) => new StorageError(500, "DatabaseError", message),
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
