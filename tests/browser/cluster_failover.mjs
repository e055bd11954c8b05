// A customer in a real browser chats through the cluster (`bot cluster up`: nginx in front
// of the replicas) while the replica serving them is killed. Run by
// tests/cluster/test_cluster.py, which talks to this script on stdin/stdout:
//   this script                                  the test
//   {"session": "<id>"} after the first reply →  kills the replica holding that session
//                                                ← "killed"
//   {"replies": [...]} after the next reply, exit 0 (an assertion fails: exit 1)
// The page stays open throughout: the widget's socket.io client reconnects by itself, nginx
// sends it to a live replica, and the customer simply types the next message.
//   WIDGET_URL   the widget page through nginx;  CHROMIUM as in widget_page.mjs
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import * as widget from './widget_page.mjs';

const SHOTS = fileURLToPath(new URL('../../artifacts/browser/', import.meta.url));
const [FIRST, NEXT] = ['hi', 'how much is shipping?'];

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const browser = await widget.launchBrowser();
let page;
try {
  mkdirSync(SHOTS, { recursive: true });
  const seen = { dialogs: [], pageErrors: [] };
  page = await widget.newVisitor(browser, seen);
  await widget.openWidget(page, process.env.WIDGET_URL);
  await widget.say(page, FIRST, /Threadline/);
  const session = await widget.sessionId(page);
  assert.ok(session, 'the widget keeps its session id');
  console.log(JSON.stringify({ session }));
  assert.equal((await lines.next()).value, 'killed');
  // The widget hides while it is not connected (rasa-webchat's hideWhenNotConnected) and
  // comes back when its socket has reconnected, to the other replica.
  await page.locator('.rw-new-message').waitFor({ timeout: widget.REPLY_TIMEOUT });
  const replies = await widget.say(page, NEXT, /shipping/i);
  assert.equal(await widget.sessionId(page), session, 'the same conversation goes on');
  assert.deepEqual(await widget.userMessages(page).allInnerTexts(), [FIRST, NEXT]);
  assert.deepEqual(seen.pageErrors, []);
  await page.screenshot({ path: `${SHOTS}cluster-after-failover.png` });
  console.log(JSON.stringify({ replies }));
} catch (error) {
  await page?.screenshot({ path: `${SHOTS}cluster-failover-failed.png` }).catch(() => {});
  console.error(error);
  process.exitCode = 1;
} finally {
  await browser.close();
  process.stdin.destroy();
}
