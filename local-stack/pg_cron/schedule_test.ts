/**
 * The job runner's schedule parser (schedule.ts): table-driven cases of pg_cron's rules (README syntax; crontab(5)'s
 * day-of-month / day-of-week rule), then the same inputs as the catalog stand-in's validator
 * (cron._schedule_valid in local-stack/pg17/pg_cron--1.6.sql): the parser must accept exactly what the stand-in
 * accepts, so every job cron.schedule records is one the runner can run. The differential part needs a server
 * with the stand-in (a 17 stack, the default, or a 15 stack's other-major phase, scripts/other_major.sh);
 * elsewhere it is ignored.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { fuzzSchedules, SAME, SECONDS, STRICTER } from "../../tests/support/cron_schedules.ts";
import { cronDue, type CronFields, parseSchedule } from "./schedule.ts";
import { isCatalogStandIn } from "./runner.ts";

function cron(text: string): CronFields {
  const s = parseSchedule(text);
  assert.ok(s && s.kind === "cron", `${JSON.stringify(text)} is a cron schedule`);
  return s.fields;
}

/** The UTC minutes of [from, from + days) at which the schedule is due, as ISO strings (first `limit`). */
function dueTimes(text: string, from: string, days: number, limit = 5): string[] {
  const fields = cron(text);
  const out: string[] = [];
  const start = Date.parse(from);
  for (let t = start; t < start + days * 86_400_000 && out.length < limit; t += 60_000) {
    if (cronDue(fields, new Date(t))) out.push(new Date(t).toISOString().slice(0, 16));
  }
  return out;
}

// 2026-12-03 is a Thursday; 2026-12-06 a Sunday; 2026-12-07 a Monday.
const CASES: [string, string, number, string[]][] = [
  ["* * * * *", "2026-12-03T10:00:00Z", 1, [
    "2026-12-03T10:00",
    "2026-12-03T10:01",
    "2026-12-03T10:02",
    "2026-12-03T10:03",
    "2026-12-03T10:04",
  ]],
  ["*/20 9-10 * * *", "2026-12-03T00:00:00Z", 1, [
    "2026-12-03T09:00",
    "2026-12-03T09:20",
    "2026-12-03T09:40",
    "2026-12-03T10:00",
    "2026-12-03T10:20",
  ]],
  [
    "17 * * * *",
    "2026-12-03T00:00:00Z",
    1,
    ["2026-12-03T00:17", "2026-12-03T01:17", "2026-12-03T02:17"].concat(
      ["2026-12-03T03:17", "2026-12-03T04:17"],
    ),
  ],
  // Both day fields restricted: either matches (crontab(5)): the 5th, and every Monday.
  ["0 0 5 * mon", "2026-12-01T00:00:00Z", 14, ["2026-12-05T00:00", "2026-12-07T00:00", "2026-12-14T00:00"]],
  // Day of month starts with `*` (a step included): both must match: odd days that are Mondays.
  ["0 0 */2 * 1", "2026-12-01T00:00:00Z", 45, ["2026-12-07T00:00", "2026-12-21T00:00", "2027-01-11T00:00"]],
  ["0 0 * * 1", "2026-12-01T00:00:00Z", 14, ["2026-12-07T00:00", "2026-12-14T00:00"]],
  // 7 and 0 are Sunday; names in any case; ranges of names.
  ["0 12 * * 7", "2026-12-01T00:00:00Z", 7, ["2026-12-06T12:00"]],
  ["0 12 * * SUN", "2026-12-01T00:00:00Z", 7, ["2026-12-06T12:00"]],
  ["0 12 * DEC sat,SUN", "2026-11-25T00:00:00Z", 12, ["2026-12-05T12:00", "2026-12-06T12:00"]],
  ["0 12 * * mon-FRI", "2026-12-04T00:00:00Z", 4, ["2026-12-04T12:00", "2026-12-07T12:00"]],
  ["30 6 1 jan,jul *", "2026-12-01T00:00:00Z", 390, ["2027-01-01T06:30", "2027-07-01T06:30"]],
  // A reversed range selects nothing (Vixie cron's loop), so the job never runs.
  ["5-3 * * * *", "2026-12-03T00:00:00Z", 1, []],
  ["0 12 * * sat-sun", "2026-12-01T00:00:00Z", 14, []],
  ["0 0 31 2 *", "2026-01-01T00:00:00Z", 366, []],
  [
    "@hourly",
    "2026-12-03T00:30:00Z",
    1,
    ["2026-12-03T01:00", "2026-12-03T02:00", "2026-12-03T03:00"].concat(
      ["2026-12-03T04:00", "2026-12-03T05:00"],
    ),
  ],
  ["@weekly", "2026-12-01T00:00:00Z", 14, ["2026-12-06T00:00", "2026-12-13T00:00"]],
  ["@monthly", "2026-12-15T00:00:00Z", 40, ["2027-01-01T00:00"]],
  ["  0 0 * * *\t", "2026-12-03T00:00:00Z", 2, ["2026-12-03T00:00", "2026-12-04T00:00"]],
];

for (const [schedule, from, days, expected] of CASES) {
  Deno.test(`schedule ${JSON.stringify(schedule)} is due at ${expected.length ? expected.join(", ") : "no time"}`, () => {
    assert.deepEqual(dueTimes(schedule, from, days), expected);
  });
}

Deno.test("`N seconds` is an interval of 1..59 s; @reboot; refused text is null", () => {
  assert.deepEqual(parseSchedule("10 seconds"), { kind: "seconds", seconds: 10 });
  assert.deepEqual(parseSchedule("1 seconds"), { kind: "seconds", seconds: 1 });
  assert.deepEqual(parseSchedule("@reboot"), { kind: "reboot" });
  for (
    const bad of ["60 seconds", "0 seconds", "10 second", "* * * 13 *", "5/10 * * * *", "* * $ * *", "@every"]
  ) {
    assert.equal(parseSchedule(bad), null, bad);
  }
});

const STANDIN_URL = Deno.env.get("SUPABASE_DB_URL") ?? "";
/** The stand-in's validator is not granted to postgres: ask as the bootstrap superuser (loopback is trust). */
function adminUrl(): string {
  const url = new URL(STANDIN_URL);
  url.username = "supabase_admin";
  return url.toString();
}

async function standInReachable(): Promise<boolean> {
  if (STANDIN_URL === "") return false;
  const sql = postgres(adminUrl(), { max: 1, onnotice: () => {}, connect_timeout: 3 });
  try {
    if (!(await isCatalogStandIn(sql))) return false;
    const [{ ok }] = await sql`select to_regprocedure('cron._schedule_valid(text)') is not null as ok`;
    return ok as boolean;
  } catch {
    return false;
  } finally {
    await sql.end();
  }
}

Deno.test({
  name:
    "the parser accepts exactly what the catalog stand-in's validator accepts (samples and 3,000 seeded " +
    "random schedules)",
  ignore: !(await standInReachable()),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const extra = ["5-3 * * * *", "* * * * 7-0", "0 0 */2 * 1", "@reboot", "* * * * *", "0-59/60 * * * *"];
    const inputs = [
      ...new Set([
        ...SAME,
        ...SECONDS,
        ...STRICTER,
        ...extra,
        ...fuzzSchedules(1500, 13),
        ...fuzzSchedules(1500, 2026),
      ]),
    ];
    const sql = postgres(adminUrl(), { max: 1, onnotice: () => {} });
    try {
      const rows = await sql`select cron._schedule_valid(s) as ok
        from unnest(${inputs}::text[]) with ordinality as t(s, i) order by i`;
      const mismatches = inputs.flatMap((input, i) =>
        (parseSchedule(input) !== null) === rows[i].ok
          ? []
          : [`${JSON.stringify(input)}: stand-in ${rows[i].ok}`]
      );
      assert.deepEqual(mismatches, []);
      const accepted = rows.filter((r) => r.ok).length;
      assert.ok(accepted > 100 && accepted < inputs.length - 100, `${accepted} of ${inputs.length} accepted`);
    } finally {
      await sql.end();
    }
  },
});
