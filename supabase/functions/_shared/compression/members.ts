/**
 * Whole gzip members inflated in the runtime's native inflater, their ends found without a pako pass (issue 16:
 * files of many members, as `split | gzip` pieces concatenated, `bgzip` or pigz-style tools write them, are split
 * where members start, and each member runs in DecompressionStream, 1.6–1.8× pako).
 *
 * How a member's end is found: the next member's header follows the member's 8-byte trailer (CRC-32, size mod
 * 2^32). Every later place where a gzip header could start (1f 8b 08, reserved flags clear, XFL 0/2/4, a known OS
 * byte) names a candidate trailer just before it, and so does the data's end. The member's deflate data and that
 * trailer go to the runtime's gzip decoder (DecompressionStream "gzip"), which refuses them unless the deflate data
 * ends exactly before the trailer and the CRC-32 and size match. The first candidate that passes is the member's
 * end: decoding is deterministic, so data that decodes completely to a matching trailer there is the member, as
 * gzip -d reads it. Header bytes that occur inside compressed data by chance (or by craft, in stored blocks) fail,
 * and the next candidate is tried.
 *
 * A member entered in its middle (a load from a checkpoint inside it) can only run as raw deflate with the expected
 * CRC and size, and DecompressionStream takes a raw stream cut short without complaint: a crafted trailer matching
 * the data before it would pass. So such a member may end only at `end` with endIsMember, a member start the chain
 * found by a full check, never at a candidate of its own.
 *
 * Invariants:
 * - Events as inflateFrom's, in output order: data; a checkpoint at each later member's start, just after its
 *   header, exactly as the pako pass makes them (window empty, byte-aligned, the member's check at zero); and end
 *   at the data's end when `end` is the data's end. With `endIsMember`, output stops at the header at `end`.
 * - What cannot go natively throws {@link NotNative} naming the checkpoint to go on from in pako (the current
 *   member's start, or `from`) and how far output was yielded: no candidate within `maxMemberBytes` (one member of
 *   a single-member file), a member the caller does not `accept`, a header that does not parse, every candidate
 *   failing (a corrupt file: pako then reports it with its offset), or MAX_FAILED_CANDIDATES of them. Output
 *   yielded before a candidate failed is the member's true output (both engines decode the same prefix), so the
 *   caller skips it and goes on.
 * - Memory: the compressed bytes of one member (bounded by `maxMemberBytes`) plus one read piece; the bytes not
 *   used natively are handed on in NotNative.rest, never read twice.
 */
import { crc32 } from "./crc32.ts";
import {
  atMemberStart,
  type Checkpoint,
  CompressionError,
  dataFrom,
  type InflateEvent,
  inflateFrom,
  resumeByte,
} from "./inflate.ts";

export class NotNative extends Error {
  override readonly name = "NotNative";
  constructor(
    reason: string,
    /** Where pako goes on: a checkpoint this pass reached (its start, a member's start or its header). */
    readonly at: Checkpoint,
    /** Output offset up to which data was yielded already. */
    readonly out: number,
    /** The object's bytes from resumeByte(at) on: what was read ahead, then the rest of the input. */
    readonly rest: AsyncIterable<Uint8Array>,
  ) {
    super(reason);
  }
}

export interface MembersOptions {
  /** Object offset where the compressed data ends: the data's end, or (endIsMember) a later member's header. */
  end: number;
  /** `end` is the start of a member's header (a load's stop checkpoint), which the last member ends at. */
  endIsMember: boolean;
  /** Largest member (compressed bytes) searched for its end; past it NotNative. */
  maxMemberBytes: number;
  /** Whether a member that would end at output offset `outEnd` goes whole (the chain cuts big ones in pako). */
  accept?: (outEnd: number) => boolean;
}

/**
 * Inflates whole gzip members from `from` (inside a member: any checkpoint; or at a member's header, `member`
 * null). `input`: the object's bytes from resumeByte(from) on, up to `end`.
 */
export async function* inflateMembers(
  from: Checkpoint,
  input: AsyncIterable<Uint8Array>,
  opts: MembersOptions,
): AsyncGenerator<InflateEvent> {
  const start = resumeByte(from);
  const held = new Lookahead(
    input,
    start,
    opts.end,
    Math.min(opts.maxMemberBytes, opts.end - start) + (1 << 16),
  );
  let cp = from;
  let out = from.out;
  const notNative = (reason: string) => new NotNative(reason, cp, out, held.rest(resumeByte(cp)));
  try {
    for (;;) {
      if (cp.member === null) {
        const headerEnd = await readHeader(held, cp.in);
        if (headerEnd === null) throw notNative(`no gzip header that parses at byte ${cp.in}`);
        const header = cp.in;
        cp = {
          out,
          in: headerEnd,
          bits: 0,
          window: new Uint8Array(0),
          member: { crc: 0, size: 0, start: header },
        };
        // The pass's own start is not emitted again (as in inflateFrom); later members' starts are.
        if (header !== from.in) yield { kind: "checkpoint", checkpoint: cp };
      }
      const member = cp.member!;
      // A member entered at its start is checked whole by the runtime's gzip decoder: its deflate data must end
      // exactly at the candidate's trailer, whose CRC-32 and size must match. A member entered in its middle (a
      // load from a checkpoint inside it) runs as raw deflate with the expected CRC and size, which cannot tell a
      // stream cut short at a crafted trailer from a finished one: it may end only where its caller knows a member
      // ends (`end` with endIsMember, a start the chain found), never at a candidate of its own.
      const whole = atMemberStart(cp);
      if (!whole && !opts.endIsMember) throw notNative("a member entered in its middle");
      let ended: Candidate | null = null;
      let searchAt = whole ? cp.in + 8 : opts.end;
      let tried = 0;
      while (ended === null) {
        if (tried === MAX_FAILED_CANDIDATES) throw notNative(`${tried} places looked like the member's end`);
        if (!whole && searchAt > opts.end) {
          throw notNative(`the member entered in its middle does not end at byte ${opts.end}`);
        }
        const candidate = await nextCandidate(held, searchAt, cp.in, opts);
        if (candidate === null) {
          throw notNative(
            held.exhausted
              ? `no member end found before byte ${held.end}`
              : `no member end within ${opts.maxMemberBytes} bytes`,
          );
        }
        searchAt = candidate.at + 1;
        const trailer = held.view(candidate.at - 8, 8);
        const crc32 = trailer.getUint32(0, true);
        const rest = (trailer.getUint32(4, true) - (member.size % 2 ** 32) + 2 ** 32) % 2 ** 32;
        const dataBytes = candidate.at - 8 - cp.in;
        // Deflate output is at least about half its input (codes of up to 15 bits) and at most 1032 times it.
        if (rest * 2 + 1024 < dataBytes || rest > 1032 * dataBytes + 1024) continue;
        if (opts.accept && !opts.accept(cp.out + rest)) throw notNative(`a member of ${rest} more bytes`);
        tried++;
        const data = whole
          ? gzipMember(held.slice(cp.in, candidate.at), cp.out)
          : inflateFrom("deflate", cp, inPieces(held.slice(resumeByte(cp), candidate.at - 8)), {
            end: candidate.at - 8,
            expected: { crc32, size: member.size + rest },
          });
        try {
          for await (const event of data) {
            const piece = event.kind === "data" ? dataFrom(event, out) : null;
            if (piece === null) continue;
            yield piece;
            out = piece.out + piece.bytes.byteLength;
          }
        } catch (error) {
          if (error instanceof CompressionError) continue;
          throw error;
        }
        if (out === cp.out + rest) ended = candidate;
      }
      held.drop(ended.at);
      if (!ended.header) {
        if (!opts.endIsMember) yield { kind: "end", out, in: ended.at };
        return;
      }
      if (opts.endIsMember && ended.at === opts.end) return;
      cp = { out, in: ended.at, bits: 0, window: new Uint8Array(0), member: null };
    }
  } finally {
    await held.close();
  }
}

interface Candidate {
  /** Where the member would end: just after its trailer. */
  at: number;
  /** A member header follows (else the data's end). */
  header: boolean;
}

/**
 * The next place at or after `at` where the member whose data starts at `dataStart` may end: a plausible header
 * start (all 10 fixed bytes held), then `end` itself (a member header when endIsMember, else the data's end). Reads
 * ahead as needed; null past that, or when the member would be larger than maxMemberBytes.
 */
async function nextCandidate(
  held: Lookahead,
  at: number,
  dataStart: number,
  opts: MembersOptions,
): Promise<Candidate | null> {
  let p = at;
  for (;;) {
    const heldEnd = held.base + held.length;
    const lastHeader = Math.min(heldEnd, opts.end) - 10;
    while (p <= lastHeader) {
      const i = held.bytes.indexOf(0x1f, p - held.base);
      if (i === -1 || held.base + i > lastHeader) {
        p = lastHeader + 1;
        break;
      }
      if (plausibleHeader(held.bytes, i)) return { at: held.base + i, header: true };
      p = held.base + i + 1;
    }
    if (heldEnd >= opts.end || held.exhausted) {
      const last = Math.min(heldEnd, opts.end);
      return p <= last ? { at: last, header: opts.endIsMember && last === opts.end } : null;
    }
    if (heldEnd - dataStart >= opts.maxMemberBytes) return null;
    await held.fill();
  }
}
/**
 * Candidates of one member that are inflated and fail before the member goes to pako: each costs an inflation of the
 * member up to it, so a member crafted with many fake headers and trailers (stored blocks carry them as they are)
 * would cost quadratic work; real data meets a plausible fake about once in 10^11 bytes.
 */
const MAX_FAILED_CANDIDATES = 4;

/**
 * Compressed bytes handed to the native inflater at a time. Views, not copies; small, because DecompressionStream
 * inflates a written piece whole before the reader can take any of it: one write of a member's 3 MiB held its 8 MiB
 * of output at once (load memory p95 99 MB instead of 54 in the 1M benchmark).
 */
const NATIVE_PIECE_BYTES = 64 * 1024;

async function* inPieces(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += NATIVE_PIECE_BYTES) {
    yield bytes.subarray(at, at + NATIVE_PIECE_BYTES);
  }
}

/** A minimal gzip header (deflate, no flags): the member's own was checked by readHeader or by the chain. */
const BARE_HEADER = Uint8Array.of(0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255);

/**
 * A whole member's output, decoded by the runtime's gzip decoder from `body` (its deflate data and 8-byte
 * trailer) behind a bare header. The decoder refuses data that does not end exactly before the trailer (cut
 * short, or more after it) and a CRC-32 or size that does not match: any of these is a CompressionError.
 */
async function* gzipMember(body: Uint8Array, out: number): AsyncGenerator<InflateEvent> {
  const stream = new DecompressionStream("gzip");
  const writer = stream.writable.getWriter() as unknown as WritableStreamDefaultWriter<Uint8Array>;
  const reader = stream.readable.getReader();
  const writing = (async () => {
    await writer.write(BARE_HEADER);
    for await (const piece of inPieces(body)) await writer.write(piece);
    await writer.close();
  })().then(() => null, (error) => error as Error);
  let finished = false;
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (error) {
        throw new CompressionError(`Not a whole gzip member: ${(error as Error).message}`, 0);
      }
      if (chunk.done) break;
      yield { kind: "data", bytes: chunk.value, out };
      out += chunk.value.byteLength;
    }
    const failed = await writing;
    if (failed) throw new CompressionError(`Not a whole gzip member: ${failed.message}`, 0);
    finished = true;
  } finally {
    if (!finished) {
      await reader.cancel().catch(() => {});
      await writing;
    }
  }
}

/** 1f 8b, deflate, reserved flags clear, XFL 0/2/4 and an OS byte of RFC 1952 (0–13) or 255 (unknown). */
function plausibleHeader(b: Uint8Array, i: number): boolean {
  return b[i + 1] === 0x8b && b[i + 2] === 8 && (b[i + 3] & 0xe0) === 0 &&
    (b[i + 8] === 0 || b[i + 8] === 2 || b[i + 8] === 4) && (b[i + 9] <= 13 || b[i + 9] === 255);
}

/** The offset just after the gzip header at `at` (checked as the pako pass checks it, CRC included), or null. */
async function readHeader(held: Lookahead, at: number): Promise<number | null> {
  const need = async (n: number) => {
    while (held.base + held.length < at + n && !held.exhausted) await held.fill();
    return held.base + held.length >= at + n;
  };
  if (!(await need(10))) return null;
  let b = held.bytes.subarray(at - held.base);
  if (b[0] !== 0x1f || b[1] !== 0x8b || b[2] !== 8 || (b[3] & 0xe0) !== 0) return null;
  const flags = b[3];
  let p = 10;
  if (flags & 4) {
    if (!(await need(p + 2))) return null;
    b = held.bytes.subarray(at - held.base);
    p += 2 + (b[p] | (b[p + 1] << 8));
  }
  for (const flag of [8, 16]) {
    if (!(flags & flag)) continue;
    for (;;) {
      if (!(await need(p + 1))) return null;
      b = held.bytes.subarray(at - held.base);
      if (b[p++] === 0) break;
      if (p > 1 << 20) return null; // a name past 1 MiB: let pako judge it
    }
  }
  if (flags & 2) {
    if (!(await need(p + 2))) return null;
    b = held.bytes.subarray(at - held.base);
    // A mismatch goes to pako, which names it.
    if ((crc32(0, b.subarray(0, p)) & 0xffff) !== (b[p] | (b[p + 1] << 8))) return null;
    p += 2;
  }
  return (await need(p)) ? at + p : null;
}

/**
 * The object's bytes from `base` on, held in one growing buffer: read ahead for the search, handed to the native
 * inflater as a slice, dropped once a member is done.
 */
class Lookahead {
  private buf = new Uint8Array(1 << 16);
  private used = 0;
  private readonly pieces: AsyncIterator<Uint8Array>;
  private handedOn = false;
  /** The input ended, or everything up to `end` is held. */
  exhausted = false;

  constructor(
    input: AsyncIterable<Uint8Array>,
    public base: number,
    readonly end: number,
    private readonly maxHeld: number,
  ) {
    this.pieces = input[Symbol.asyncIterator]();
  }

  get length(): number {
    return this.used;
  }

  get bytes(): Uint8Array {
    return this.buf.subarray(0, this.used);
  }

  /** Appends the next piece (cut at `limit`); sets `exhausted` at the input's end. */
  async fill(): Promise<void> {
    if (this.exhausted) return;
    if (this.base + this.used >= this.end) {
      this.exhausted = true;
      return;
    }
    const step = await this.pieces.next();
    if (step.done) {
      this.exhausted = true;
      return;
    }
    let piece = step.value;
    const room = this.end - (this.base + this.used);
    if (piece.length > room) piece = piece.subarray(0, room);
    if (this.used + piece.length > this.buf.length) {
      // Doubling, but not past what the search may hold (a member of maxMemberBytes and the piece that ends it).
      const grown = new Uint8Array(
        Math.max(Math.min(this.buf.length * 2, this.maxHeld), this.used + piece.length),
      );
      grown.set(this.bytes);
      this.buf = grown;
    }
    this.buf.set(piece, this.used);
    this.used += piece.length;
  }

  view(at: number, length: number): DataView {
    return new DataView(this.buf.buffer, this.buf.byteOffset + at - this.base, length);
  }

  /** A copy-free view of [from, to): valid until the next fill or drop. */
  slice(from: number, to: number): Uint8Array {
    return this.buf.subarray(from - this.base, to - this.base);
  }

  /** Forgets the bytes before `at`. */
  drop(at: number): void {
    const n = at - this.base;
    if (n <= 0) return;
    this.buf.copyWithin(0, n, this.used);
    this.used -= n;
    this.base = at;
  }

  /** The bytes from `from` (≥ base) on: what is held, then the rest of the input, which the caller now owns. */
  rest(from: number): AsyncIterable<Uint8Array> {
    const held = this.buf.subarray(from - this.base, this.used);
    const pieces = this.pieces;
    const exhausted = this.exhausted;
    this.handedOn = true;
    return {
      async *[Symbol.asyncIterator]() {
        try {
          if (held.length > 0) yield held;
          for (;;) {
            if (exhausted) return;
            const step = await pieces.next();
            if (step.done) return;
            yield step.value;
          }
        } finally {
          await pieces.return?.();
        }
      },
    };
  }

  async close(): Promise<void> {
    if (!this.handedOn) await this.pieces.return?.();
  }
}
