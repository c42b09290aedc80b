/**
 * The operator screen (web/operator.html, served by the local stack at /app/operator.html) in headless Chromium,
 * against the real stack, after imports this test runs itself:
 *
 * 1. Without a key the screen shows the key form and nothing of the pipeline; the upload page links to it.
 * 2. A wrong key is refused with a clear message, and still nothing is shown; the key is not kept.
 * 3. With the secret key: the health status, a queue depth, jobs by state, every job (the test's, found by object
 *    name, with the rows the database holds) and the throughput chart with a nonzero minute, checked against
 *    csv_import.throughput_series; the key is only in sessionStorage. A job that starts afterwards appears without
 *    reloading (the 5 s refresh).
 * 4. At 375 px nothing scrolls sideways; every input is labelled; every visible text has 4.5:1 contrast.
 * 5. Forgetting the key empties and hides the dashboard, also when a refresh's answer arrives after it (held back
 *    on purpose by request interception).
 *
 * Nothing passes or fails on time: every wait is for something the page or the database shows, with a generous
 * deadline. Screenshots go to .local/screenshots/web-operator/; docs/images/web-operator*.png are copies of one
 * run's.
 *
 * Needs: the stack (scripts/stack.sh up builds the page), Chromium (tests/support/browser.ts).
 */
// deno-lint-ignore-file no-explicit-any -- functions passed to page.evaluate run in the browser (no DOM types here).
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Page } from "puppeteer-core";
import { SECRET_KEY } from "../local-stack/keys.ts";
import {
  assertContrast,
  launchBrowser,
  pageWidth,
  screenshots,
  text,
  unlabelledInputs,
} from "./support/browser.ts";
import { writeCsv } from "./support/generate_csv.ts";
import {
  connect,
  E2E,
  type JobRow,
  Scope,
  SUPABASE_URL,
  upload,
  waitFor,
  waitForJob,
} from "./support/stack.ts";

/** The browser's document and storage, inside page.evaluate callbacks only. */
declare const document: any;
declare const sessionStorage: any;
declare const localStorage: any;

const OPERATOR_URL = `${SUPABASE_URL}/app/operator.html`;
/** Generous: the machine is slow and shared; nothing below passes or fails on time, only on what happens. */
const STEP_TIMEOUT = 240_000;

/** What the screen shows: whether the dashboard is visible, its numbers, jobs and the chart's busy minutes. */
function view(page: Page) {
  return page.evaluate(() => {
    const all = (s: string): any[] => [...document.querySelectorAll(s)];
    const cells = (row: any) =>
      Object.fromEntries([...row.children].map((c: any) => [c.className.split(" ")[0], c.textContent]));
    return {
      dashboardHidden: document.querySelector("#dashboard").hidden,
      formHidden: document.querySelector("#key-section").hidden,
      error: document.querySelector("#operator-error").textContent,
      health: document.querySelector("#health-status").textContent,
      problems: all("#problems li").map((li) => li.textContent),
      queue: Object.fromEntries(all("#queue dd").map((dd) => [dd.dataset.field, dd.textContent])),
      states: Object.fromEntries(all("#job-states dd").map((dd) => [dd.dataset.state, dd.textContent])),
      // state: the job's status as stored (data-status); status: the words the page shows.
      jobs: all("#jobs tbody tr").map((row) => ({
        ...cells(row),
        object: row.dataset.object,
        state: row.dataset.status,
      })),
      bars: all("#chart g[data-minute]").map((g) => ({
        minute: g.dataset.minute,
        loaded: Number(g.dataset.loaded),
      })),
      busy: all("#series-table tbody tr").map((row) => ({
        minute: row.dataset.minute,
        loaded: Number(row.children[1].textContent.replace(/,/g, "")),
      })),
      summary: document.querySelector("#chart-summary").textContent,
      chartLabel: document.querySelector("#chart").getAttribute("aria-labelledby"),
      pipelineText: document.querySelector("#dashboard").textContent,
    };
  });
}

async function enterKey(page: Page, key: string): Promise<void> {
  await page.type("#operator-key", key);
  await page.keyboard.press("Enter");
}

Deno.test({
  name: "web operator screen: key form, wrong key, jobs, queue, chart, in headless Chromium",
  ...E2E,
}, async (t) => {
  const sql = connect();
  const scope = new Scope(sql, "webop");
  const screenshot = await screenshots("web-operator");
  const browser = await launchBrowser();
  try {
    // Two imports through the pipeline (service uploads: no owner), one with rejects; a third later. Each file has
    // a table of its own (the generated files repeat their ids).
    const dir = await scope.tempDir();
    const objects = [scope.object("first.csv"), scope.object("second.csv"), scope.object("later.csv")];
    for (const object of objects) {
      const targetTable = await scope.table("webop");
      await scope.profile({ hasHeader: true, pathPattern: object, targetTable, toleratedRejectRate: 0.5 });
    }
    const jobs: JobRow[] = [];
    for (const [i, object] of objects.slice(0, 2).entries()) {
      const path = join(dir, `${i}.csv`);
      await writeCsv(path, { rows: 3000, seed: 40 + i, badEvery: i === 0 ? 1000 : undefined });
      await upload(object, { path });
    }
    for (const object of objects.slice(0, 2)) jobs.push(await waitForJob(sql, object, STEP_TIMEOUT));
    assert.deepEqual(jobs.map((j) => j.status), ["succeeded_with_rejects", "succeeded"]);

    const context = await browser.createBrowserContext();
    const page = await context.newPage();
    await page.setViewport({ width: 1100, height: 1000 });
    page.on("pageerror", (error) => console.error(`page error: ${(error as Error).message}`));

    await t.step("without a key: only the key form; the upload page links here", async () => {
      await page.goto(`${SUPABASE_URL}/app/`, { waitUntil: "load" });
      await Promise.all([
        page.waitForNavigation({ waitUntil: "load" }),
        page.click('a[href="operator.html"]'),
      ]);
      assert.equal(page.url(), OPERATOR_URL);
      const v = await view(page);
      assert.equal(v.dashboardHidden, true);
      assert.equal(v.formHidden, false);
      assert.equal(v.jobs.length, 0);
      assert.equal(v.bars.length, 0);
      assert.doesNotMatch(v.pipelineText, /first\.csv|second\.csv/);
      assert.deepEqual(await unlabelledInputs(page), []);
      assert.equal(await page.$eval("#operator-key", (e: any) => e.type), "password");
      assert.match(await text(page, "#key-form .hint"), /only in this tab's session storage/);
      // Keyboard: the key field takes focus and Enter submits (used below).
      await page.focus("#operator-key");
      assert.equal(await page.evaluate(() => document.activeElement?.id), "operator-key");
      await assertContrast(page);
      await screenshot(page, "key-form");
    });

    await t.step("a wrong key: a clear message, nothing shown, the key not kept", async () => {
      await enterKey(page, "sb_secret_not-the-key");
      await page.waitForFunction(() => document.querySelector("#operator-error").textContent !== "", {
        timeout: STEP_TIMEOUT,
      });
      const v = await view(page);
      assert.match(v.error, /^The key was refused: .*service role key or a secret key.*Nothing is shown\.$/);
      assert.equal(await page.$eval("#operator-error", (e: any) => e.getAttribute("role")), "alert");
      assert.equal(v.dashboardHidden, true);
      assert.equal(v.jobs.length, 0);
      assert.equal(await page.evaluate(() => sessionStorage.length), 0, "a refused key is forgotten");
      await assertContrast(page);
      await screenshot(page, "wrong-key");
    });

    await t.step("the secret key: health, queue, jobs by state, every job, the chart", async () => {
      await enterKey(page, SECRET_KEY);
      const v = await waitFor("the test's jobs on the screen", async () => {
        const v = await view(page);
        const shown = objects.slice(0, 2).every((o) => v.jobs.some((j) => j.object === o));
        return !v.dashboardHidden && shown && v.busy.length > 0 ? v : undefined;
      }, STEP_TIMEOUT);
      assert.equal(v.error, "");
      assert.ok(["Healthy", "Degraded", "Unhealthy"].includes(v.health), v.health);
      assert.ok(v.problems.length >= 1, "problems, or 'No problems.'");
      for (const field of ["depth", "pending", "in_flight", "expired_leases"]) {
        assert.match(v.queue[field], /^\d[\d,]*$/, `queue ${field}: ${v.queue[field]}`);
      }
      assert.match(v.states.succeeded, /^\d[\d,]*$/);
      assert.ok(
        Number(v.states.succeeded_with_rejects.replace(/,/g, "")) >= 1,
        v.states.succeeded_with_rejects,
      );
      // The test's jobs as the database holds them.
      for (const job of jobs) {
        const row = v.jobs.find((j) => j.object === job.object_name)!;
        assert.equal(row.id, String(job.id));
        assert.equal(row.state, job.status);
        assert.equal(row.percent, "100 %");
        assert.equal(row.loaded, job.rows_loaded.toLocaleString("en-US"));
        assert.equal(row.rejected, job.rows_rejected.toLocaleString("en-US"));
        assert.equal(row.owner, "–", "a service upload has no owner");
      }
      const ids = v.jobs.map((j) => Number(j.id));
      assert.deepEqual(ids, [...ids].sort((a, b) => b - a), "newest first");
      // The chart: 60 minutes, a nonzero one, each busy minute's rows at most what the database counts for it now
      // (a minute's count only grows), and the database's hour holds the test's rows.
      assert.equal(v.bars.length, 60);
      assert.ok(v.bars.some((b) => b.loaded > 0), "a bar above zero");
      assert.equal(v.chartLabel, "chart-title chart-summary", "the chart's text alternative");
      assert.match(
        v.summary,
        /^[\d,]+ rows loaded and [\d,]+ rejected in the last 60 minutes; busiest minute/,
      );
      const series = await sql<{ minute: Date; rows_loaded: string }[]>`
        select minute, rows_loaded from csv_import.throughput_series(60)`;
      const db = new Map(series.map((s) => [s.minute.toISOString(), Number(s.rows_loaded)]));
      for (const minute of v.busy) {
        assert.ok(minute.loaded <= (db.get(minute.minute) ?? 0), `${minute.minute}: page ${minute.loaded}`);
      }
      const dbTotal = series.reduce((n, s) => n + Number(s.rows_loaded), 0);
      assert.ok(
        dbTotal >= jobs[0].rows_loaded + jobs[1].rows_loaded,
        `the last hour in the database: ${dbTotal}`,
      );
      // The key: in this tab's sessionStorage only.
      assert.equal(
        await page.evaluate((k: string) => Object.values(sessionStorage).includes(k), SECRET_KEY),
        true,
      );
      assert.equal(
        await page.evaluate((k: string) => JSON.stringify(localStorage).includes(k), SECRET_KEY),
        false,
      );
      assert.equal(await page.$eval("#operator-key", (e: any) => e.value), "", "the field is cleared");
      await assertContrast(page);
      await screenshot(page, "dashboard");
    });

    await t.step("a job that starts later appears without reloading (refresh every 5 s)", async () => {
      const path = join(dir, "later.csv");
      await writeCsv(path, { rows: 500, seed: 44 });
      await upload(objects[2], { path });
      const job = await waitForJob(sql, objects[2], STEP_TIMEOUT);
      await waitFor("the later job, done, on the screen", async () => {
        const row = (await view(page)).jobs.find((j) => j.object === objects[2]);
        return row?.state === job.status ? row : undefined;
      }, STEP_TIMEOUT);
    });

    await t.step("on a phone-sized screen nothing scrolls sideways; a reload keeps the key", async () => {
      await page.setViewport({ width: 375, height: 812, isMobile: true });
      await page.reload({ waitUntil: "load" });
      await waitFor("the dashboard after a reload", async () => {
        const v = await view(page);
        return !v.dashboardHidden && v.jobs.length > 0 ? v : undefined;
      }, STEP_TIMEOUT);
      const width = await pageWidth(page);
      assert.ok(width <= 375, `page width on a 375 px screen: ${width}`);
      await assertContrast(page);
      await screenshot(page, "phone");
    });

    await t.step("forgetting the key hides everything, even with a refresh in flight", async () => {
      await page.setViewport({ width: 1100, height: 800 });
      // Hold the next refresh's /jobs answer, forget the key meanwhile, then let the answer through: the
      // refresh it belonged to must not bring the jobs (or the dashboard) back (web/src/operator.ts).
      const held = Promise.withResolvers<any>();
      let holding = true;
      const intercept = (request: any) => {
        if (request.isInterceptResolutionHandled()) return;
        if (holding && request.url().includes("/csv-import-health/jobs")) {
          holding = false;
          held.resolve(request);
        } else void request.continue();
      };
      page.on("request", intercept);
      await page.setRequestInterception(true);
      const jobsRequest = await held.promise; // the next 5-s refresh asked for the jobs
      await page.click("#forget-key");
      await page.waitForFunction(() => document.querySelector("#dashboard").hidden, {
        timeout: STEP_TIMEOUT,
      });
      const finished = Promise.withResolvers<void>();
      const onFinished = (r: any) => {
        if (r === jobsRequest || r.url() === jobsRequest.url()) finished.resolve();
      };
      page.on("requestfinished", onFinished);
      await jobsRequest.continue();
      await finished.promise; // the browser has the whole answer
      // The page reads it and the refresh that asked for it goes on within a few turns of its event loop; 100 ms
      // of them is ample (a slower page could only make this step pass without having checked).
      await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 100)));
      const after = await view(page);
      assert.equal(after.dashboardHidden, true, "the dashboard stays hidden after the held answer arrived");
      assert.equal(after.jobs.length, 0, "no job is shown after the held answer arrived");
      assert.equal(await page.evaluate(() => sessionStorage.length), 0);
      page.off("requestfinished", onFinished);
      page.off("request", intercept);
      await page.setRequestInterception(false);
    });
    await context.close();
  } finally {
    await browser.close().catch(() => {});
    await scope.dispose();
    await sql.end();
  }
});
