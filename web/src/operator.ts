/**
 * The operator screen (operator.html): with the project's service role key or a secret key, pasted by the
 * operator, it shows the pipeline's health and its problems, the queue, jobs by state, throughput per minute over
 * the last hour as a chart, and every job; refreshed every 5 s. Everything comes from the health function
 * (csv-import-health: the health document, /jobs, /series), which accepts only the service key.
 *
 * Invariants:
 * - The key lives only in this tab's sessionStorage (and the password field): never in config.json, never in
 *   localStorage, never in a URL. It is sent to the health function only, as `apikey` and as Bearer (equal
 *   values, which the hosted gateway accepts for sb_secret_ keys too).
 * - Nothing of the pipeline is on screen unless the last answer accepted the key: a refused key (401) empties
 *   and hides the dashboard, forgets the key and says why.
 * - Refreshes never overlap: the next one is scheduled when the previous one ended. A refresh started while one
 *   is in flight (the key entered or forgotten) supersedes it: the older one's answer is dropped, so a forgotten
 *   key's data never comes back on screen.
 * - Text from the database (object names, problems, errors) is set as text, never as HTML.
 */
import { ApiError, type Config, loadConfig } from "./api.ts";
import { bytes, count, statusText } from "./format.ts";
import {
  busyMinutes,
  chartBars,
  clockTime,
  dateTime,
  type Health,
  healthText,
  type JobOverview,
  type SeriesPoint,
  seriesSummary,
} from "./operator_format.ts";

const REFRESH_MS = 5000;
const KEY_STORAGE = "csv-import-operator-key";
const CHART = { width: 600, height: 180, top: 14 };
const SVG_NS = "http://www.w3.org/2000/svg";

const $ = <T extends Element = HTMLElement>(selector: string): T => {
  const element = document.querySelector<T>(selector);
  if (!element) throw new Error(`missing element ${selector}`);
  return element;
};
const errorBox = $("#operator-error");
const dashboard = $("#dashboard");
const forget = $<HTMLButtonElement>("#forget-key");

const config: Config = await loadConfig().catch((error) => {
  errorBox.textContent = `The page has no configuration (config.json): ${error.message}`;
  throw error;
});
let timer: number | undefined;
/** Counts refreshes: an answer is shown only if no refresh started after the one that asked for it. */
let refreshes = 0;

/** GET one of the health function's routes with the key; 503 is an answer too (the health document, unhealthy). */
async function call<T>(key: string, path: string): Promise<T> {
  const response = await fetch(`${config.supabaseUrl}/functions/v1/csv-import-health${path}`, {
    headers: { apikey: key, authorization: `Bearer ${key}` },
    cache: "no-store",
  });
  const text = await response.text();
  let body: { message?: string } | null = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { message: text };
  }
  if (!response.ok && response.status !== 503) {
    throw new ApiError(response.status, body?.message ?? `HTTP ${response.status}`);
  }
  return body as T;
}

function hideDashboard(): void {
  dashboard.hidden = true;
  for (const selector of ["#problems", "#job-states", "#chart", "#series-table tbody", "#jobs tbody"]) {
    $(selector).replaceChildren();
  }
}

async function refresh(): Promise<void> {
  clearTimeout(timer);
  const mine = ++refreshes;
  const key = sessionStorage.getItem(KEY_STORAGE);
  forget.hidden = key === null;
  if (!key) {
    hideDashboard();
    return;
  }
  try {
    const [health, { jobs }, { series }] = await Promise.all([
      call<Health>(key, ""),
      call<{ jobs: JobOverview[] }>(key, "/jobs?limit=100"),
      call<{ series: SeriesPoint[] }>(key, "/series?minutes=60"),
    ]);
    if (mine !== refreshes) return; // superseded (the key was forgotten or replaced meanwhile)
    errorBox.textContent = "";
    showHealth(health);
    showChart(series);
    showJobs(jobs);
    $("#updated").textContent = `Updated ${new Date().toLocaleTimeString()}; refreshes every 5 s.`;
    dashboard.hidden = false;
  } catch (error) {
    if (mine !== refreshes) return;
    if (error instanceof ApiError && error.status === 401) {
      sessionStorage.removeItem(KEY_STORAGE);
      forget.hidden = true;
      hideDashboard();
      errorBox.textContent =
        "The key was refused: the health function accepts only this project's service role " +
        "key or a secret key (sb_secret_…). Nothing is shown.";
      return;
    }
    // Anything else (the network, the database): say so and keep what was shown; try again at the next tick.
    errorBox.textContent = `Could not refresh: ${(error as Error).message}`;
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

function showHealth(health: Health): void {
  const status = $("#health-status");
  status.textContent = healthText(health.status);
  status.className = `health-${health.status}`;
  const problems = health.problems.map((p) => {
    const item = document.createElement("li");
    item.textContent = p;
    return item;
  });
  if (problems.length === 0) {
    const none = document.createElement("li");
    none.textContent = "No problems.";
    problems.push(none);
  }
  $("#problems").replaceChildren(...problems);
  for (const dd of document.querySelectorAll<HTMLElement>("#queue dd")) {
    dd.textContent = count(health.queue[dd.dataset.field as keyof Health["queue"]]);
  }
  $("#job-states").replaceChildren(
    ...Object.entries(health.jobs.by_state).flatMap(([state, n]) => {
      const dt = document.createElement("dt");
      dt.textContent = statusText(state);
      const dd = document.createElement("dd");
      dd.textContent = count(n);
      dd.dataset.state = state;
      return [dt, dd];
    }),
  );
}

function svg(name: string, attributes: Record<string, string | number>, text?: string): SVGElement {
  const element = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attributes)) element.setAttribute(k, String(v));
  if (text !== undefined) element.textContent = text;
  return element;
}

function showChart(series: SeriesPoint[]): void {
  const plotHeight = CHART.height - CHART.top - 20;
  const { bars, max } = chartBars(series, CHART.width, plotHeight);
  const y0 = CHART.top + plotHeight;
  const parts: SVGElement[] = [
    svg("line", { x1: 0, x2: CHART.width, y1: y0, y2: y0, class: "axis" }),
    svg("text", { x: 2, y: 11, class: "label" }, `${count(max)} rows/min`),
  ];
  for (const bar of bars) {
    const group = svg("g", {
      "data-minute": bar.minute,
      "data-loaded": bar.loaded,
      "data-rejected": bar.rejected,
    });
    group.append(
      svg("rect", { x: bar.x, width: bar.width, y: CHART.top + bar.y, height: bar.height, class: "loaded" }),
      svg("rect", {
        x: bar.x,
        width: bar.width,
        y: CHART.top + bar.rejectedY,
        height: bar.rejectedHeight,
        class: "rejected",
      }),
    );
    parts.push(group);
  }
  if (series.length > 0) {
    parts.push(
      svg("text", { x: 2, y: CHART.height - 4, class: "label" }, clockTime(series[0].minute)),
      svg(
        "text",
        { x: CHART.width - 2, y: CHART.height - 4, class: "label", "text-anchor": "end" },
        clockTime(series.at(-1)!.minute),
      ),
    );
  }
  $("#chart").replaceChildren(...parts);
  $("#chart-summary").textContent = seriesSummary(series);
  $("#series-table tbody").replaceChildren(
    ...busyMinutes(series).map((p) => {
      const row = document.createElement("tr");
      row.dataset.minute = p.minute;
      for (
        const value of [clockTime(p.minute), count(p.rows_loaded), count(p.rows_rejected), bytes(p.bytes)]
      ) {
        const cell = document.createElement("td");
        cell.textContent = value;
        row.append(cell);
      }
      return row;
    }),
  );
}

function showJobs(jobs: JobOverview[]): void {
  $("#jobs-status").textContent = jobs.length === 0 ? "No jobs yet." : `The ${jobs.length} newest jobs.`;
  $("#jobs tbody").replaceChildren(...jobs.map((job) => {
    const row = document.createElement("tr");
    row.dataset.object = job.object;
    row.dataset.status = job.status;
    const cells: [string, string, string?][] = [
      [String(job.job_id), "id"],
      [job.object, "object"],
      [
        job.owner_id ? `${job.owner_id.slice(0, 8)}…` : "–",
        "owner",
        job.owner_id ?? "no owner (service upload)",
      ],
      [statusText(job.status), `status status-${job.status}`, job.error ?? undefined],
      [`${Math.floor(job.percent)} %`, "percent"],
      [count(job.rows_loaded), "loaded"],
      [count(job.rows_rejected), "rejected"],
      [dateTime(job.created_at), "created"],
    ];
    for (const [text, className, title] of cells) {
      const cell = document.createElement("td");
      cell.textContent = text;
      cell.className = className;
      if (title) cell.title = title;
      row.append(cell);
    }
    return row;
  }));
}

$("#key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $<HTMLInputElement>("#operator-key");
  const key = input.value.trim();
  if (!key) {
    errorBox.textContent = "Paste the project's service role key or a secret key first.";
    return;
  }
  input.value = "";
  sessionStorage.setItem(KEY_STORAGE, key);
  errorBox.textContent = "";
  void refresh();
});

forget.addEventListener("click", () => {
  sessionStorage.removeItem(KEY_STORAGE);
  errorBox.textContent = "";
  void refresh();
});

void refresh();
