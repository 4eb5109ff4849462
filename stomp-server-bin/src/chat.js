// The classic chat over STOMP: subscribe to /chat/ROOM, SEND requests to /app/chat-api. The
// room's MESSAGEs and this page's own RESPONSEs both arrive on the room's subscription. Who is
// in the room comes on /chat/ROOM.members, subscribed to first so that this page's own arrival
// brings the list; the page logs in as its name. The room keeps a history: each of its
// MESSAGEs carries a position, which the page keeps (for the tab's life, reloads included), so
// that after a reconnect or a reload it asks for what came after it, and shows what it missed.
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
$('room').value = params.get('room') || 'lobby';
$('name').value = params.get('name') || 'guest-' + Math.floor(Math.random() * 1000);

const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
const client = new StompJs.Client({
  brokerURL: `${scheme}://${location.host}/stomp`,
  connectHeaders: { login: $('name').value },
});
let subscription = null;
let members = null;
// The last position seen in each room, kept across reloads of this tab.
const positions = JSON.parse(sessionStorage.getItem('positions') || '{}');
let nextReceipt = 1;
let nextTid = 1;
const pending = new Map(); // tid -> the list item waiting for its RESPONSE

function show(who, text, tid) {
  const item = document.createElement('li');
  item.innerHTML = '<span class="who"></span><span class="text"></span><span class="state"></span>';
  item.querySelector('.who').textContent = who;
  item.querySelector('.text').textContent = text;
  if (tid !== undefined) {
    item.dataset.tid = tid;
    item.querySelector('.state').textContent = 'sending';
  }
  $('messages').appendChild(item);
  return item;
}

function showMembers(names) {
  $('members').replaceChildren(...names.map((name) => {
    const item = document.createElement('li');
    item.textContent = name;
    return item;
  }));
}

function join() {
  if (subscription) subscription.unsubscribe();
  if (members) members.unsubscribe();
  const room = $('room').value;
  members = client.subscribe(`/chat/${room}.members`, (frame) => {
    const body = JSON.parse(frame.body);
    if (body.type === 'MEMBERS' && body.room === room) showMembers(body.members);
  });
  // After the last message seen here, if any: the server replays what came since, and its
  // RECEIPT says whether its history reached back that far.
  const headers = {};
  if (positions[room]) {
    headers['after-position'] = positions[room];
    headers.receipt = `recover-${nextReceipt++}`;
    client.watchForReceipt(headers.receipt, (receipt) => {
      if (receipt.headers.recovered === 'false') show('', '(some messages were missed)');
    });
  }
  subscription = client.subscribe(`/chat/${room}`, (frame) => {
    if (frame.headers.position) {
      positions[room] = frame.headers.position;
      sessionStorage.setItem('positions', JSON.stringify(positions));
    }
    const body = JSON.parse(frame.body);
    if (body.type === 'RESPONSE') {
      const item = pending.get(body.tid);
      if (!item) return;
      pending.delete(body.tid);
      item.querySelector('.state').textContent = body.error ? 'failed: ' + body.error : 'delivered';
      item.classList.add(body.error ? 'error' : 'delivered');
    } else if (body.type === 'MESSAGE') {
      // Others' messages; this page's own are shown as it sends them.
      if (!document.querySelector(`li[data-tid="${CSS.escape(String(body.tid))}"]`)) {
        show(body.params.user, body.params.content);
      }
    }
  }, headers);
  $('text').disabled = $('send').disabled = false;
}

client.onConnect = () => {
  $('status').textContent = 'connected';
  $('status').classList.remove('down');
  join();
};
client.onWebSocketClose = () => {
  $('status').textContent = 'reconnecting';
  $('status').classList.add('down');
  $('text').disabled = $('send').disabled = true;
};
client.onStompError = (frame) => console.error('STOMP error', frame.headers.message);

$('join').addEventListener('submit', (e) => { e.preventDefault(); if (client.connected) join(); });
$('say').addEventListener('submit', (e) => {
  e.preventDefault();
  const content = $('text').value.trim();
  if (!content) return;
  const tid = `${$('name').value}-${nextTid++}`;
  pending.set(tid, show($('name').value, content, tid));
  client.publish({
    destination: '/app/chat-api',
    body: JSON.stringify({
      tid,
      method: '/chat/sendMessage',
      params: { roomId: $('room').value, user: $('name').value, content },
    }),
  });
  $('text').value = '';
});
client.activate();
