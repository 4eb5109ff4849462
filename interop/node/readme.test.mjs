// The stompjs snippet of docs/server.md, run as written against stomp-server: with the WebSocket URL
// scripts/interop picked instead of the default, and Node given the browser's WebSocket (the
// `ws` package) first, as the page says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const readme = fs.readFileSync(new URL('../../docs/server.md', import.meta.url), 'utf8');

test('the docs/server.md snippet gets its RESPONSE and the room its MESSAGE', async () => {
  const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
  assert.equal(blocks.length, 1, 'docs/server.md should hold one JavaScript snippet');
  const url = 'ws://127.0.0.1:15674/stomp';
  assert.ok(blocks[0].includes(url));
  const program = [
    "import WebSocket from 'ws';",
    'globalThis.WebSocket = WebSocket;',
    blocks[0].replace(url, process.env.STOMP_WS),
    'setTimeout(() => process.exit(0), 2000);',
  ].join('\n');
  // Beside node_modules, so that '@stomp/stompjs' resolves.
  const file = path.resolve('readme-snippet.mjs');
  fs.writeFileSync(file, program);
  try {
    const output = await new Promise((resolve, reject) => {
      execFile('node', [file], { timeout: 15000 }, (error, stdout, stderr) =>
        error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout));
    });
    assert.match(output, /type: 'RESPONSE'/);
    assert.match(output, /type: 'MESSAGE'/);
    assert.match(output, /tid: 1/);
  } finally {
    fs.rmSync(file, { force: true });
  }
});
