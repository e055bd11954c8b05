// The customer web widget in a real browser (widget_page.mjs: headless Chromium driven by
// playwright-core). Needs a running assistant; bot/testing.py starts one and runs
// `node --test tests/browser/` with
//   WIDGET_URL   the demo page, e.g. http://localhost:5005/webhooks/widget/chat
//   CHROMIUM     the browser (default /usr/bin/chromium)
//   RASA_AUTH_TOKEN  the Rasa HTTP API's token
//   SHOP_PORT    port of the "another origin" shop page, an origin the server allows (CORS)
// The tests share one page and run in order: one conversation, as a customer would have it.
// Screenshots: artifacts/browser/*.png.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import * as widget from './widget_page.mjs';

const PAGE_URL = process.env.WIDGET_URL;
const SHOTS = fileURLToPath(new URL('../../artifacts/browser/', import.meta.url));
const XSS = '<img src=x onerror=alert(1)>';
const SCRIPT = '<script>window.__pwned = true; alert(2)</script>';

let browser, page;
const seen = { dialogs: [], pageErrors: [] };
const { dialogs, pageErrors } = seen;

before(async () => {
  assert.ok(PAGE_URL, 'set WIDGET_URL to the widget page');
  mkdirSync(SHOTS, { recursive: true });
  browser = await widget.launchBrowser();
  page = await newVisitor();
});

after(async () => { await browser?.close(); });

const newVisitor = () => widget.newVisitor(browser, seen);
const shot = (name) => page.screenshot({ path: `${SHOTS}${name}.png` });
const userMessages = () => widget.userMessages(page);
const botMessages = () => widget.botMessages(page);
const botSays = (expected, from) => widget.botSays(page, expected, from);
const say = (text, expected) => widget.say(page, text, expected);
const sessionId = () => widget.sessionId(page);

test('the page loads and the widget opens', async () => {
  await widget.openWidget(page, PAGE_URL);
  assert.equal(await page.locator('.rw-title').innerText(), 'Threadline support');
});

test('a message gets the assistant\'s reply', async () => {
  await say('hi', /Threadline/);
  await shot('01-reply');
});

test('HTML in a user message is shown as text, never run', async () => {
  await say(XSS, /./);
  assert.equal(await userMessages().last().innerText(), XSS);
  assert.equal(await page.locator('img[src="x"]').count(), 0);
  assert.deepEqual(dialogs, []);
  await shot('02-html-as-text');
});

test('a <script> in a user message is shown as text, never run', async () => {
  await say(SCRIPT, /./);
  assert.equal(await userMessages().last().innerText(), SCRIPT);
  assert.equal(await page.locator('.rw-client script').count(), 0);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.deepEqual(dialogs, []);
});

test('after a reload the history is shown and the conversation goes on', async () => {
  const session = await sessionId();
  const history = await userMessages().allInnerTexts();
  await page.reload();
  await page.locator('.rw-new-message').waitFor({ timeout: 30_000 }); // the widget stays open
  assert.equal(await sessionId(), session);
  assert.deepEqual(await userMessages().allInnerTexts(), history);
  assert.equal(await page.locator('img[src="x"]').count(), 0);
  // A reply after the reload means the new socket joined the session's room again.
  await say('where is my order?', /order/i);
  assert.deepEqual(dialogs, []);
  await shot('03-after-reload');
});

test('a product answer shows its sources as links', async () => {
  const replies = await say('Are the Hiking Boots waterproof?', /Sources:/);
  // the answer keeps its citation marks (Markdown would take "[1]" for a reference link)
  assert.match(replies.filter((r) => !r.startsWith('Sources:')).join('\n'), /\[\d+\]/);
  const link = page.locator('.rw-response a[href="https://shop.threadline.example/p/TL-HIKE-01"]');
  assert.equal(await link.last().innerText(), 'Hiking Boots');
  assert.equal(await link.last().getAttribute('target'), '_blank');
  await shot('04-sources');
});

test('a reply with buttons can be answered by clicking one', async () => {
  // a new visitor: the conversation above is still inside the order-status form
  page = await newVisitor();
  await widget.openWidget(page, PAGE_URL);
  await say("I'd like to leave some feedback about my last delivery",
    /support team|human colleague/);
  const no = page.locator('.rw-replies .rw-reply', { hasText: 'No, thanks' });
  await no.last().waitFor({ timeout: widget.REPLY_TIMEOUT });
  assert.equal(await page.locator('.rw-replies .rw-reply', { hasText: 'Yes, please' }).count(), 1);
  await shot('05-buttons');
  const from = await botMessages().count();
  await no.last().click();
  await botSays(/anything else/i, from);
  assert.equal(await userMessages().last().innerText(), 'No, thanks');
});

test('messages the server sends on its own reach the widget (output_channel=latest)', async () => {
  const from = await botMessages().count();
  // Rasa's HTTP API with its token, called from the page (same origin), as a shop's back
  // end would; without the token it refuses.
  const execute = (session, token) => page.evaluate(async ([id, key]) => (await fetch(
    `/conversations/${id}/execute?output_channel=latest${key ? `&token=${key}` : ''}`,
    { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'utter_greet' }) })).status, [session, token]);
  assert.equal(await execute(await sessionId(), ''), 401);
  assert.equal(await execute(await sessionId(), process.env.RASA_AUTH_TOKEN), 200);
  await botSays(/Threadline/, from);
  assert.deepEqual(pageErrors, []);
  await shot('06-pushed');
});

test('the README snippet works on a page of another origin', async () => {
  const snippet = `<script src="${new URL('/webhooks/widget/embed.js', PAGE_URL)}"></script>`;
  const shop = createServer((_, response) => {
    response.writeHead(200, { 'Content-Type': 'text/html' });
    response.end(`<!doctype html><title>Another shop</title><h1>Another shop</h1>${snippet}`);
  });
  await new Promise((resolve) => shop.listen(Number(process.env.SHOP_PORT), '127.0.0.1', resolve));
  try {
    page = await page.context().newPage();
    await page.goto(`http://127.0.0.1:${shop.address().port}/`);
    await page.locator('.rw-launcher').click({ timeout: 30_000 });
    await say('hello', /Threadline/);
    await shot('07-other-origin');
  } finally {
    shop.close();
  }
});
