// What the browser tests share: Debian's Chromium, headless, driven by playwright-core
// (bot/web/node_modules), and a customer's moves on the rasa-webchat widget's page.
//   CHROMIUM     the browser (default /usr/bin/chromium)
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../bot/web/package.json', import.meta.url));
const { chromium } = require('playwright-core');

export const REPLY_TIMEOUT = 120_000; // a knowledge answer on a busy 2-core CPU takes a while

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // Without the background-networking flags Chromium hangs on a network without internet.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A page in a fresh browser context (its own localStorage: a new customer); its dialogs
 * (dismissed) and uncaught page errors are collected in `seen`. */
export async function newVisitor(browser, seen = { dialogs: [], pageErrors: [] }) {
  const visitor = await (await browser.newContext({ viewport: { width: 1000, height: 800 } }))
    .newPage();
  visitor.on('dialog', async (dialog) => { seen.dialogs.push(dialog.message()); await dialog.dismiss(); });
  visitor.on('pageerror', (error) => seen.pageErrors.push(String(error)));
  return visitor;
}

/** Opens the page at `url` and the widget on it. */
export async function openWidget(page, url) {
  await page.goto(url);
  await page.locator('.rw-launcher').click({ timeout: 30_000 });
  await page.locator('.rw-new-message').waitFor({ timeout: 30_000 });
}

export const botMessages = (page) => page.locator('.rw-response .rw-message-text');
export const userMessages = (page) => page.locator('.rw-client .rw-message-text');

/** Waits for a bot message after the first `from` that matches `expected`; returns them all. */
export async function botSays(page, expected, from) {
  await page.waitForFunction(
    ([source, flags, n]) => [...document.querySelectorAll('.rw-response .rw-message-text')]
      .slice(n).some((message) => new RegExp(source, flags).test(message.innerText)),
    [expected.source, expected.flags, from], { timeout: REPLY_TIMEOUT });
  return (await botMessages(page).allInnerTexts()).slice(from);
}

/** Types `text` into the widget, sends it, and waits for a reply matching `expected`. */
export async function say(page, text, expected) {
  const from = await botMessages(page).count();
  await page.locator('.rw-new-message').fill(text);
  await page.locator('.rw-new-message').press('Enter');
  return botSays(page, expected, from);
}

/** The conversation id the widget keeps in localStorage. */
export const sessionId = (page) => page.evaluate(
  () => JSON.parse(localStorage.getItem('chat_session') || '{}').session_id);
