/**
 * Errors that are the file's fault.
 *
 * - {@link CsvError} is thrown for problems that make the rest of the file unreadable or unsafe to read
 *   (wrong encoding, binary data, a record over the size limit, an unterminated quote). The job fails with
 *   `message`, which is written for the person who uploaded the file.
 * - {@link RecordIssue} marks a single bad record; the parser still returns the record (with its raw text) so
 *   the caller can reject it and go on.
 */

export type CsvErrorCode =
  | "empty_file"
  | "compressed"
  | "binary"
  | "utf16"
  | "utf32"
  | "nul_byte"
  | "invalid_utf8"
  | "wrong_encoding"
  | "truncated_utf16"
  | "header_too_long"
  | "record_too_large"
  | "unterminated_quote";

export class CsvError extends Error {
  override readonly name = "CsvError";
  constructor(
    readonly code: CsvErrorCode,
    message: string,
    /** Absolute byte offset the error refers to, when known. */
    readonly offset?: number,
    /** 1-based physical line the error refers to, when known. */
    readonly line?: number,
  ) {
    super(message);
  }
}

export type RecordIssueCode =
  | "invalid_utf8"
  | "invalid_utf16"
  | "untranslatable"
  | "unquoted_cr"
  | "unquoted_lf"
  | "bare_lf";

/** Why one record cannot be loaded. */
export interface RecordIssue {
  readonly code: RecordIssueCode;
  readonly message: string;
}
