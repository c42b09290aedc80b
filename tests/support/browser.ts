/**
 * What the browser tests of the web app (tests/web_app_test.ts: the upload page; tests/web_operator_test.ts: the
 * operator screen) share: launching Debian's Chromium headless through puppeteer-core, numbered screenshots into
 * .local/screenshots/<name>/, reading an element's text, and measuring every visible text's contrast.
 *
 * Invariants:
 * - No browser is downloaded: CHROMIUM_PATH, default /usr/bin/chromium (scripts/install.sh installs it).
 * - A screenshot folder is emptied when its writer is created, so it holds exactly one run's screenshots, numbered
 *   in the order they were taken.
 */
// deno-lint-ignore-file no-explicit-any -- functions passed to page.evaluate run in the browser; this file is
// type-checked with Deno's types, which have no DOM, so the page's elements are typed `any` there.
import assert from "node:assert/strict";
import { join } from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";

/** The browser's document, inside page.evaluate callbacks only. */
declare const document: any;
/** The browser's getComputedStyle, inside page.evaluate callbacks only. */
declare const getComputedStyle: (element: any) => any;

export const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";

export function launchBrowser(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // As root (CI) Chromium's sandbox cannot start; the page is this project's own.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

/** A screenshot writer into .local/screenshots/<folder>/ (emptied first): NN-<name>.png, numbered in order. */
export async function screenshots(folder: string): Promise<(page: Page, name: string) => Promise<void>> {
  const dir = join(
    Deno.env.get("STATE_DIR") ?? new URL("../../.local", import.meta.url).pathname,
    "screenshots",
    folder,
  );
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  let shot = 0;
  return async (page, name) => {
    await Deno.mkdir(dir, { recursive: true });
    shot++;
    await page.screenshot({
      path: join(dir, `${String(shot).padStart(2, "0")}-${name}.png`) as `${string}.png`,
    });
  };
}

export const text = (page: Page, selector: string) =>
  page.$eval(selector, (element) => (element.textContent ?? "").trim());

/** sRGB relative luminance (WCAG 2). */
function luminance([r, g, b]: number[]): number {
  const channel = (c: number) => {
    const v = c / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
}

/** Each visible element's own text with its colour's contrast ratio against the nearest opaque background. */
export async function textContrasts(page: Page): Promise<{ text: string; ratio: number }[]> {
  const samples: { text: string; color: string; background: string }[] = await page.evaluate(() => {
    const opaque = (c: string) => c !== "rgba(0, 0, 0, 0)" && c !== "transparent";
    return ([...document.querySelectorAll("body *")] as any[])
      .filter((e) =>
        e.getClientRects().length > 0 &&
        [...e.childNodes].some((n: any) => n.nodeType === 3 && n.textContent.trim() !== "")
      )
      .map((e) => {
        let back = e;
        while (back && !opaque(getComputedStyle(back).backgroundColor)) back = back.parentElement;
        return {
          text: e.textContent.trim().slice(0, 40),
          color: getComputedStyle(e).color,
          background: back ? getComputedStyle(back).backgroundColor : "rgb(255, 255, 255)",
        };
      });
  });
  const rgb = (c: string) => (c.match(/\d+(\.\d+)?/g) ?? []).slice(0, 3).map(Number);
  assert.ok(samples.length >= 5, `texts whose contrast was measured: ${samples.length}`);
  return samples.map(({ text, color, background }) => {
    const [a, b] = [luminance(rgb(color)), luminance(rgb(background))].sort((x, y) => y - x);
    return { text, ratio: (a + 0.05) / (b + 0.05) };
  });
}

/** Asserts every visible text has at least 4.5:1 contrast against what is behind it (WCAG AA). */
export async function assertContrast(page: Page): Promise<void> {
  for (const { text, ratio } of await textContrasts(page)) {
    assert.ok(ratio >= 4.5, `contrast ${ratio.toFixed(2)}:1 of "${text}"`);
  }
}

/** The ids of inputs (other than file inputs) without a label. */
export function unlabelledInputs(page: Page): Promise<string[]> {
  return page.$$eval(
    "input:not([type=file])",
    (inputs: any[]) => inputs.filter((i) => i.labels?.length === 0).map((i) => i.id),
  );
}

/** The page's width on a phone-sized screen (the test asserts it is at most the screen's). */
export function pageWidth(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth);
}
