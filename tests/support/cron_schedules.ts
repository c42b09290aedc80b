/**
 * Schedule inputs shared by the pg_cron stand-in's differential tests (tests/conformance/database_pg_cron17_test.ts:
 * the catalog stand-in against the real pg_cron 1.4) and the local job runner's parser tests
 * (local-stack/pg_cron/schedule_test.ts: the runner's parser against the stand-in's validator).
 */

/**
 * A seeded generator of cron-like schedules: per field mostly in-range numbers and `*`, sometimes out-of-range
 * numbers, names (valid and not), junk, ranges, steps, lists; four or five fields (the text pg_cron ignores after
 * a field or the fifth field is covered by STRICTER).
 */
export function fuzzSchedules(count: number, seed: number): string[] {
  let s = seed >>> 0;
  const rnd = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(a: T[]) => a[Math.floor(rnd() * a.length)];
  const names = ["jan", "JAN", "Feb", "dec", "sun", "SAT", "mon", "thu", "foo", "00", "007"];
  const junk = ["L", "?", "$", "W", "#", ""];
  const steps = ["0", "1", "2", "5", "15", "60", "100", "x", "*", ""];
  const fields: [number, number][] = [[0, 59], [0, 23], [1, 31], [1, 12], [0, 7]];
  const atom = ([lo, hi]: [number, number]) => {
    const r = rnd();
    if (r < 0.03) return pick(junk);
    if (r < 0.3) return "*";
    if (r < 0.85) return String(lo + Math.floor(rnd() * (hi - lo + 1)));
    if (r < 0.92) return String(pick([lo - 1, hi + 1, 60, 99]));
    return pick(names);
  };
  const field = (range: [number, number]) => {
    const parts: string[] = [];
    for (let i = 0, n = 1 + Math.floor(rnd() * 2); i < n; i++) {
      let a = atom(range);
      // Not `*-n`: pg_cron ignores the `-n` (a known, stricter difference, tested above).
      if (a !== "*" && rnd() < 0.3) a += "-" + atom(range);
      if (rnd() < 0.25) a += "/" + pick(steps);
      parts.push(a);
    }
    return parts.join(",");
  };
  const out = new Set<string>();
  while (out.size < count) {
    out.add(fields.slice(0, rnd() < 0.1 ? 4 : 5).map(field).join(" "));
  }
  return [...out];
}

// Inputs both must treat alike: pg_cron's README syntax, its limits, names, macros, blanks, and malformed input.
export const SAME = [
  "* * * * *",
  "*/5 * * * *",
  "0 0 1 1 *",
  "0 0 31 2 *",
  "5-3 * * * *",
  "* * * * 7",
  "* * * * 8",
  "* * * jan-dec mon-fri",
  "* * * *",
  "  * * * * *",
  "* * * * *  ",
  "*\t*\t*\t*\t*",
  "@daily",
  "@hourly",
  "@reboot",
  "@yearly",
  "@annually",
  "@monthly",
  "@weekly",
  "@midnight",
  "@every",
  "@DAILY",
  " @daily",
  "@daily ",
  "5/10 * * * *",
  "*/0 * * * *",
  "*/60 * * * *",
  "*/100 * * * *",
  "0-59/1 * * * *",
  "1,2,3 * * * *",
  "1,,2 * * * *",
  ",1 * * * *",
  "1, * * * *",
  "* * $ * *",
  "* * L * *",
  "* * ? * *",
  "- * * * *",
  "/5 * * * *",
  "*/ * * * *",
  "1-/5 * * * *",
  "1- * * * *",
  "99999999999 * * * *",
  "0000000001 * * * *",
  "jan * * * *",
  "* * * 0 *",
  "* * * 13 *",
  "* * 0 * *",
  "* 24 * * *",
  "sun-sat * * * *",
  "* * * * sun-sat",
  "* * * * 0-7",
  "* * * * 7-0",
  "* * * janu *",
  "* * * January *",
  "* * * * monday",
  "",
  "   ",
  "*",
  "1,2-5/2,*/3 0-23/6 1-31/7 1-12/3 0-6/2",
  "0 seconds",
  "60 seconds",
  "10 second",
  "10 secs",
  "10seconds",
  "010 seconds",
  "-1 seconds",
  "1.5 seconds",
  "10 seconds * * * *",
];
// pg_cron 1.5+ (the stand-in's version, Supabase's 17) accepts these; 1.4 refuses them.
export const SECONDS = ["1 seconds", "10 seconds", "59 seconds"];
// Real pg_cron accepts these by ignoring text; the stand-in refuses them (stricter).
export const STRICTER = [
  "* * * * * *",
  "0 12 * * MON#2",
  "1-2-3 * * * *",
  "*-5 * * * *",
  "*/5/2 * * * *",
  "5-10/2/3 * * * *",
  "1 2 3 4 5 6 7",
  "* * * * * command here",
];
