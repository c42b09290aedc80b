/**
 * The upload page (web/, served by the local stack at /app/) driven in headless Chromium (Debian's package,
 * /usr/bin/chromium, through puppeteer-core; no browser is downloaded), end to end against the real stack:
 *
 * 1. User A signs in through the page's form (the local Auth stand-in), uploads a ~20 MB CSV with planted bad
 *    rows through the file input over TUS while its connection is cut once mid-upload (A's page is loaded
 *    through a TCP proxy, support/cut_proxy.ts, that drops the connection 2 MB into the second PATCH, so the
 *    page must ask the server for the stored offset and resume from there), sees the upload bar and then
 *    the import bar reach 100 %, the exact reject lines in the reject table, downloads the rejects CSV through
 *    the page's link (its content checked against the database), and cancels a second import (whose reads the
 *    Storage stand-in holds, so it cannot finish before the click: no timing decides the outcome).
 * 2. User B signs in and sees none of A's imports; an anonymous page sees nothing and is told to sign in.
 * 3. The page on a phone-sized screen (375 px) has no horizontal scrolling; every input has a label.
 *
 * Assertions are on what the page shows (text, progress values) and on the database. Screenshots of each state
 * go to .local/screenshots/web-app/ (git-ignored); docs/images/web-*.png are copies of one run's.
 *
 * Needs: the stack (scripts/stack.sh up builds the page through install.sh), Chromium at CHROMIUM_PATH
 * (default /usr/bin/chromium; scripts/install.sh installs it).
 */
// deno-lint-ignore-file no-explicit-any -- functions passed to page.evaluate run in the browser; this file is
// type-checked with Deno's types, which have no DOM, so the page's elements are typed `any` there.
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Browser, Page } from "puppeteer-core";
import { assertContrast, launchBrowser, screenshots, text, unlabelledInputs } from "./support/browser.ts";
import { startCutProxy } from "./support/cut_proxy.ts";
import { createUser } from "./support/users.ts";
import { DUPLICATE_ID, type Manifest, writeCsv } from "./support/generate_csv.ts";
import { uploadRetryText } from "../web/src/format.ts";
import {
  BUCKET,
  clearStorageFaults,
  connect,
  E2E,
  insertSentinel,
  Scope,
  setStorageFaults,
  type Sql,
  SUPABASE_URL,
  unique,
  waitFor,
} from "./support/stack.ts";

/** The browser's document, inside page.evaluate callbacks only. */
declare const document: any;
const APP_URL = `${SUPABASE_URL}/app/`;
let screenshot: Awaited<ReturnType<typeof screenshots>>;
/** Generous: the machine is slow and shared; nothing below passes or fails on time, only on what happens. */
const STEP_TIMEOUT = 240_000;
/** ~20 MB: 150,000 generated rows (~135 bytes each), a planted bad row after every 15,000 good ones. */
const ROWS = 150_000;
const BAD_EVERY = 15_000;

async function signIn(
  page: Page,
  email: string,
  password: string,
  appUrl = APP_URL,
): Promise<void> {
  await page.goto(appUrl, { waitUntil: "load" });
  await page.waitForSelector("#sign-in:not([hidden])", {
    timeout: STEP_TIMEOUT,
  });
  await page.type("#email", email);
  await page.type("#password", password);
  await page.click("#sign-in-form button[type=submit]");
  await page.waitForSelector("#upload:not([hidden])", {
    timeout: STEP_TIMEOUT,
  });
  assert.equal(await text(page, "#who"), `Signed in as ${email}`);
}

/** What a card shows: both bars' values and texts, the import state, the reject rows. */
interface CardView {
  uploadValue: number;
  uploadText: string;
  uploadState: string;
  uploadRetries: string | null;
  importHidden: boolean;
  importValue: number;
  importText: string;
  importState: string;
  status: string | null;
  cancelVisible: boolean;
  rejects: { line: string; column: string; reason: string; raw: string }[];
  rejectsTitle: string;
  download: { href: string; download: string } | null;
  error: string;
}

function cardView(page: Page, file: string): Promise<CardView | null> {
  return page.evaluate((file) => {
    const card = ([...document.querySelectorAll(".card")] as any[]).find((c) => c.dataset.file === file);
    if (!card) return null;
    const q = (s: string): any => card.querySelector(s);
    const link = q(".rejects-download");
    return {
      uploadValue: q(".upload-bar").value,
      uploadText: q(".upload-text").textContent ?? "",
      uploadState: q(".upload-state").textContent ?? "",
      uploadRetries: card.dataset.uploadRetries ?? null,
      importHidden: q(".import-part").hidden,
      importValue: q(".import-bar").value,
      importText: q(".import-text").textContent ?? "",
      importState: q(".import-state").textContent ?? "",
      status: card.dataset.status ?? null,
      cancelVisible: !q(".cancel").hidden,
      rejects: ([...card.querySelectorAll(".rejects tbody tr")] as any[]).map(
        (row) => {
          const cell = (c: string) => row.querySelector(`.${c}`)?.textContent ?? "";
          return {
            line: cell("line"),
            column: cell("column"),
            reason: cell("reason"),
            raw: cell("raw"),
          };
        },
      ),
      rejectsTitle: q(".rejects-title").textContent ?? "",
      download: link.hidden ? null : { href: link.href, download: link.download },
      error: q(".card-error").textContent ?? "",
    };
  }, file);
}

/** Polls the card until `done` holds; records every value the upload bar showed on the way. */
async function watchCard(
  page: Page,
  file: string,
  done: (view: CardView) => boolean,
  seen: number[] = [],
): Promise<CardView> {
  const deadline = Date.now() + STEP_TIMEOUT;
  while (true) {
    const view = await cardView(page, file);
    if (view) {
      if (seen.at(-1) !== view.uploadValue) seen.push(view.uploadValue);
      if (done(view)) return view;
      if (view.error && /failed|could not/i.test(view.error)) {
        throw new Error(`${file}: the page shows an error: ${view.error}`);
      }
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${file}: gave up waiting; the card shows ${JSON.stringify(view)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function historyObjects(page: Page): Promise<string[]> {
  return await page.$$eval(
    "#imports tbody tr",
    (rows) => rows.map((row) => row.children[0].textContent ?? ""),
  );
}

interface World {
  sql: Sql;
  scope: Scope;
  browser: Browser;
  users: Record<"a" | "b", { id: string; email: string; password: string }>;
  table: string;
  csvPath: string;
  manifest: Manifest;
  slowPath: string;
}

async function setUp(sql: Sql, scope: Scope, browser: Browser): Promise<World> {
  const users = {
    a: {
      id: "",
      email: `${unique("web_a")}@example.com`,
      password: "pass-A-123456",
    },
    b: {
      id: "",
      email: `${unique("web_b")}@example.com`,
      password: "pass-B-123456",
    },
  };
  for (const user of Object.values(users)) {
    user.id = await createUser(user.email, user.password);
  }

  const table = await scope.table("web");
  await insertSentinel(sql, table, DUPLICATE_ID);
  // The page uploads to web/<user id>/<file name> (the stack's config.json); A's files map to the table.
  await scope.profile({
    hasHeader: true,
    pathPattern: `web/${users.a.id}/orders%`,
    targetTable: table,
    toleratedRejectRate: 0.5,
  });
  await scope.profile({
    hasHeader: true,
    pathPattern: `web/${users.a.id}/slow%`,
    targetTable: table,
  });
  // The application's upload rule, as a project using the page writes it: each user under web/<own id>/.
  // The application's upload rule: each user uploads into their own folder.
  await scope.userFolderUploads("web");
  for (const file of ["orders.csv", "slow-orders.csv", "orders.csv.gz"]) {
    scope.objects.push(
      `web/${users.a.id}/${file}`,
      `web/${users.a.id}/${file}.rejects.csv`,
    );
  }

  const dir = await scope.tempDir();
  const csvPath = join(dir, "orders.csv");
  const manifest = await writeCsv(csvPath, {
    rows: ROWS,
    seed: 17,
    badEvery: BAD_EVERY,
  });
  assert.ok(
    manifest.bytes > 18_000_000 && manifest.bytes < 24_000_000,
    `~20 MB: ${manifest.bytes} bytes`,
  );
  assert.ok(
    manifest.planted.length >= 5,
    `planted bad rows: ${manifest.planted.length}`,
  );
  const slowPath = join(dir, "slow-orders.csv");
  await writeCsv(slowPath, { rows: 2000, seed: 18 });
  return { sql, scope, browser, users, table, csvPath, manifest, slowPath };
}

Deno.test(
  {
    name: "web app: upload, import, rejects, cancel, per-user lists, in headless Chromium",
    ...E2E,
  },
  async (t) => {
    const sql = connect();
    const scope = new Scope(sql, "web");
    screenshot = await screenshots("web-app");
    const browser = await launchBrowser();
    try {
      const w = await setUp(sql, scope, browser);
      const { users, manifest } = w;
      const objectA = `web/${users.a.id}/orders.csv`;
      const slowObject = `web/${users.a.id}/slow-orders.csv`;

      // A anonymous page first: it shows the sign-in form and no import, and is told why.
      await t.step("an anonymous page sees nothing", async () => {
        const context = await browser.createBrowserContext();
        const page = await context.newPage();
        await page.setViewport({ width: 1000, height: 800 });
        await page.goto(APP_URL, { waitUntil: "load" });
        await page.waitForFunction(
          () =>
            document.querySelector("#history-status")?.textContent ===
              "Sign in to see your imports.",
          { timeout: STEP_TIMEOUT },
        );
        assert.deepEqual(await historyObjects(page), []);
        assert.equal(await page.$eval("#sign-in", (e: any) => e.hidden), false);
        assert.equal(await page.$eval("#upload", (e: any) => e.hidden), true);
        // Accessible: every input has a label; a wrong password is announced.
        assert.deepEqual(await unlabelledInputs(page), []);
        // Contrast: every visible text on the page at least 4.5:1 against what is behind it (WCAG AA).
        await assertContrast(page);
        await page.type("#email", users.a.email);
        await page.type("#password", "not the password");
        await page.click("#sign-in-form button[type=submit]");
        await page.waitForFunction(
          () => document.querySelector("#sign-in-error")?.textContent !== "",
          {
            timeout: STEP_TIMEOUT,
          },
        );
        assert.match(
          await text(page, "#sign-in-error"),
          /^Sign-in failed: Invalid login credentials/,
        );
        assert.equal(
          await page.$eval("#sign-in-error", (e) => e.getAttribute("role")),
          "alert",
        );
        await screenshot(page, "sign-in");
        await context.close();
      });

      const context = await browser.createBrowserContext();
      const page = await context.newPage();
      await page.setViewport({ width: 1000, height: 900 });
      page.on(
        "pageerror",
        (error) => console.error(`page error: ${(error as Error).message}`),
      );

      // A's page goes through the proxy that cuts one upload connection (all of the page's requests do: the
      // stack's config.json names the origin the page was loaded from).
      const gateway = new URL(SUPABASE_URL);
      const proxy = startCutProxy({ hostname: gateway.hostname, port: Number(gateway.port) });
      scope.defer(() => Promise.resolve(proxy.close()));

      await t.step("user A signs in", async () => {
        await signIn(page, users.a.email, users.a.password, `${proxy.url}/app/`);
        await page.waitForFunction(
          () => document.querySelector("#history-status")?.textContent !== "",
          {
            timeout: STEP_TIMEOUT,
          },
        );
        assert.deepEqual(
          await historyObjects(page),
          [],
          "a new user has no imports",
        );
        await screenshot(page, "signed-in");
      });

      await t.step(
        "A uploads ~20 MB over TUS, the connection cut once; the upload bar reaches 100 %",
        async () => {
          // The connection drops once mid-upload: 2 MB into the second PATCH (bytes 12–18 MB of ~20);
          // tus-js-client asks the gateway for the offset it stored and resumes from there.
          proxy.arm(2, 2 * 1024 * 1024);
          const input = await page.$("#file-input");
          assert.ok(input, "the file input");
          // The file input is the keyboard route to the drop zone: it can take focus.
          await page.focus("#file-input");
          assert.equal(
            await page.evaluate(() => document.activeElement?.id),
            "file-input",
          );
          await (input as unknown as {
            uploadFile(path: string): Promise<void>;
          }).uploadFile(w.csvPath);
          const seen: number[] = [];
          const retried = await watchCard(
            page,
            "orders.csv",
            (v) => v.uploadRetries !== null,
            seen,
          );
          await screenshot(page, "upload-resuming");
          const uploaded = await watchCard(
            page,
            "orders.csv",
            (v) => v.uploadState.startsWith("Uploaded"),
            seen,
          );
          assert.deepEqual(proxy.cuts(), { count: 1, forwardedBytes: 2 * 1024 * 1024 }, "one connection cut");
          // One dropped connection (status 0). Under load the resumed request can then meet HTTP 409 (seen: the
          // offset it asked for moved on before its PATCH) or 423 (the cut request's lock still held): those are
          // retried too, and the card names them apart.
          assert.ok(
            retried.uploadRetries?.startsWith("0"),
            `the first retry follows the cut: ${retried.uploadRetries}`,
          );
          assert.ok(uploaded.uploadRetries, "the card records the retried requests");
          const statuses = uploaded.uploadRetries.split(",").map(Number);
          assert.equal(
            statuses.filter((status) => status === 0).length,
            1,
            `retried: ${uploaded.uploadRetries}`,
          );
          assert.ok(
            statuses.every((status) => [0, 409, 423].includes(status)),
            `retried: ${uploaded.uploadRetries}`,
          );
          assert.equal(uploaded.uploadValue, 100);
          assert.equal(uploaded.uploadText, "100 %");
          assert.equal(uploaded.uploadState, `Uploaded (resumed after ${uploadRetryText(statuses)})`);
          assert.ok(uploaded.uploadState.startsWith("Uploaded (resumed after 1 dropped connection"));
          for (let i = 1; i < seen.length; i++) {
            assert.ok(
              seen[i] >= seen[i - 1],
              `the upload bar never goes back: ${seen.join(", ")}`,
            );
          }
          // The object is whole: Storage has exactly the file's bytes.
          const [object] = await sql<{ size: string; owner_id: string }[]>`
        select (metadata ->> 'size') as size, owner_id from storage.objects
        where bucket_id = ${BUCKET} and name = ${objectA}`;
          assert.equal(Number(object?.size), manifest.bytes);
          assert.equal(object.owner_id, users.a.id);
        },
      );

      await t.step(
        "the import bar reaches 100 % and the reject table shows the exact lines",
        async () => {
          const running = await watchCard(
            page,
            "orders.csv",
            (v) => !v.importHidden && v.status !== null,
          );
          assert.ok(running.importValue >= 0 && running.importValue <= 100);
          await screenshot(page, "importing");
          const done = await watchCard(
            page,
            "orders.csv",
            (v) =>
              v.status === "succeeded_with_rejects" && v.rejects.length > 0 &&
              v.download !== null,
          );
          assert.equal(done.importValue, 100);
          assert.equal(done.importText, "100 %");
          assert.equal(done.importState, "Done, with rejected rows");
          assert.equal(done.cancelVisible, false);
          const lines = manifest.planted.map((p) => String(p.line));
          assert.deepEqual(
            done.rejects.map((r) => r.line),
            lines,
            "the reject table lists exactly the planted lines",
          );
          assert.equal(
            done.rejectsTitle,
            `Rejected rows (${manifest.planted.length})`,
          );

          // The database agrees with the page.
          const [job] = await sql<
            {
              id: string;
              status: string;
              owner_id: string;
              rows_loaded: string;
              rows_rejected: string;
            }[]
          >`select id, status, owner_id, rows_loaded, rows_rejected from csv_import.jobs
        where object_name = ${objectA} order by id desc limit 1`;
          assert.equal(job.status, "succeeded_with_rejects");
          assert.equal(job.owner_id, users.a.id);
          assert.equal(Number(job.rows_loaded), manifest.goodRows);
          assert.equal(Number(job.rows_rejected), manifest.planted.length);
          const [{ count }] = await sql.unsafe(
            `select count(*)::int as count from ${w.table}`,
          );
          assert.equal(
            count,
            manifest.goodRows + 1,
            "every good row plus the sentinel",
          );
          const rejects = await sql<
            {
              line_number: string;
              column_name: string | null;
              reason: string;
              raw: string;
            }[]
          >`
        select line_number, column_name, reason, raw_record as raw from csv_import.rejects
        where job_id = ${job.id} order by line_number`;
          assert.deepEqual(
            done.rejects,
            rejects.map((r) => ({
              line: String(r.line_number),
              column: r.column_name ?? "",
              reason: r.reason,
              raw: r.raw ?? "",
            })),
            "each reject's line, column, reason and raw text as stored",
          );
          await screenshot(page, "import-done-rejects");
          await assertContrast(page);

          // The download link: a signed URL of the rejects CSV (another origin than the page's here, as on any
          // hosted setup). Clicked; the browser saves the file, which is then read.
          assert.equal(done.download!.download, "orders.csv.rejects.csv");
          const downloads = await scope.tempDir();
          const cdp = await browser.target().createCDPSession();
          await cdp.send("Browser.setDownloadBehavior", {
            behavior: "allow",
            downloadPath: downloads,
            browserContextId: context.id,
          });
          await page.click('.card[data-file="orders.csv"] .rejects-download');
          const saved = join(downloads, "orders.csv.rejects.csv");
          const csv = await waitFor(
            "the rejects CSV to be downloaded",
            () => Deno.readTextFile(saved).catch(() => undefined),
            STEP_TIMEOUT,
          );
          await cdp.detach();
          const csvLines = csv.trimEnd().split("\r\n");
          assert.equal(csvLines[0], "line_number,column,reason,raw_record");
          assert.equal(csvLines.length, 1 + rejects.length, csv.slice(0, 500));
          for (const [i, reject] of rejects.entries()) {
            assert.ok(
              csvLines[i + 1].startsWith(`"${reject.line_number}",`),
              `rejects CSV line ${i + 1}: ${csvLines[i + 1]}`,
            );
          }
        },
      );

      await t.step("A cancels a second import while it runs", async () => {
        // The second file's reads are held by the Storage stand-in until the test lets go, so the import cannot
        // finish before the click (the outcome never depends on how fast the machine is).
        await setStorageFaults({
          kind: "hang",
          every: 1,
          bucket: BUCKET,
          prefix: slowObject,
          hang_ms: 120_000,
        });
        try {
          const input = await page.$("#file-input");
          await (input as unknown as {
            uploadFile(path: string): Promise<void>;
          }).uploadFile(w.slowPath);
          await watchCard(page, "slow-orders.csv", (v) => v.cancelVisible);
          await screenshot(page, "cancel-offered");
          await page.evaluate(() => {
            const card = ([...document.querySelectorAll(".card")] as any[])
              .find((c) => c.dataset.file === "slow-orders.csv");
            card.querySelector(".cancel").click();
          });
          const cancelled = await watchCard(
            page,
            "slow-orders.csv",
            (v) => v.status === "cancelled",
          );
          assert.equal(cancelled.importState, "Cancelled");
          assert.equal(cancelled.cancelVisible, false);
          const [job] = await sql<{ status: string }[]>`
          select status from csv_import.jobs where object_name = ${slowObject} order by id desc limit 1`;
          assert.equal(job.status, "cancelled");
          await screenshot(page, "cancelled");
        } finally {
          await clearStorageFaults();
        }
      });

      await t.step("A's past imports list both, newest first", async () => {
        await page.reload({ waitUntil: "load" });
        await waitFor(
          "A's two imports in the list",
          async () => (await historyObjects(page)).length === 2 || undefined,
          STEP_TIMEOUT,
        );
        assert.deepEqual(await historyObjects(page), [slowObject, objectA]);
        await screenshot(page, "past-imports");
      });

      await t.step(
        "on a phone-sized screen nothing scrolls sideways",
        async () => {
          await page.setViewport({ width: 375, height: 812, isMobile: true });
          await page.reload({ waitUntil: "load" });
          await waitFor(
            "the list on a phone",
            async () => (await historyObjects(page)).length === 2 || undefined,
            STEP_TIMEOUT,
          );
          const width = await page.evaluate(() => document.documentElement.scrollWidth);
          const wide = await page.evaluate(() =>
            ([...document.querySelectorAll("body *")] as any[])
              // The outermost elements that reach past the screen's edge.
              .filter((e) =>
                e.getBoundingClientRect().right > 376 && e.parentElement.getBoundingClientRect().right <= 376
              )
              .slice(0, 8).map((e) => `${e.tagName.toLowerCase()}.${e.className}#${e.id}`)
          );
          assert.ok(
            width <= 375,
            `page width on a 375 px screen: ${width}; wider: ${wide.join(", ")}`,
          );
          await screenshot(page, "phone");
        },
      );

      await t.step("user B sees none of A's imports", async () => {
        const contextB = await browser.createBrowserContext();
        const pageB = await contextB.newPage();
        await pageB.setViewport({ width: 1000, height: 800 });
        await signIn(pageB, users.b.email, users.b.password);
        await pageB.waitForFunction(
          () =>
            document.querySelector("#history-status")?.textContent ===
              "No imports yet.",
          {
            timeout: STEP_TIMEOUT,
          },
        );
        assert.deepEqual(await historyObjects(pageB), []);
        // B's token at the API: no import of A's, and A's import itself is not found.
        const [{ id }] = await sql<{ id: string }[]>`
        select id from csv_import.jobs where object_name = ${objectA} order by id desc limit 1`;
        const status = await pageB.evaluate(async (id) => {
          const key = Object.keys(localStorage).find((k) => k.endsWith("-auth-token"))!;
          const token = JSON.parse(localStorage.getItem(key)!).access_token;
          const config = await (await fetch("config.json")).json();
          const response = await fetch(
            `${config.supabaseUrl}/functions/v1/csv-import-api/imports/${id}`,
            {
              headers: {
                authorization: `Bearer ${token}`,
                apikey: config.publishableKey,
              },
            },
          );
          await response.body?.cancel();
          return response.status;
        }, Number(id));
        assert.equal(status, 404, "B asking for A's import by id");
        await screenshot(pageB, "user-b");
        await contextB.close();
      });

      await t.step("A uploads the same rows gzipped: the same import, the same rejected lines", async () => {
        await page.setViewport({ width: 1000, height: 800 });
        await sql.unsafe(`truncate ${w.table}`);
        await insertSentinel(sql, w.table, DUPLICATE_ID);
        const gzPath = `${w.csvPath}.gz`;
        const gz = await new Deno.Command("gzip", { args: ["-6", "-k", w.csvPath] }).output();
        assert.ok(gz.success, new TextDecoder().decode(gz.stderr));
        const input = await page.$("#file-input");
        await (input as unknown as { uploadFile(path: string): Promise<void> }).uploadFile(gzPath);
        const done = await watchCard(
          page,
          "orders.csv.gz",
          (v) => v.status === "succeeded_with_rejects" && v.rejects.length > 0,
        );
        assert.equal(done.importValue, 100);
        assert.deepEqual(
          done.rejects.map((r) => r.line),
          manifest.planted.map((p) => String(p.line)),
          "the reject table lists the planted lines of the decompressed text",
        );
        const [job] = await sql<{ rows_loaded: string; compression: string }[]>`
          select rows_loaded, compression ->> 'codec' as compression from csv_import.jobs
          where object_name = ${objectA + ".gz"} order by id desc limit 1`;
        assert.equal(job.compression, "gzip");
        assert.equal(Number(job.rows_loaded), manifest.goodRows);
        await screenshot(page, "gzip-done");
      });
      await context.close();
    } finally {
      await browser.close().catch(() => {});
      await scope.dispose();
      await sql.end();
    }
  },
);
