// A headless Chromium for the browser tests: a fresh profile in a temporary folder, the
// dashboard's users' locale and time zone, and the console errors and page errors the page
// raised (`problems`), less those `ignored` says are expected.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function browserContext(chromium, {
  executablePath, timeout, name, acceptDownloads = false, ignored = () => false,
}) {
  const dir = mkdtempSync(join(tmpdir(), `aqs-${name}-`));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath,
    headless: true,
    acceptDownloads,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1440, height: 900 },
    locale: 'zh-CN',
    timezoneId: 'Asia/Shanghai',
  });
  context.setDefaultTimeout(timeout);
  const page = context.pages()[0] ?? await context.newPage();
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !ignored(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  const close = async () => {
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { context, page, problems, close };
}
