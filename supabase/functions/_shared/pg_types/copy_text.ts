/**
 * Escaping for PostgreSQL `COPY ... FROM STDIN` in TEXT format (the default format, tab delimiter, `\N` null).
 *
 * Invariants:
 * - {@link escapeCopyText} returns a field that COPY TEXT reads back as exactly the input string: backslash,
 *   newline, carriage return and tab (the delimiter) are the only characters COPY TEXT treats specially in
 *   data, and each is written as its backslash escape (`\\`, `\n`, `\r`, `\t`). Every other character,
 *   including non-ASCII, is written as itself.
 * - A NUL character (U+0000) cannot be stored in any PostgreSQL text value, so it is never escaped: callers
 *   check {@link hasNul} first and reject the value ("NUL character not allowed").
 * - {@link COPY_NULL} (`\N`) is the only field that means NULL; no escaped value can equal it, because a
 *   literal backslash is always doubled.
 * - The common case (nothing to escape) returns the input string itself: no allocation.
 */

/** The COPY TEXT representation of SQL NULL. */
export const COPY_NULL = "\\N";

const NEEDS_ESCAPE = /[\\\n\r\t]/;
const ESCAPE_ALL = /[\\\n\r\t]/g;
const NUL = /\0/;

function escapeChar(ch: string): string {
  switch (ch) {
    case "\\":
      return "\\\\";
    case "\n":
      return "\\n";
    case "\r":
      return "\\r";
    default:
      return "\\t";
  }
}

/** True when `value` contains U+0000, which PostgreSQL text cannot hold. */
export function hasNul(value: string): boolean {
  return value.indexOf("\0") !== -1;
}

/**
 * Escapes `value` as one COPY TEXT field. The value must not contain NUL (see {@link hasNul}); NUL is
 * passed through unescaped and would make COPY fail.
 */
export function escapeCopyText(value: string): string {
  return NEEDS_ESCAPE.test(value) ? value.replace(ESCAPE_ALL, escapeChar) : value;
}

/** True when `value` contains a character that {@link escapeCopyText} would rewrite. */
export function needsCopyEscape(value: string): boolean {
  return NEEDS_ESCAPE.test(value);
}

/** Reverses {@link escapeCopyText} (also accepts the other COPY TEXT escapes: `\b \f \v`, octal, `\xHH`). */
export function unescapeCopyText(field: string): string | null {
  if (field === COPY_NULL) return null;
  if (field.indexOf("\\") === -1) return field;
  let out = "";
  for (let i = 0; i < field.length; i++) {
    const ch = field[i];
    if (ch !== "\\" || i + 1 >= field.length) {
      out += ch;
      continue;
    }
    const next = field[++i];
    switch (next) {
      case "n":
        out += "\n";
        break;
      case "r":
        out += "\r";
        break;
      case "t":
        out += "\t";
        break;
      case "b":
        out += "\b";
        break;
      case "f":
        out += "\f";
        break;
      case "v":
        out += "\v";
        break;
      default:
        if (next >= "0" && next <= "7") {
          let code = next.charCodeAt(0) - 48;
          for (let k = 0; k < 2 && i + 1 < field.length && field[i + 1] >= "0" && field[i + 1] <= "7"; k++) {
            code = code * 8 + field.charCodeAt(++i) - 48;
          }
          out += String.fromCharCode(code & 0xff);
        } else {
          out += next;
        }
    }
  }
  return out;
}

/** True when the string contains no NUL; used by tests and callers that build fields by hand. */
export function isCopySafe(value: string): boolean {
  return !NUL.test(value);
}

/**
 * Quotes a value for an error message the way PostgreSQL does (`"value"`), clipped to about 60 characters
 * so a reject reason stays readable; a clipped value ends with an ellipsis.
 */
export function quoteValue(value: string, max = 60): string {
  if (value.length <= max) return `"${value}"`;
  let end = max - 1;
  const code = value.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--; // do not split a surrogate pair
  return `"${value.slice(0, end)}…"`;
}
