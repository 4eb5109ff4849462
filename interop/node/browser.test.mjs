// The chat page stomp-server serves at / (stompjs in a browser, as browser developers use it),
// in Debian's Chromium, headless, driven by puppeteer-core (which downloads no browser).
// scripts/interop starts the server with --stompjs pointing at this package's stompjs bundle
// and sets STOMP_HTTP (http://host:port/). A missing browser fails the test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import puppeteer from 'puppeteer-core';

const chromium = process.env.CHROMIUM || '/usr/bin/chromium';
const page = process.env.STOMP_HTTP;
const stompWs = process.env.STOMP_WS;
const screenshot = path.resolve('../../target/interop/chat.png');

/** Opens the chat as `name` in `room` and waits until it is connected. */
async function open(browser, room, name) {
  const tab = await browser.newPage();
  tab.on('console', (message) => console.log(`[${name}] ${message.text()}`));
  await tab.goto(`${page}?room=${room}&name=${name}`);
  await tab.waitForFunction(() => document.getElementById('status').textContent === 'connected', { timeout: 10000, polling: 100 });
  return tab;
}

/** Types and sends `text`; waits for the page to mark it delivered (its RESPONSE came). */
async function say(tab, text) {
  await tab.bringToFront();
  await tab.type('#text', text);
  await tab.click('#send');
  await tab.waitForFunction(
    (t) => [...document.querySelectorAll('#messages li.delivered')].some((li) => li.textContent.includes(t)),
    { timeout: 5000, polling: 100 },
    text,
  );
}

// Polling by time, not animation frames: pages in the background get none.
/** Waits until the page shows a message from `who` saying `text`. */
const hears = (tab, who, text) => tab.waitForFunction(
  (w, t) => [...document.querySelectorAll('#messages li')].some((li) =>
    li.querySelector('.who').textContent === w && li.querySelector('.text').textContent === t),
  { timeout: 5000, polling: 100 },
  who,
  text,
);

/** Waits until the page's member list is exactly `names`. */
const members = (tab, names) => tab.waitForFunction(
  (n) => JSON.stringify([...document.querySelectorAll('#members li')].map((li) => li.textContent)) === n,
  { timeout: 10000, polling: 100 },
  JSON.stringify(names),
);

async function launch() {
  assert.ok(fs.existsSync(chromium), `no browser at ${chromium}: apt-get install chromium`);
  return puppeteer.launch({
    executablePath: chromium,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

test('the member list follows who joins, and a closed tab leaves the others\' lists', async () => {
  const browser = await launch();
  try {
    const dora = await open(browser, 'presence', 'dora');
    await members(dora, ['dora']);
    const emil = await open(browser, 'presence', 'emil');
    await members(emil, ['dora', 'emil']);
    await members(dora, ['dora', 'emil']);
    const fred = await open(browser, 'presence', 'fred');
    await members(dora, ['dora', 'emil', 'fred']);
    // Closing a tab closes its WebSocket without DISCONNECT.
    await emil.close();
    await members(dora, ['dora', 'fred']);
    await members(fred, ['dora', 'fred']);
  } finally {
    await browser.close();
  }
});

test('two pages in one room exchange messages, and each sender sees its RESPONSE', async () => {
  const browser = await launch();
  try {
    const alice = await open(browser, 'lobby', 'alice');
    const bob = await open(browser, 'lobby', 'bob');
    const carol = await open(browser, 'elsewhere', 'carol');
    await say(alice, 'hello from alice');
    await hears(bob, 'alice', 'hello from alice');
    await say(bob, 'hi alice, bob here');
    await hears(alice, 'bob', 'hi alice, bob here');
    // Another room hears nothing.
    const carolSaw = await carol.$$eval('#messages li', (items) => items.length);
    assert.equal(carolSaw, 0);
    fs.mkdirSync(path.dirname(screenshot), { recursive: true });
    // A page in the background draws no frames: bring it forward to take its picture.
    await alice.bringToFront();
    await alice.screenshot({ path: screenshot });
    console.log(`screenshot: ${screenshot}`);
  } finally {
    await browser.close();
  }
});

test('a page whose WebSocket is cut shows, once back, what was said meanwhile', async () => {
  const browser = await launch();
  try {
    const gus = await open(browser, 'recover', 'gus');
    const hana = await open(browser, 'recover', 'hana');
    await say(hana, 'before the cut');
    await hears(gus, 'hana', 'before the cut');
    // The socket goes away under stompjs, which reconnects by itself (after 5 s by default).
    await gus.evaluate(() => client.forceDisconnect());
    await gus.waitForFunction(() => document.getElementById('status').textContent === 'reconnecting', { timeout: 5000, polling: 100 });
    await say(hana, 'while gus was away');
    await say(hana, 'still away');
    await gus.waitForFunction(() => document.getElementById('status').textContent === 'connected', { timeout: 15000, polling: 100 });
    await hears(gus, 'hana', 'while gus was away');
    await hears(gus, 'hana', 'still away');
    const shown = await gus.$$eval('#messages li .text', (items) => items.map((i) => i.textContent));
    assert.deepEqual(shown, ['before the cut', 'while gus was away', 'still away'], 'each once, in order');
  } finally {
    await browser.close();
  }
});

test('the chat page pins stompjs with its integrity hash and allows nothing else', async () => {
  const response = await fetch(page);
  const csp = response.headers.get('content-security-policy');
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self' https:\/\/cdn\.jsdelivr\.net;/);
  const html = await response.text();
  assert.match(html, /<script src="vendor\/stomp\.umd\.min\.js" integrity="sha384-[A-Za-z0-9+\/=]+" crossorigin="anonymous">/);
  assert.doesNotMatch(html, /<script>/, 'no inline script');
  // The other tests load it in Chromium: a bundle that did not match its hash would not run.
});

test('a page from another origin cannot open STOMP over WebSocket; the server\'s own page can', async () => {
  // Another origin: a page served on another port, which opens the server's endpoint.
  const foreign = http.createServer((_, res) => {
    res.setHeader('content-type', 'text/html');
    res.end(`<script>
      const ws = new WebSocket(${JSON.stringify(stompWs)}, ['v12.stomp']);
      ws.onopen = () => { document.title = 'open'; };
      ws.onerror = () => { document.title = 'refused'; };
    </script>`);
  });
  await new Promise((resolve) => foreign.listen(0, '127.0.0.1', resolve));
  const browser = await launch();
  try {
    const tab = await browser.newPage();
    // A login cookie of the server's host (cookies ignore ports): the foreign page's upgrade
    // carries it, and is refused all the same.
    await tab.setCookie({ name: 'session', value: 'ida-token', url: page });
    await tab.goto(`http://127.0.0.1:${foreign.address().port}/`);
    await tab.waitForFunction(() => document.title !== '', { timeout: 10000, polling: 100 });
    assert.equal(await tab.title(), 'refused');
    // The server's own page, in the same browser, connects.
    await open(browser, 'origins', 'ida');
  } finally {
    await browser.close();
    foreign.close();
  }
});
