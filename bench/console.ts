/**
 * Web console benchmark: `node dist/bench/console.js [--quick]` (after `npm run build`; needs
 * Debian's `chromium`). The daemon as a child process (sqlite) with 10 000 models (1 000 with
 * `--quick`), the console opened in headless Chromium (playwright-core) on a fresh page per run:
 * - first paint (`first-contentful-paint`) and time to a usable list (the list's rows drawn from
 *   `GET /models`: the console's `list-usable` mark), both from navigation start;
 * - time until the change stream's own listing is in (`changes-synced`) and live;
 * - a jump to the end of the list (scroll to the last row and wait for it to be drawn);
 * - the page's transfer size: the console's own files, and the data (`GET /models`).
 * Medians over 5 runs (1 with `--quick`).
 */
import { join } from 'node:path';
import { performance as perf } from 'node:perf_hooks';
import { launch, noBrowser } from '../test/console/browser.js';
import { DaemonProcess, tempDir, writeJson } from '../test/daemon/harness.js';
import { median } from './stats.js';

const quick = process.argv.includes('--quick');
const MODELS = quick ? 1000 : 10_000;
const RUNS = quick ? 1 : 5;

async function seed(base: string, n: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const r = await fetch(`${base}/models?type=bench.Model${i % 17}`, {
        method: 'POST',
        body: `model ${i} `.padEnd(256, 'x'),
      });
      if (r.status !== 201) throw new Error(`seed: ${r.status} ${await r.text()}`);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}

interface Run {
  fcp: number;
  usable: number;
  synced: number;
  jump: number;
  assetBytes: number;
  assetFiles: number;
  dataBytes: number;
}

async function main(): Promise<void> {
  const why = noBrowser();
  if (why !== null) {
    process.stdout.write(`skipped: ${why}\n`);
    return;
  }
  const { dir, cleanup } = tempDir('aimm-console-bench-');
  const conf = writeJson(join(dir, 'conf.json'), {
    name: 'console-bench',
    backend: { module: 'aimm-store/backends/sqlite', path: join(dir, 'models.db') },
    control: [{ module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } }],
    log: { level: 'info' },
  });
  const daemon = new DaemonProcess(['serve', '--conf', conf]);
  const browser = await launch();
  try {
    await daemon.waitForMsg('ready');
    const base = `http://127.0.0.1:${await daemon.port('http')}`;
    const t0 = perf.now();
    await seed(base, MODELS);
    process.stdout.write(`seeded ${MODELS} models in ${((perf.now() - t0) / 1000).toFixed(1)} s\n`);
    const runs: Run[] = [];
    for (let i = 0; i < RUNS; i++) {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      await page.goto(`${base}/console/`);
      await page.waitForSelector('.list-view[data-ready="true"]');
      await page.waitForFunction("performance.getEntriesByName('changes-synced').length > 0");
      const m = await page.evaluate<Omit<Run, 'jump'>>(`(() => {
        const at = (n) => performance.getEntriesByName(n)[0]?.startTime ?? NaN;
        const res = performance.getEntriesByType('resource');
        const assets = res.filter((r) => new URL(r.name).pathname.startsWith('/console/'));
        const nav = performance.getEntriesByType('navigation')[0];
        const models = res.find((r) => new URL(r.name).pathname === '/models');
        return {
          fcp: at('first-contentful-paint'),
          usable: at('list-usable'),
          synced: at('changes-synced'),
          assetBytes: assets.reduce((s, r) => s + r.transferSize, 0) + (nav?.transferSize ?? 0),
          assetFiles: assets.length + 1,
          dataBytes: models?.transferSize ?? NaN,
        };
      })()`);
      const last = MODELS;
      const j0 = perf.now();
      await page.evaluate("document.querySelector('.viewport').scrollTop = 1e9");
      await page.waitForSelector(`.rows .row[data-id="${last}"]`);
      runs.push({ ...m, jump: perf.now() - j0 });
      await page.close();
    }
    const med = (k: keyof Run) => median(runs.map((r) => r[k]));
    const ms = (v: number) => `${v.toFixed(0)} ms`;
    process.stdout.write(
      [
        `console with ${MODELS} models, median of ${RUNS} page loads (headless Chromium, same machine):`,
        `  first contentful paint        ${ms(med('fcp'))}`,
        `  usable list (GET /models)     ${ms(med('usable'))}`,
        `  change stream synced (live)   ${ms(med('synced'))}`,
        `  jump to the last row          ${ms(med('jump'))}`,
        `  console files                 ${(med('assetBytes') / 1024).toFixed(1)} KiB in ${med('assetFiles')} requests (uncompressed)`,
        `  GET /models                   ${(med('dataBytes') / 1024).toFixed(0)} KiB`,
        '',
      ].join('\n'),
    );
  } finally {
    await browser.close();
    await daemon.stop();
    cleanup();
  }
}

await main();
