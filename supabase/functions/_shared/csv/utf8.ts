/**
 * UTF-8 validation that reports where the first invalid byte is (TextDecoder only says "invalid").
 * Used on a file's head, on a batch that TextDecoder rejected, and per non-ASCII record on the fast row path.
 * Follows the WHATWG/Unicode definition: no overlongs, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF.
 */

export interface Utf8Scan {
  /** Index of the first byte of the first invalid sequence, or -1 when all of [from, to) is valid. */
  readonly invalidAt: number;
  /**
   * When `invalidAt` is -1 and the range ends inside a multibyte sequence that could still be completed by the
   * bytes that follow, the index where that incomplete sequence starts; otherwise -1.
   */
  readonly incompleteAt: number;
}

export function scanUtf8(bytes: Uint8Array, from = 0, to = bytes.length): Utf8Scan {
  let i = from;
  while (i < to) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      else if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      else if (b === 0xf4) hi = 0x8f;
    } else return { invalidAt: i, incompleteAt: -1 };
    for (let k = 1; k <= need; k++) {
      if (i + k >= to) return { invalidAt: -1, incompleteAt: i };
      const c = bytes[i + k];
      if (c < lo || c > hi) return { invalidAt: i, incompleteAt: -1 };
      lo = 0x80;
      hi = 0xbf;
    }
    i += need + 1;
  }
  return { invalidAt: -1, incompleteAt: -1 };
}

/** True when [from, to) is complete, valid UTF-8 (what TextDecoder's fatal mode accepts). */
export function isValidUtf8(bytes: Uint8Array, from = 0, to = bytes.length): boolean {
  const scan = scanUtf8(bytes, from, to);
  return scan.invalidAt === -1 && scan.incompleteAt === -1;
}

/** Formats a byte as `0xFF`. */
export function hexByte(b: number): string {
  return "0x" + b.toString(16).toUpperCase().padStart(2, "0");
}
