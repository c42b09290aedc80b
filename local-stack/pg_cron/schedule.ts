/**
 * pg_cron's schedules, parsed and evaluated for the local job runner (runner.ts); local-stack only, never deployed.
 *
 * What a schedule means (https://github.com/citusdata/pg_cron README; https://supabase.com/docs/guides/cron):
 * - five cron fields, minute 0-59, hour 0-23, day of month 1-31, month 1-12 (or jan-dec), day of week 0-7 (or
 *   sun-sat; 0 and 7 are both Sunday); each a comma list of `*`, a number or name, or a range a-b, where `*` and
 *   ranges may take a /step; evaluated in UTC (pg_cron's cron.timezone defaults to GMT, as on Supabase) at minute
 *   boundaries;
 * - day of month and day of week as crontab(5) combines them: when both are restricted (neither field starts
 *   with `*`) a day matches if EITHER does, otherwise both must (a stepped `*` counts as unrestricted);
 * - a range whose start is above its end (`5-3`) selects nothing, as in Vixie cron, on which pg_cron's parser is
 *   based: pg_cron accepts it (the stand-in's validator agrees) and such a job never runs;
 * - the @-macros: @yearly/@annually, @monthly, @weekly, @daily/@midnight, @hourly, and @reboot (run once when
 *   the scheduler starts);
 * - `N seconds` with N 1..59 (pg_cron 1.5+, Supabase's 17): an interval, not a clock position.
 *
 * Invariant: parseSchedule accepts exactly what the catalog stand-in's cron._schedule_valid accepts
 * (local-stack/pg17/pg_cron--1.6.sql), which is pg_cron's syntax minus the text pg_cron ignores and `$`;
 * schedule_test.ts checks both on the same inputs. Why not an npm cron library: croner 11 (the best kept one)
 * refuses `5-3` (pg_cron accepts it) and ORs a stepped `*` day of month with a restricted day of week
 * (crontab(5) ANDs them), so it would run pg_cron jobs on other days; the rules above fit in this file.
 */

export type Schedule =
  | { kind: "seconds"; seconds: number }
  | { kind: "reboot" }
  | { kind: "cron"; fields: CronFields };

export interface CronFields {
  minute: boolean[];
  hour: boolean[];
  dayOfMonth: boolean[];
  month: boolean[];
  dayOfWeek: boolean[];
  /** The day-of-month field starts with `*` (crontab(5): unrestricted). */
  dayOfMonthStar: boolean;
  /** The day-of-week field starts with `*`. */
  dayOfWeekStar: boolean;
}

const MACROS: Record<string, string> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

interface FieldSpec {
  lo: number;
  hi: number;
  names?: string[];
  nameBase?: number;
}
const SPECS: FieldSpec[] = [
  { lo: 0, hi: 59 },
  { lo: 0, hi: 23 },
  { lo: 1, hi: 31 },
  { lo: 1, hi: 12, names: MONTHS, nameBase: 1 },
  { lo: 0, hi: 7, names: WEEKDAYS, nameBase: 0 },
];

/** The schedule, or null when pg_cron (as the catalog stand-in checks it) would refuse it. */
export function parseSchedule(text: string): Schedule | null {
  const seconds = /^([1-9]|[1-5][0-9]) seconds$/.exec(text);
  if (seconds) return { kind: "seconds", seconds: Number(seconds[1]) };
  const trimmed = text.replace(/^[ \t]+|[ \t]+$/g, "");
  if (trimmed.startsWith("@")) {
    if (trimmed === "@reboot") return { kind: "reboot" };
    const expansion = MACROS[trimmed];
    return expansion === undefined ? null : parseSchedule(expansion);
  }
  const parts = trimmed.split(/[ \t]+/);
  if (parts.length !== 5) return null;
  const sets: boolean[][] = [];
  for (let i = 0; i < 5; i++) {
    const set = parseField(parts[i], SPECS[i]);
    if (set === null) return null;
    sets.push(set);
  }
  const dayOfWeek = sets[4];
  if (dayOfWeek[7]) dayOfWeek[0] = true;
  if (dayOfWeek[0]) dayOfWeek[7] = true;
  return {
    kind: "cron",
    fields: {
      minute: sets[0],
      hour: sets[1],
      dayOfMonth: sets[2],
      month: sets[3],
      dayOfWeek,
      dayOfMonthStar: parts[2].startsWith("*"),
      dayOfWeekStar: parts[4].startsWith("*"),
    },
  };
}

/** One field as the set of values it selects (index = value), or null when it is malformed. */
function parseField(field: string, spec: FieldSpec): boolean[] | null {
  if (field === "") return null;
  const set = new Array<boolean>(spec.hi + 1).fill(false);
  for (const item of field.split(",")) {
    const m = /^(?:(\*)|([0-9A-Za-z]+)(?:-([0-9A-Za-z]+))?)(?:\/([0-9]+))?$/.exec(item);
    if (!m) return null;
    const [, star, first, last, stepText] = m;
    // A step follows `*` or a range only (pg_cron refuses 5/10).
    if (stepText !== undefined && star === undefined && last === undefined) return null;
    let step = 1;
    if (stepText !== undefined) {
      if (stepText.length > 9 || Number(stepText) < 1) return null;
      step = Number(stepText);
    }
    let from = spec.lo;
    let to = spec.hi;
    if (star === undefined) {
      const a = fieldNumber(first, spec);
      if (a === null) return null;
      from = to = a;
      if (last !== undefined) {
        const b = fieldNumber(last, spec);
        if (b === null) return null;
        to = b;
      }
    }
    for (let v = from; v <= to; v += step) set[v] = true;
  }
  return set;
}

/** A number (digits) or a name (3 letters, any case) as the field's value; null when neither or out of range. */
function fieldNumber(token: string, spec: FieldSpec): number | null {
  let n: number;
  if (/^[0-9]+$/.test(token)) {
    if (token.replace(/^0+/, "").length > 9) return null;
    n = Number(token);
  } else if (spec.names) {
    const i = spec.names.indexOf(token.toLowerCase());
    if (i < 0) return null;
    n = spec.nameBase! + i;
  } else {
    return null;
  }
  return n >= spec.lo && n <= spec.hi ? n : null;
}

/** Whether a cron schedule is due in the UTC minute that contains `at`. */
export function cronDue(fields: CronFields, at: Date): boolean {
  if (!fields.minute[at.getUTCMinutes()] || !fields.hour[at.getUTCHours()]) return false;
  if (!fields.month[at.getUTCMonth() + 1]) return false;
  const dom = fields.dayOfMonth[at.getUTCDate()];
  const dow = fields.dayOfWeek[at.getUTCDay()];
  return fields.dayOfMonthStar || fields.dayOfWeekStar ? dom && dow : dom || dow;
}
